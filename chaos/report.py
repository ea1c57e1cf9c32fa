"""The chaos report: faults injected, operations done, violations found."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from chaos.history import History

VIOLATION_SHOWN_CHARS = 1500


def summary(history: History, final: dict[str, Any], observed: dict[str, float]) -> dict[str, Any]:
    faults = Counter(fault.kind for fault in history.faults)
    operations: dict[str, Counter] = {}
    for operation in history.operations:
        operations.setdefault(operation.kind, Counter())[operation.outcome] += 1
    during = [check for check in history.checks if check["at"] != "end"]
    fault_time_violations = [
        check for check in during if check["money_conserved"].get("ok") is False
    ]
    checks_ok = all(result.get("ok") is not False for result in final.values())
    return {
        "ok": checks_ok and not fault_time_violations,
        "faults": dict(faults),
        "operations": {kind: dict(outcomes) for kind, outcomes in operations.items()},
        "checks_during_faults": {
            "run": len(during),
            "skipped": sum(1 for check in during if check["money_conserved"].get("ok") is None),
            "violations": fault_time_violations,
        },
        "final": final,
        "observed": observed,
    }


def print_table(document: dict[str, Any]) -> None:
    print("\nfaults injected")
    for kind, count in sorted(document["faults"].items()):
        print(f"  {kind:<22} {count}")
    print("operations (ok / fail / unknown)")
    for kind, outcomes in sorted(document["operations"].items()):
        counts = " / ".join(str(outcomes.get(outcome, 0)) for outcome in ("ok", "fail", "unknown"))
        print(f"  {kind:<22} {counts}")
    during = document["checks_during_faults"]
    print(
        f"invariant checks at faults: {during['run']} run, {during['skipped']} skipped "
        f"(service unreachable), {len(during['violations'])} violations"
    )
    print("observed in the service's metrics")
    for name, value in sorted(document["observed"].items()):
        print(f"  {name:<38} {value:g}")
    print("at the end")
    for name, result in document["final"].items():
        verdict = {True: "ok", False: "VIOLATED", None: "skipped"}[result.get("ok")]
        print(f"  {name:<38} {verdict}")
    for name, result in document["final"].items():
        if result.get("ok") is False:
            print(f"\n{name}: {json.dumps(result, default=str)[:VIOLATION_SHOWN_CHARS]}")
    for check in during["violations"][:3]:
        shown = json.dumps(check, default=str)[:VIOLATION_SHOWN_CHARS]
        print(f"\nduring faults: {shown}")
    print(f"\nverdict: {'PASS' if document['ok'] else 'FAIL'}")
