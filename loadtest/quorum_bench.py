"""The quorum store measured on real nodes (a benchmark extra; ``python -m loadtest.quorum_bench``).

Through the coordinator in this process (``quorum.services``, what the API calls), on the
storage nodes of the stack's ``quorum`` group:

1. **Stale reads against W and R, one node slow.** Node ``n2``'s route holds every packet
   100 ms plus a random 0..100 ms (a slow, jittery link). Writer threads run write-then-read
   pairs on keys whose preference list holds ``n2`` (each key written by one thread, a unique
   value per write, the context of its last write passed on), for (W, R) in (1,1), (2,1),
   (1,2), (2,2), (3,1), (1,3) with N = 3. Every operation is recorded as a history (JSON
   lines, architecture section 11); a read is *stale* when it missed a write acknowledged before it
   was invoked (``quorum.history.stale_reads``). Latency p50/p99 of the writes and the reads
   of each pair come from the same runs.
2. **Availability with nodes down.** With one, then two nodes stopped (real process stops), a
   write to each of a set of keys whose preference list holds the stopped nodes, at W = 2 and
   W = 3, strict and sloppy: the fraction acknowledged.
3. **The sloppy quorum's stale reads until hinted handoff.** Two nodes stopped; sloppy W = 2
   writes to keys whose preference list holds both (each acknowledged by the third preferred
   node and a stand-in holding a hint); the nodes start again; R = 2 reads of every key before
   the hints are handed off, then one handoff pass, then the same reads again.

``run(duration_s, out_dir)`` returns the figures and writes them (``quorum.json``) and the
histories (``quorum-*.jsonl``) to `out_dir`; ``duration_s`` is shared among the (W, R) runs
(phases 2 and 3 take a fixed ~30 s of node stops and starts).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.extras import Extra, ExtraResult, Plot

SLOW_NODE = "n2"
SLOW_DELAY_MS = 100
SLOW_JITTER_MS = 100
N = 3
MATRIX = ((1, 1), (2, 1), (1, 2), (2, 2), (3, 1), (1, 3))
WRITERS = 2
DOWN_NODES = ("n4", "n5")
AVAILABILITY_KEYS = 40
SLOPPY_KEYS = 40


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return round(ordered[index], 1)


def keys_where(prefix: str, count: int, predicate: Callable[[list[str]], bool]) -> list[str]:
    """`count` keys ``<prefix>-<i>`` whose preference list (N = 3) satisfies `predicate`."""
    from quorum.conf import conf

    ring = conf().ring()
    found: list[str] = []
    index = 0
    while len(found) < count:
        key = f"{prefix}-{index}"
        if predicate(ring.preference_list(key, N)):
            found.append(key)
        index += 1
    return found


@dataclass
class PairStats:
    """What a run of write-then-read pairs measured, besides its history."""

    write_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)
    write_outcomes: dict[str, int] = field(default_factory=dict)
    read_outcomes: dict[str, int] = field(default_factory=dict)
    answered_by: dict[tuple[Any, int], list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, table: dict[str, int], outcome: str) -> None:
        with self.lock:
            table[outcome] = table.get(outcome, 0) + 1


def write_recorded(
    history,
    stats: PairStats,
    *,
    process: Any,
    key: str,
    value: Any,
    context: str | None,
    w: int,
    sloppy: bool = False,
) -> str | None:
    """One write through the coordinator, recorded; the new context, or None when it failed."""
    from core.errors import DomainError
    from quorum.errors import QuorumWriteUnavailable
    from quorum.services import quorum_value_put

    session = f"s{process}"
    history.invoke(process=process, session=session, f="write", key=key, value=value)
    started = time.monotonic()
    try:
        answer = quorum_value_put(
            key=key, value=value, context_header=context, n=N, w=w, sloppy=sloppy
        )
    except QuorumWriteUnavailable:
        history.complete("info", process=process, session=session, f="write", key=key, value=value)
        stats.count(stats.write_outcomes, "unavailable")
        return None
    except DomainError:
        history.complete("fail", process=process, session=session, f="write", key=key, value=value)
        stats.count(stats.write_outcomes, "refused")
        return None
    history.complete("ok", process=process, session=session, f="write", key=key, value=value)
    with stats.lock:
        stats.write_ms.append((time.monotonic() - started) * 1000)
    stats.count(stats.write_outcomes, "ok")
    return answer.context_header


def read_recorded(history, stats: PairStats, *, process: Any, key: str, r: int) -> None:
    """One read through the coordinator, recorded with what it returned (see quorum.history)."""
    from quorum.errors import QuorumKeyNotFound, QuorumReadUnavailable
    from quorum.history import read_value
    from quorum.services import quorum_value_get

    session = f"s{process}"
    invoked = history.invoke(process=process, session=session, f="read", key=key)
    started = time.monotonic()
    try:
        answer = quorum_value_get(key=key, n=N, r=r)
        document = answer.document
        value = read_value([sibling["value"] for sibling in document["siblings"]])
    except QuorumKeyNotFound as error:
        document, value = error.data, None
    except QuorumReadUnavailable:
        history.complete("fail", process=process, session=session, f="read", key=key, value=None)
        stats.count(stats.read_outcomes, "unavailable")
        return
    history.complete("ok", process=process, session=session, f="read", key=key, value=value)
    with stats.lock:
        stats.read_ms.append((time.monotonic() - started) * 1000)
        stats.answered_by[(process, invoked.time)] = list(document["answered"])
    stats.count(stats.read_outcomes, "ok")


def pairs_run(
    *,
    history,
    keys: list[str],
    w: int,
    r: int,
    writers: int = WRITERS,
    until: float | None = None,
    rounds: int | None = None,
    stats: PairStats | None = None,
) -> PairStats:
    """Writer threads, each owning a share of `keys`, doing write-then-read pairs (the read
    right after the write's acknowledgement) until `until` (monotonic) or for `rounds` passes
    over its keys."""
    stats = stats or PairStats()
    shares = [keys[index::writers] for index in range(writers)]

    def writer(process: int, own: list[str]) -> None:
        contexts: dict[str, str | None] = dict.fromkeys(own)
        sequence = 0
        passes = 0
        while own:
            for key in own:
                if until is not None and time.monotonic() >= until:
                    return
                sequence += 1
                value = f"{key}#{process}.{sequence}"
                context = write_recorded(
                    history,
                    stats,
                    process=process,
                    key=key,
                    value=value,
                    context=contexts[key],
                    w=w,
                )
                if context is not None:
                    contexts[key] = context
                read_recorded(history, stats, process=process, key=key, r=r)
            passes += 1
            if rounds is not None and passes >= rounds:
                return

    threads = [
        threading.Thread(target=writer, args=(process, share), daemon=True)
        for process, share in enumerate(shares)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stats


def stale_summary(history, stats: PairStats, *, w: int, r: int, sloppy: bool = False) -> dict:
    """Checked and stale reads of a history (and which nodes answered the stale ones), counted
    in the stale-read metrics too."""
    from quorum import metrics
    from quorum.history import checked_reads, stale_reads

    events = history.events()
    checked = checked_reads(events)
    stale = stale_reads(events)
    by_node: dict[str, int] = {}
    for op in stale:
        for node in stats.answered_by.get((op.process, op.invoked), []):
            by_node[node] = by_node.get(node, 0) + 1
    labels = (str(N), str(w), str(r), str(sloppy).lower())
    metrics.checked_reads_total.labels(*labels).inc(len(checked))
    metrics.stale_reads_total.labels(*labels).inc(len(stale))
    return {
        "checked_reads": len(checked),
        "stale_reads": len(stale),
        "stale_rate": round(len(stale) / len(checked), 4) if checked else None,
        "stale_answered_by": dict(sorted(by_node.items())),
    }


def _latency(values: list[float]) -> dict[str, float | None]:
    return {
        "p50_ms": _percentile(values, 0.5),
        "p99_ms": _percentile(values, 0.99),
        "count": len(values),
    }


def slow_node_set(node: str = SLOW_NODE) -> None:
    """Slow `node`'s route, after filling this process's pool of connections to it (as a
    long-running coordinator has them: opening one on the slow route takes longer than the
    node timeout)."""
    from quorum.client import pool_warm
    from quorum.conf import conf
    from quorum.control import node_state_set

    pool_warm(conf().node(node), 12)
    node_state_set(node=node, state="slow", delay_ms=SLOW_DELAY_MS, jitter_ms=SLOW_JITTER_MS)


def stale_matrix(out_dir: Path, run_id: str, seconds_each: float) -> dict:
    """Phase 1: every (W, R) of MATRIX with the slow node, histories written to `out_dir`."""
    from quorum.control import node_state_set
    from quorum.history import History

    slow_node_set()
    results = {}
    try:
        for w, r in MATRIX:
            keys = keys_where(f"{run_id}-w{w}r{r}", 24, lambda pref: SLOW_NODE in pref)
            history = History()
            stats = pairs_run(
                history=history, keys=keys, w=w, r=r, until=time.monotonic() + seconds_each
            )
            history.write_jsonl(out_dir / f"quorum-slow-w{w}r{r}.jsonl")
            results[f"w{w}r{r}"] = {
                "w": w,
                "r": r,
                "w_plus_r_gt_n": w + r > N,
                **stale_summary(history, stats, w=w, r=r),
                "write": _latency(stats.write_ms),
                "read": _latency(stats.read_ms),
                "write_outcomes": stats.write_outcomes,
                "read_outcomes": stats.read_outcomes,
            }
    finally:
        node_state_set(node=SLOW_NODE, state="up")
    return results


def _nodes(state: str, nodes: tuple[str, ...]) -> None:
    from quorum.client import health
    from quorum.control import node_state_set

    for node in nodes:
        if state == "down":
            node_state_set(node=node, state="down", how="stop")
        else:
            node_state_set(node=node, state="up")
    health().forget()


def availability(run_id: str) -> dict:
    """Phase 2: acknowledged writes with one, then two nodes stopped, strict and sloppy."""
    from quorum.history import History

    results: dict[str, dict] = {}
    for down in (DOWN_NODES[:1], DOWN_NODES):
        _nodes("down", down)
        try:
            keys = keys_where(
                f"{run_id}-avail{len(down)}",
                AVAILABILITY_KEYS,
                lambda pref, down=down: set(down) <= set(pref),
            )
            for w in (2, 3):
                for sloppy in (False, True):
                    stats = PairStats()
                    history = History()
                    for index, key in enumerate(keys):
                        write_recorded(
                            history,
                            stats,
                            process=0,
                            key=key,
                            value=f"{key}#{w}{sloppy}{index}",
                            context=None,
                            w=w,
                            sloppy=sloppy,
                        )
                    acknowledged = stats.write_outcomes.get("ok", 0)
                    results[f"down{len(down)}_w{w}_{'sloppy' if sloppy else 'strict'}"] = {
                        "nodes_down": list(down),
                        "w": w,
                        "sloppy": sloppy,
                        "writes": len(keys),
                        "acknowledged": acknowledged,
                        "availability": round(acknowledged / len(keys), 4),
                        "write": _latency(stats.write_ms),
                    }
        finally:
            _nodes("up", down)
    from quorum.handoff import hints_hand_off

    for _ in range(20):  # the sloppy writes' hints, so that phase 3 counts only its own
        if not sum(hints_hand_off().values()):
            break
    return results


def sloppy_until_handoff(out_dir: Path, run_id: str) -> dict:
    """Phase 3: sloppy W = 2 writes with two preferred nodes stopped, R = 2 reads once they are
    back, before and after one hinted-handoff pass."""
    from quorum.handoff import hints_hand_off, hints_pending
    from quorum.history import History

    keys = keys_where(f"{run_id}-sloppy", SLOPPY_KEYS, lambda pref: set(DOWN_NODES) <= set(pref))
    history = History()
    stats = PairStats()
    _nodes("down", DOWN_NODES)
    try:
        for key in keys:
            write_recorded(
                history,
                stats,
                process=0,
                key=key,
                value=f"{key}#sloppy",
                context=None,
                w=2,
                sloppy=True,
            )
    finally:
        _nodes("up", DOWN_NODES)
    pending_before = sum(
        count for counts in hints_pending(timeout_s=2).values() for count in (counts or {}).values()
    )
    before = PairStats()
    for key in keys:
        read_recorded(history, before, process=1, key=key, r=2)
    split = history.elapsed_ns()
    delivered: dict[str, int] = {}
    for _ in range(20):
        handed = hints_hand_off()
        if not sum(handed.values()):
            break
        for node, count in handed.items():
            delivered[node] = delivered.get(node, 0) + count
    after = PairStats()
    for key in keys:
        read_recorded(history, after, process=2, key=key, r=2)
    history.write_jsonl(out_dir / "quorum-sloppy-handoff.jsonl")
    summary = stale_summary(
        history,
        PairStats(answered_by={**before.answered_by, **after.answered_by}),
        w=2,
        r=2,
        sloppy=True,
    )
    from quorum.history import stale_reads

    stale = stale_reads(history.events())
    stale_before = sum(1 for op in stale if op.invoked < split)
    return {
        "nodes_down": list(DOWN_NODES),
        "writes": len(keys),
        "acknowledged": stats.write_outcomes.get("ok", 0),
        "hints_pending_when_back": pending_before,
        "stale_reads_before_handoff": stale_before,
        "reads_before_handoff": len(keys),
        "stale_rate_before_handoff": round(stale_before / len(keys), 4),
        "handed_off": sum(delivered.values()),
        "stale_reads_after_handoff": len(stale) - stale_before,
        "reads_after_handoff": len(keys),
        "stale_answered_by": summary["stale_answered_by"],
    }


def quorum_ready() -> None:
    """Start the quorum group if it does not run, and make sure every node is up with the
    schema (the embedded stack; nodes given by URL must already run)."""
    from quorum.conf import conf
    from quorum.control import node_state_set
    from quorum.services import quorum_schema_setup

    if conf().node_control == "processes":
        from devstack.stack import default_stack

        default_stack(echo=lambda _line: None).up(["quorum"])
    for node in conf().node_names:
        node_state_set(node=node, state="up")
    failed = {node: why for node, why in quorum_schema_setup().items() if why != "ok"}
    if failed:
        raise RuntimeError(f"quorum nodes not ready: {failed}")


def run(duration_s: float, out_dir: Path) -> dict:
    """Every phase; the figures (also written to ``out_dir/quorum.json``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    quorum_ready()
    run_id = f"bench{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    figures = {
        "setup": {
            "n": N,
            "slow_node": SLOW_NODE,
            "slow_delay_ms": SLOW_DELAY_MS,
            "slow_jitter_ms": SLOW_JITTER_MS,
            "writers": WRITERS,
            "read_strategy": "exactly R of the preference list, at random",
        },
        "stale_reads_one_slow_node": stale_matrix(
            out_dir, run_id, max(3.0, duration_s / len(MATRIX))
        ),
        "availability_nodes_down": availability(run_id),
        "sloppy_until_handoff": sloppy_until_handoff(out_dir, run_id),
    }
    figures["elapsed_s"] = round(time.monotonic() - started, 1)
    (out_dir / "quorum.json").write_text(json.dumps(figures, indent=2))
    return figures


def quorum_extra_run(*, service: Any = None, scale: float = 1.0, work_dir: Path) -> ExtraResult:
    """The benchmark extra: one run of every phase, ``120 * scale`` seconds for the (W, R)
    runs. ``service`` is not used: the coordinator runs in this process, as in the service."""
    figures = run(max(30.0, 120 * scale), work_dir / "quorum")
    matrix = figures["stale_reads_one_slow_node"]
    table = [
        {
            "w": row["w"],
            "r": row["r"],
            "w_plus_r_gt_n": row["w_plus_r_gt_n"],
            "checked_reads": row["checked_reads"],
            "stale_rate": row["stale_rate"],
            "write_p50_ms": row["write"]["p50_ms"],
            "write_p99_ms": row["write"]["p99_ms"],
            "read_p50_ms": row["read"]["p50_ms"],
            "read_p99_ms": row["read"]["p99_ms"],
        }
        for row in matrix.values()
    ]
    availability = figures["availability_nodes_down"]
    sloppy = figures["sloppy_until_handoff"]
    return ExtraResult(
        figures={
            **{f"stale_rate_{name}": row["stale_rate"] for name, row in matrix.items()},
            "availability_two_down_w2_strict": availability["down2_w2_strict"]["availability"],
            "availability_two_down_w2_sloppy": availability["down2_w2_sloppy"]["availability"],
            "sloppy_stale_rate_before_handoff": sloppy["stale_rate_before_handoff"],
            "sloppy_stale_reads_after_handoff": sloppy["stale_reads_after_handoff"],
        },
        table=table,
        plot=Plot(
            title=f"Stale reads against W and R (N = {N}, node {SLOW_NODE} slow)",
            x=list(matrix),
            series={"stale rate": [row["stale_rate"] or 0.0 for row in matrix.values()]},
            kind="bars",
            xlabel="(W, R)",
            ylabel="stale reads / checked reads",
        ),
        details=figures,
    )


def spread(runs: list[Any]) -> Any:
    """Figures of several runs of the same shape, each number replaced by its median, minimum
    and maximum over the runs (the shape kept; other values from the first run)."""
    first = runs[0]
    if isinstance(first, dict):
        return {
            key: spread([run[key] for run in runs if isinstance(run, dict) and key in run])
            for key in first
        }
    numbers = [value for value in runs if isinstance(value, int | float)]
    if isinstance(first, bool) or len(numbers) != len(runs):
        return first
    return {"median": statistics.median(numbers), "min": min(numbers), "max": max(numbers)}


def repeated(duration_s: float, out_dir: Path, repeat: int, run_once=None) -> dict:
    """`repeat` runs (``out_dir/run-<i>``), and their spread (``out_dir/quorum-spread.json``)."""
    run_once = run_once or run
    runs = [run_once(duration_s, out_dir / f"run-{index + 1}") for index in range(repeat)]
    summary = {"runs": repeat, "figures": spread(runs)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "quorum-spread.json").write_text(json.dumps(summary, indent=2))
    return summary


QUORUM = Extra(
    "quorum",
    quorum_extra_run,
    "stale reads against W and R, availability with nodes down, sloppy quorum until handoff",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.quorum_bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=120, help="seconds for the (W, R) runs")
    parser.add_argument("--out", type=Path, default=Path("bench/results/quorum"))
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs; above 1, medians and ranges over the runs"
    )
    options = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    if options.repeat > 1:
        figures = repeated(options.duration, options.out, options.repeat)
    else:
        figures = run(options.duration, options.out)
    json.dump(figures, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
