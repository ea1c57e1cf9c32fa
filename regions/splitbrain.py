"""The split-brain vignette, made runnable: partition {r1} | {r2, r3}, clients on both sides
keep writing every type, heal, conflicts detected and reconciled, anti-entropy, every region
equal; measured phase by phase, with the casualties, and beside it the naive store (plain rows
updated in place and replicated as they are) and the keys it leaves divergent forever.

Used by ``python manage.py split_brain``, the Lab's button (POST /api/regions/split-brain) and
loadtest/regions_bench.py. Clients call the services in this process (the store's own code
path, without HTTP). The operations are recorded as histories in the checker's format (JSON
lines, architecture section 11): the store's, and the naive store's apart; ``python -m checker FILE
--model convergence``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from causal.clocks import VectorClock
from core.db import row_one
from regions.conf import KINDS, REGION_NAMES
from regions.convergence import anti_entropy_now, converged
from regions.db import region_connection
from regions.kinds import Operation
from regions.merkle import roots
from regions.network import network_set
from regions.reconcile import region_reconcile
from regions.store import REASON_LWW_DISCARDED, region_value_get, region_value_write

SIDES = {"A": ("r1",), "B": ("r2", "r3")}
GROUPS = [["r1"], ["r2", "r3"]]
AUTOMATIC = ("lww", "counter", "gcounter", "orset", "doc")
SEED_MANUAL_PERCENT = 0.001
ELEMENTS = ("red", "green", "blue", "amber")
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")


@dataclass
class History:
    """Operations as JSON lines (checker format), times in ns since the run started."""

    started_ns: int = field(default_factory=time.monotonic_ns)
    events: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self, process: str, kind: str, f: str, key: str, value: Any, *, session: str = "", **extra
    ) -> None:
        with self.lock:
            self.events.append(
                {
                    "process": process,
                    "session": session or process,
                    "type": kind,
                    "f": f,
                    "key": key,
                    "value": value,
                    **extra,
                    "time": time.monotonic_ns() - self.started_ns,
                }
            )

    def write(self, path: Path, *, naive: bool = False) -> None:
        """The store's events, or (naive) the naive store's: two histories, as the naive
        store's divergence would otherwise be the only verdict of the whole run."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as out:
            for event in self.events:
                if event["key"].startswith("naive/") == naive:
                    out.write(json.dumps(event, separators=(",", ":")) + "\n")


@dataclass
class Ledger:
    """What clients were told succeeded, per side: the ground truth of the casualty table."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    written: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )  # kind -> key -> sides
    counts: Counter = field(default_factory=Counter)  # (kind, key) -> acknowledged sum
    words: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    acknowledged: int = 0
    refused: int = 0
    naive: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def ack(self, side: str, kind: str, key: str, amount: int = 0, word: str = "") -> None:
        with self.lock:
            self.written[kind][key].add(side)
            self.acknowledged += 1
            if kind in ("counter", "gcounter"):
                self.counts[(kind, key)] += amount
            if word:
                self.words[key].add(word)


def _client(
    *,
    name: str,
    side: str,
    region: str,
    prefix: str,
    keys: int,
    until: float,
    history: History,
    ledger: Ledger,
    seed: int,
) -> None:
    chooser = random.Random(seed)  # noqa: S311 - a workload, not a secret
    sequence = 0
    process = name
    while time.monotonic() < until:
        sequence += 1
        kind = chooser.choice([*KINDS, "naive"])
        key = f"{prefix}-{kind}-{chooser.randrange(keys)}"
        if kind == "naive":
            _naive_update(name, region, key, sequence, history=history, ledger=ledger)
            continue
        value: Any
        amount, word = 0, ""
        context = VectorClock()
        if kind in ("lww", "mv"):
            value = f"{name}#{sequence}"
            operation = Operation(kind, "write", value)
            if kind == "mv":  # a Riak client reads, then writes with the context it read
                try:
                    context = region_value_get(region=region, kind=kind, key=key).context
                except Exception:  # the write below then adds a sibling; still a valid client
                    context = VectorClock()
        elif kind == "counter":
            amount = chooser.choice([1, 2, 3, -1])
            value = amount
            operation = Operation(kind, "increment" if amount > 0 else "decrement", abs(amount))
        elif kind == "gcounter":
            amount = value = chooser.randint(1, 3)
            operation = Operation(kind, "increment", amount)
        elif kind == "orset":
            value = chooser.choice(ELEMENTS)
            operation = Operation(kind, chooser.choice(["add", "add", "remove"]), value)
        else:
            word = f"{chooser.choice(WORDS)}-{name}-{sequence}"
            value = word
            operation = Operation(kind, "insert", (0, word + " "))
        full_key = f"{kind}/{key}"
        f = _history_f(operation)
        history.add(process, "invoke", f, full_key, value, session=name, replica=region)
        try:
            region_value_write(
                region=region, kind=kind, key=key, operation=operation, context=context
            )
        except Exception as error:
            ledger.refused += 1
            # the transaction may or may not have committed: info, and a new process after it
            history.add(process, "info", f, full_key, value, session=name, error=str(error)[:200])
            process = f"{name}+{ledger.refused}"
            continue
        history.add(process, "ok", f, full_key, value, session=name, replica=region)
        ledger.ack(side, kind, key, amount, word)


def _history_f(operation: Operation) -> str:
    """The checker's function: a text edit here only inserts a unique word, so the document
    is checked as the set of its words (an insert adds one)."""
    return "add" if operation.kind == "doc" else operation.history_f()


def _naive_update(name, region, key, sequence, *, history, ledger) -> None:
    value = f"{name}#{sequence}"
    history.add(name, "invoke", "write", f"naive/{key}", value, replica=region)
    with region_connection(region) as conn, conn.transaction():
        conn.execute(
            "UPDATE regions_naive SET value = %s, region = %s WHERE key = %s",
            (json.dumps(value), region, key),
        )
    history.add(name, "ok", "write", f"naive/{key}", value, replica=region)
    with ledger.lock:
        ledger.naive[key].add(region)
        ledger.acknowledged += 1


def _naive_prepare(prefix: str, keys: int, history: History) -> list[str]:
    """The naive rows, inserted in r1 (recorded as writes of their initial value)."""
    names = [f"{prefix}-naive-{index}" for index in range(keys)]
    for name in names:
        history.add(f"setup-{name}", "invoke", "write", f"naive/{name}", f"init:{name}")
    with region_connection("r1") as conn, conn.transaction():
        conn.cursor().executemany(
            "INSERT INTO regions_naive (key, value, region) VALUES (%s, %s, 'r1') "
            "ON CONFLICT DO NOTHING",
            [(name, json.dumps(f"init:{name}")) for name in names],
        )
    for name in names:
        history.add(f"setup-{name}", "ok", "write", f"naive/{name}", f"init:{name}", replica="r1")

    def everywhere() -> bool:
        for region in REGION_NAMES:
            with region_connection(region) as conn:
                (count,) = row_one(
                    conn.execute(
                        "SELECT count(*) FROM regions_naive WHERE key LIKE %s",
                        (prefix + "-naive-%",),
                    )
                )
            if count < keys:
                return False
        return True

    _wait(everywhere, 60)
    return names


def _naive_divergent(prefix: str) -> tuple[int, int]:
    """(keys whose value differs between regions, keys)."""
    values: dict[str, set[str]] = defaultdict(set)
    for region in REGION_NAMES:
        with region_connection(region) as conn:
            for key, value in conn.execute(
                "SELECT key, value::text FROM regions_naive WHERE key LIKE %s",
                (prefix + "-naive-%",),
            ):
                values[key].add(value)
    return sum(1 for found in values.values() if len(found) > 1), len(values)


def _wait(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(poll_s)
    return None


def _final_read(history: History, region: str, key: str, result: Any) -> None:
    """A final read in the checker's terms: a text as the set of its words; siblings are no
    register value (recorded as a failed read carrying them: the key still needs a client)."""
    reader = f"reader-{region}"
    history.add(reader, "invoke", "read", key, None, final=True, replica=region)
    if result.conflicted:
        siblings = sorted(str(s["value"]) for s in result.siblings)
        history.add(reader, "fail", "read", key, None, replica=region, siblings=siblings)
        return
    value = result.value.split() if result.kind == "doc" else result.value
    history.add(reader, "ok", "read", key, value, final=True, replica=region)


def _naive_final_reads(history: History, keys: list[str]) -> None:
    for region in REGION_NAMES:
        with region_connection(region) as conn:
            values = dict(
                conn.execute(
                    "SELECT key, value FROM regions_naive WHERE key = ANY(%s)", (keys,)
                ).fetchall()
            )
        for key in keys:
            reader = f"reader-{region}"
            history.add(reader, "invoke", "read", f"naive/{key}", None, final=True, replica=region)
            history.add(reader, "ok", "read", f"naive/{key}", values.get(key), replica=region)


def _final_state(prefix: str, ledger: Ledger, history: History) -> dict[str, Any]:
    """Read every written key in every region (recorded as reads); the checks and casualties."""
    mv_manual = 0
    exact = {"counter": True, "gcounter": True}
    words_kept = True
    for kind, keys in ledger.written.items():
        for key in keys:
            seen = []
            for region in REGION_NAMES:
                result = region_value_get(region=region, kind=kind, key=key)
                _final_read(history, region, f"{kind}/{key}", result)
                seen.append(result)
            if kind == "mv" and seen[0].conflicted:
                mv_manual += 1
            if kind in exact and any(r.value != ledger.counts[(kind, key)] for r in seen):
                exact[kind] = False
            if kind == "doc" and not all(word in seen[0].value for word in ledger.words[key]):
                words_kept = False
    with region_connection("r1") as conn:
        (lww_lost,) = row_one(
            conn.execute(
                "SELECT count(DISTINCT (origin, counter)) FROM regions_tombstone "
                "WHERE kind = 'lww' AND key LIKE %s AND reason = %s",
                (prefix + "-%", REASON_LWW_DISCARDED),
            )
        )
    return {
        "mv_manual": mv_manual,
        "counters_exact": exact,
        "doc_words_kept": words_kept,
        "lww_lost": lww_lost,
    }


def split_brain_run(
    *,
    partition_s: float = 8.0,
    keys: int = 40,
    clients_per_region: int = 1,
    out_dir: Path | None = None,
    echo: Callable[[str], None] = print,
    seed: int = 7,
) -> dict[str, Any]:
    """Run the vignette once; answers the timeline, the casualties and the checks."""
    prefix = f"sb{int(time.time() * 1000) % 10**10}"
    history, ledger = History(), Ledger()
    network_set(groups=[list(REGION_NAMES)])
    _wait(converged, 60)
    naive_keys = _naive_prepare(prefix, keys, history)
    timeline: list[tuple[float, str]] = []
    t0 = time.monotonic()

    def mark(text: str) -> None:
        timeline.append((time.monotonic() - t0, text))
        echo(f"T+{timeline[-1][0]:6.2f}s  {text}")

    network_set(groups=GROUPS)
    mark("partition {r1} | {r2, r3}: both sides keep writing every type")
    until = time.monotonic() + partition_s
    threads: list[threading.Thread] = []
    for side, regions in SIDES.items():
        for region in regions:
            for index in range(clients_per_region):
                name = f"client-{region}-{index}"
                threads.append(
                    threading.Thread(
                        target=_client,
                        kwargs={
                            "name": name,
                            "side": side,
                            "region": region,
                            "prefix": prefix,
                            "keys": keys,
                            "until": until,
                            "history": history,
                            "ledger": ledger,
                            "seed": seed * 1000 + len(threads),
                        },
                    )
                )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    divergent_roots = len(set(roots().values()))
    mark(
        f"{ledger.acknowledged} writes acknowledged ({ledger.refused} refused); "
        f"{divergent_roots} different Merkle roots"
    )
    network_set(groups=[list(REGION_NAMES)])
    mark("heal")
    heal_at = time.monotonic()
    caught_up = _wait(converged, 120)
    both_sides = sum(
        1 for keys_ in ledger.written.values() for sides in keys_.values() if len(sides) > 1
    )
    mark(
        f"replication caught up: every region holds every version ({both_sides} keys were "
        "written on both sides)"
        if caught_up is not None
        else "replication did not catch up within 120 s"
    )
    reconciled = region_reconcile(region="r1", key_prefix=prefix + "-")
    conflicts = dict(reconciled.conflicts)
    mark(
        f"conflicts detected: {sum(conflicts.values())} keys hold concurrent versions "
        f"({', '.join(f'{k} {v}' for k, v in sorted(conflicts.items())) or 'none'}); "
        f"automatic reconciliation: {sum(reconciled.merged.values())} merged, "
        f"{reconciled.lww_discarded} lww writes discarded, "
        f"{reconciled.siblings_open} mv keys left with siblings"
    )
    report = anti_entropy_now()
    mark(
        f"anti-entropy: {report.hashes_compared} hashes compared for "
        f"{max(report.keys_held.values(), default=0)} keys held, "
        f"{report.keys_repaired} keys repaired"
    )
    equal_after = _wait(converged, 120)
    final_roots = roots()
    mark(
        f"every region equal (root {(next(iter(final_roots.values())) or '?')[:12]})"
        if equal_after is not None
        else "regions still differ after 120 s"
    )
    converged_s = time.monotonic() - heal_at
    checks = _final_state(prefix, ledger, history)
    _naive_final_reads(history, naive_keys)
    naive_divergent, naive_total = _naive_divergent(prefix)
    naive_conflicts = sum(1 for regions in ledger.naive.values() if len(regions) > 1)
    casualties = _casualties(ledger, conflicts, checks)
    result = {
        "prefix": prefix,
        "partition_s": partition_s,
        "timeline": [{"t": round(t, 3), "event": text} for t, text in timeline],
        "heal_to_caught_up_s": caught_up,
        "heal_to_converged_s": round(converged_s, 3),
        "anti_entropy": report.as_dict(),
        "casualties": casualties,
        "checks": checks,
        "naive": {
            "keys": naive_total,
            "written_in_several_regions": naive_conflicts,
            "divergent_forever": naive_divergent,
        },
        "acknowledged": ledger.acknowledged,
        "refused": ledger.refused,
        "naive_keys": len(naive_keys),
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        history.write(out_dir / "split_brain_history.jsonl")
        history.write(out_dir / "split_brain_naive_history.jsonl", naive=True)
        (out_dir / "split_brain.json").write_text(json.dumps(result, indent=2, default=str))
        result["history"] = str(out_dir / "split_brain_history.jsonl")
        result["naive_history"] = str(out_dir / "split_brain_naive_history.jsonl")
    return result


def _casualties(ledger: Ledger, conflicts: dict[str, int], checks: dict) -> dict[str, Any]:
    rows: dict[str, dict[str, int]] = {}
    for kind in KINDS:
        written = len(ledger.written.get(kind, {}))
        conflicted = conflicts.get(kind, 0)
        manual = checks["mv_manual"] if kind == "mv" else 0
        rows[kind] = {
            "keys_written": written,
            "keys_in_conflict": conflicted,
            "resolved_automatically": conflicted if kind in AUTOMATIC else conflicted - manual,
            "needing_manual_resolution": manual,
        }
    total_written = sum(row["keys_written"] for row in rows.values())
    total_manual = sum(row["needing_manual_resolution"] for row in rows.values())
    return {
        "by_type": rows,
        "keys_written": total_written,
        "keys_in_conflict": sum(row["keys_in_conflict"] for row in rows.values()),
        "resolved_automatically": sum(row["resolved_automatically"] for row in rows.values()),
        "needing_manual_resolution": total_manual,
        "manual_percent": round(100 * total_manual / total_written, 3) if total_written else 0.0,
        "seed_manual_percent": SEED_MANUAL_PERCENT,
        "lww_acknowledged_writes_lost": checks["lww_lost"],
    }


def casualty_table(result: dict[str, Any]) -> str:
    """The casualties as a text table."""
    casualties = result["casualties"]
    header = f"{'':<28}" + "".join(f"{kind:>10}" for kind in KINDS) + f"{'total':>10}"
    lines = [header]
    for field_name, label in (
        ("keys_written", "keys written"),
        ("keys_in_conflict", "keys in conflict"),
        ("resolved_automatically", "resolved automatically"),
        ("needing_manual_resolution", "needing manual resolution"),
    ):
        cells = "".join(f"{casualties['by_type'][kind][field_name]:>10}" for kind in KINDS)
        lines.append(f"{label:<28}{cells}{casualties[field_name]:>10}")
    lines.append(
        f"manual resolution: {casualties['needing_manual_resolution']} of "
        f"{casualties['keys_written']} keys written = {casualties['manual_percent']} % "
        f"(the seed's vignette: {casualties['seed_manual_percent']} %)"
    )
    lines.append(
        f"acknowledged lww writes lost (a concurrent write had a later clock): "
        f"{casualties['lww_acknowledged_writes_lost']}"
    )
    naive = result["naive"]
    lines.append(
        f"naive rows updated in place: {naive['written_in_several_regions']} of {naive['keys']} "
        f"keys updated in several regions, {naive['divergent_forever']} divergent forever"
    )
    checks = result["checks"]
    lines.append(
        f"checks: counters exact {checks['counters_exact']}, every doc edit kept "
        f"{checks['doc_words_kept']}"
    )
    return "\n".join(lines)


_vignette_running = threading.Lock()


def vignette_start(*, partition_s: float = 5.0, keys: int = 20) -> bool:
    """Run the vignette in a background thread of this process (the Lab's button); its
    timeline and casualties land in RegionNetwork.last_vignette as they happen. False when
    one already runs here."""
    from django.db import connections

    from regions.models import RegionNetwork
    from regions.network import network_get

    if not _vignette_running.acquire(blocking=False):
        return False
    network_id = network_get().id
    lines: list[str] = []

    def store(document: dict) -> None:
        RegionNetwork.objects.filter(id=network_id).update(last_vignette=document)

    def progress(line: str) -> None:
        lines.append(line)
        store({"state": "running", "timeline": lines, "started_at": time.time()})

    def run() -> None:
        try:
            progress(f"starting: {partition_s:g} s apart, {keys} keys per type")
            result = split_brain_run(partition_s=partition_s, keys=keys, echo=progress)
            store(
                {
                    "state": "done",
                    "timeline": lines,
                    "table": casualty_table(result),
                    "casualties": result["casualties"],
                    "naive": result["naive"],
                    "heal_to_converged_s": result["heal_to_converged_s"],
                    "finished_at": time.time(),
                }
            )
        except Exception as error:
            store({"state": "failed", "timeline": lines, "error": str(error)[:500]})
        finally:
            _vignette_running.release()
            connections.close_all()

    store({"state": "running", "timeline": lines, "started_at": time.time()})
    threading.Thread(target=run, name="split-brain", daemon=True).start()
    return True
