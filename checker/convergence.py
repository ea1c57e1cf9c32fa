"""Convergence (eventual consistency): after quiescence the replicas hold the same state.

The history says what each replica holds at the end with *final reads*: reads marked
``"final": true``, taken after every other update has completed (the checker rejects a final
read invoked before an update completed: the recorder must quiesce first). The replica a read
observed is its ``replica`` field, or its process when there is none (one process per
replica). For each key, the last final read of each replica must return the same state.

Convergence alone would let every replica agree on nothing, so this model also checks that
the end state is made of the writes that happened (the safety half of eventual consistency):

- no read, final or not, returns what no update had been invoked to write by then (registers:
  a value no write or cas writes; sets: an element no add adds; counters: a value outside the
  sums of the increments invoked before the read completed);
- registers: when a write was acknowledged, the final value is not the initial null;
- sets: a final read contains every element some ok add added, unless a remove of that
  element was invoked (ok or info), and nothing no add (ok or info) added;
- counters: acknowledged <= final value <= acknowledged + unknown, where acknowledged sums
  the ok increments and unknown the info ones (negative increments widen the other bound).
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate
from typing import Any

from checker.datatypes import COUNTER, REGISTER, SET, freeze, read_state, written_state
from checker.history import NEVER, History, HistoryError, Op
from checker.verdict import HOLDS, UNKNOWN, VIOLATED, Counterexample, Verdict

MODEL = "convergence"


def replica_of(op: Op) -> Any:
    return op.replica if op.replica is not None else f"process {op.process}"


def check_convergence(history: History) -> Verdict:
    final_reads = [op for op in history.ops if op.final and op.status == "ok"]
    _check_quiescence(history, final_reads)
    stats: dict[str, Any] = {"final_reads": len(final_reads)}
    for key, ops in history.by_key().items():
        problem = _thin_air(ops, history.datatypes[key])
        if problem is not None:
            return _violated("thin-air-read", *problem, key=key, stats=stats)
    if not final_reads:
        return Verdict(
            model=MODEL,
            outcome=UNKNOWN,
            reason=(
                'no final reads: mark the reads taken after quiescence with "final": true '
                "to say what each replica holds at the end"
            ),
            stats=stats,
        )
    by_key = history.by_key()
    unread = [key for key in by_key if not any(op.final for op in by_key[key])]
    stats["keys_checked"] = len(by_key) - len(unread)
    stats["keys_without_final_reads"] = unread
    replicas: set[Any] = set()
    for key, ops in by_key.items():
        finals = _last_final_per_replica(ops)
        if not finals:
            continue
        replicas.update(finals)
        datatype = history.datatypes[key]
        reads = list(finals.values())
        states = [read_state(datatype, op.result) for op in reads]
        for other, state in zip(reads[1:], states[1:], strict=True):
            if state != states[0]:
                return _violated(
                    "diverged",
                    f"replicas {replica_of(reads[0])!r} and {replica_of(other)!r} still differ "
                    f"on key {key!r} after quiescence",
                    [reads[0], other],
                    key=key,
                    stats=stats,
                )
        problem = _lost_updates(ops, reads[0], datatype)
        if problem is not None:
            return _violated("lost-update", *problem, key=key, stats=stats)
    stats["replicas"] = len(replicas)
    return Verdict(
        model=MODEL,
        outcome=HOLDS,
        reason=(
            f"{stats['keys_checked']} keys converged across {len(replicas)} replicas, "
            "to states made of the updates that happened"
        ),
        stats=stats,
    )


def _check_quiescence(history: History, final_reads: list[Op]) -> None:
    if not final_reads:
        return
    first_final = min(final_reads, key=lambda op: op.invoke_pos)
    for op in history.ops:
        if (
            op.is_update
            and op.status in ("ok", "fail")
            and op.complete_pos > first_final.invoke_pos
        ):
            raise HistoryError(
                f"the final read at line {first_final.invoke_line} starts before the update at "
                f"line {op.invoke_line} completed: final reads come after quiescence",
                line=first_final.invoke_line,
            )


def _last_final_per_replica(ops: list[Op]) -> dict[Any, Op]:
    last: dict[Any, Op] = {}
    for op in ops:
        if op.final and op.status == "ok":
            last[replica_of(op)] = op  # ops are in invoke order: the last one wins
    return last


def _thin_air(ops: list[Op], datatype: str) -> tuple[str, list[Op]] | None:
    """A read returning what no update had been invoked to write by its completion."""
    updates = [op for op in ops if op.is_update and op.status != "fail"]  # in invoke order
    first_invoke: dict[Any, float] = {}
    for op in updates:
        if datatype == REGISTER:
            first_invoke.setdefault(written_state(op), op.invoke_pos)
        elif op.f == "add":
            first_invoke.setdefault(freeze(op.value), op.invoke_pos)
    starts = [op.invoke_pos for op in updates]
    if datatype == COUNTER:
        lows = list(accumulate((min(0, op.value) for op in updates), initial=0))
        highs = list(accumulate((max(0, op.value) for op in updates), initial=0))
    for read in ops:
        if not read.is_read or read.status != "ok":
            continue
        if datatype == REGISTER:
            value = freeze(read.result)
            if value is not None and not first_invoke.get(value, NEVER) < read.complete_pos:
                return (
                    f"the read at line {read.invoke_line} returned a value no write had written",
                    [read],
                )
        elif datatype == SET:
            if any(
                not first_invoke.get(item, NEVER) < read.complete_pos
                for item in read_state(SET, read.result)
            ):
                return (
                    f"the read at line {read.invoke_line} returned elements no add had added",
                    [read],
                )
        else:
            invoked = bisect_left(starts, read.complete_pos)
            low, high = lows[invoked], highs[invoked]
            value = read_state(COUNTER, read.result)
            if not low <= value <= high:
                return (
                    f"the read at line {read.invoke_line} returned {value}, outside "
                    f"[{low}, {high}], the sums of the increments invoked by then",
                    [read],
                )
    return None


def _lost_updates(ops: list[Op], final: Op, datatype: str) -> tuple[str, list[Op]] | None:
    acknowledged = [op for op in ops if op.is_update and op.status == "ok"]
    if datatype == REGISTER:
        if acknowledged and final.result is None:
            return (
                f"the final read at line {final.invoke_line} returned null though the write at "
                f"line {acknowledged[0].invoke_line} was acknowledged",
                [acknowledged[0], final],
            )
        return None
    if datatype == SET:
        state = read_state(SET, final.result)
        removed = {freeze(op.value) for op in ops if op.f == "remove" and op.status != "fail"}
        for op in acknowledged:
            element = freeze(op.value)
            if op.f == "add" and element not in removed and element not in state:
                return (
                    f"the final read at line {final.invoke_line} lacks {op.value!r}, whose add at "
                    f"line {op.invoke_line} was acknowledged and never removed",
                    [op, final],
                )
        return None
    value = read_state(COUNTER, final.result)
    settled = sum(op.value for op in acknowledged)
    unknown = [op.value for op in ops if op.f == "increment" and op.status == "info"]
    low = settled + sum(min(0, amount) for amount in unknown)
    high = settled + sum(max(0, amount) for amount in unknown)
    if not low <= value <= high:
        return (
            f"the final read at line {final.invoke_line} returned {value}; the acknowledged "
            f"increments sum to {settled} ({len(acknowledged)} ops) and the unknown ones "
            f"({len(unknown)}) allow [{low}, {high}]",
            [final],
        )
    return None


def _violated(kind: str, text: str, ops: list[Op], *, key: Any, stats: dict[str, Any]) -> Verdict:
    return Verdict(
        model=MODEL,
        outcome=VIOLATED,
        reason=f"key {key!r}: {kind}",
        counterexample=Counterexample(kind=kind, explanation=text, ops=ops, key=key),
        stats=stats,
    )
