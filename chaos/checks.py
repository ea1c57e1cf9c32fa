"""The checkers. Each returns ``{"ok": bool, ...}``; a violation names what broke.

Money is checked through the service's own reconciliation (invariants 1-3 of architecture section 3)
plus the transfers the clients saw; reads, counters and the cache from the client history and
the databases.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import requests

from chaos.history import OK, UNKNOWN, History, Operation

TERMINAL = {"completed", "failed", "compensated"}


def _get(base_url: str, path: str, token: str) -> requests.Response:
    return requests.get(base_url + path, headers={"Authorization": f"Token {token}"}, timeout=10)


EXACT_UNDER_TRAFFIC = ("money_conserved", "transfer_operations", "operations_explain_balances")


def money_conserved(base_url: str, staff_token: str, *, quiet: bool) -> dict[str, Any]:
    """Under traffic: money conserved (invariant 1), every terminal transfer's operations
    (invariant 2) and no operation applied twice; balances cannot go negative (a CHECK
    constraint). When quiet: the whole reconciliation, the journal included (invariant 3)."""
    try:
        response = _get(base_url, "/api/ledger/reconciliation/", staff_token)
        report = response.json()
    except (requests.RequestException, ValueError) as error:
        return {"ok": None, "skipped": f"reconciliation unavailable: {error}"}
    if response.status_code != 200:
        return {"ok": None, "skipped": f"reconciliation answered {response.status_code}"}
    ok = report["ok"] if quiet else all(report[name]["ok"] for name in EXACT_UNDER_TRAFFIC)
    return {"ok": ok, "report": report if not ok else {"in_flight": report.get("in_flight")}}


def books_settled(base_url: str, staff_token: str, bound_s: float) -> dict[str, Any]:
    """At quiescence the whole reconciliation holds, the journal included, within ``bound_s``:
    the journal may still wait for a watchdog to send again an event a killed worker took."""
    started = time.monotonic()
    while True:
        result = money_conserved(base_url, staff_token, quiet=True)
        if result["ok"] or time.monotonic() - started >= bound_s:
            return {**result, "waited_s": round(time.monotonic() - started, 1)}
        time.sleep(1)


def _resolve_unknown_transfers(
    base_url: str, tokens: dict[str, str], history: History
) -> dict[str, str]:
    """A transfer whose answer was lost may exist: replaying its Idempotency-Key with the same
    body returns the stored answer (the point of the key). Returns transfer id -> owner."""
    found = {}
    for operation in history.of_kind("transfer"):
        if operation.outcome != UNKNOWN:
            continue
        owner = operation.client.split("-")[0]
        body = {
            name: operation.data[name] for name in ("source", "destination", "amount", "currency")
        }
        response = requests.post(
            base_url + "/api/transfers/",
            json=body,
            headers={
                "Authorization": f"Token {tokens[owner]}",
                "Idempotency-Key": operation.data["key"],
            },
            timeout=10,
        )
        if response.status_code == 202:
            found[response.json()["id"]] = owner
    return found


def transfers_terminal(
    base_url: str, tokens: dict[str, str], history: History, bound_s: float
) -> dict[str, Any]:
    """Every transfer a client saw accepted, or that a lost answer may have created, reaches a
    terminal state within ``bound_s``."""
    pending = {
        operation.data["transfer"]: operation.client.split("-")[0]
        for operation in history.of_kind("transfer")
        if operation.outcome == OK and operation.data.get("transfer")
    }
    resolved = _resolve_unknown_transfers(base_url, tokens, history)
    pending.update(resolved)
    deadline = time.monotonic() + bound_s
    states: dict[str, str] = {}
    while pending and time.monotonic() < deadline:
        for transfer_id, owner in list(pending.items()):
            response = _get(base_url, f"/api/transfers/{transfer_id}/", tokens[owner])
            if response.status_code == 200 and response.json()["state"] in TERMINAL:
                states[transfer_id] = response.json()["state"]
                del pending[transfer_id]
        if pending:
            time.sleep(1)
    counts: dict[str, int] = {}
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    return {
        "ok": not pending,
        "terminal": counts,
        "unknown_answers_resolved": len(resolved),
        "not_terminal": sorted(pending)[:20],
    }


def reads_consistent(history: History) -> dict[str, Any]:
    """Read-your-writes and monotonic reads: no acknowledged read under ``session``
    consistency returned a version older than the client had written or already seen."""
    violations = [
        {
            "client": op.client,
            "at": op.started,
            "target": op.data["target"],
            "version": op.data["version"],
            "expected_at_least": op.data["must_reach"],
            "served_by": op.data.get("served_by"),
        }
        for op in history.of_kind("profile_read")
        if op.outcome == OK and op.data["version"] < op.data["must_reach"]
    ]
    reads = [op for op in history.of_kind("profile_read") if op.outcome == OK]
    replica_reads = sum(1 for op in reads if op.data.get("served_by", "").startswith("replica"))
    return {
        "ok": not violations,
        "reads": len(reads),
        "replica_reads": replica_reads,
        "violations": violations[:20],
    }


def counters_exact(base_url: str, token: str, history: History) -> dict[str, Any]:
    """Every acknowledged increment counted exactly once: acknowledged <= value <=
    acknowledged + unknown (an unknown one may or may not have happened)."""
    results = {}
    ok = True
    for key in {op.data["key"] for op in history.of_kind("increment")}:
        operations = [op for op in history.of_kind("increment") if op.data["key"] == key]
        acknowledged = sum(op.data["by"] for op in operations if op.outcome == OK)
        unknown = sum(op.data["by"] for op in operations if op.outcome == UNKNOWN)
        started = history.now()
        value = _get(base_url, f"/api/sharding/counters/{key}", token).json()["value"]
        final_read = {"key": key, "value": value}  # the checker history's final read
        history.record(
            Operation("final-reader", "counter_final", started, history.now(), OK, final_read)
        )
        exact = acknowledged <= value <= acknowledged + unknown
        ok = ok and exact
        results[key] = {
            "value": value,
            "acknowledged": acknowledged,
            "unknown": unknown,
            "ok": exact,
        }
    return {"ok": ok, "counters": results}


def merkle_ranges(items: dict[int, str], ranges: int) -> dict[int, str]:
    """Hash of each key range (key mod ``ranges``) over sorted ``key=value`` pairs."""
    digests: dict[int, Any] = {}
    for key in sorted(items):
        digest = digests.setdefault(key % ranges, hashlib.blake2b(digest_size=16))
        digest.update(f"{key}={items[key]};".encode())
    return {bucket: digest.hexdigest() for bucket, digest in digests.items()}


def cache_matches_database(
    database: dict[int, str], cache: dict[int, str], ranges: int = 16
) -> dict[str, Any]:
    """At quiescence every cached profile equals the database's. Compared by range hashes
    first; only ranges that differ are compared key by key. Keys absent from the cache are
    fine (a cache may miss); a cached value must never differ."""
    cached_keys = {key: database.get(key) for key in cache}
    left, right = merkle_ranges(cached_keys, ranges), merkle_ranges(cache, ranges)
    differing_ranges = sorted(
        bucket for bucket in set(left) | set(right) if left.get(bucket) != right.get(bucket)
    )
    differing_keys = [
        {"key": key, "database": database.get(key), "cache": cache[key]}
        for key in sorted(cache)
        if key % ranges in differing_ranges and cache[key] != database.get(key)
    ]
    return {
        "ok": not differing_keys,
        "cached": len(cache),
        "ranges_compared": ranges,
        "differing_ranges": differing_ranges,
        "differing_keys": differing_keys[:20],
    }


def service_metric_totals(base_url: str, names: tuple[str, ...]) -> dict[str, float]:
    """Sum of every sample of each named metric on the service's /metrics (all processes)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(base_url + "/metrics", timeout=10).text
    totals = dict.fromkeys(names, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals


def etcd_consistent() -> dict[str, Any]:
    """Every etcd member holds the same hash of the keyspace at one revision (etcd issue
    13766: 3.5.0-3.5.2 may be left inconsistent by a crash). Skipped without etcd."""
    from django.conf import settings

    from ha.etcd import etcd_client, hashkv_compare

    if not settings.ETCD_URLS:
        return {"ok": None, "reason": "no etcd configured"}
    result = hashkv_compare(etcd_client())
    return {"ok": result["equal"], **result}
