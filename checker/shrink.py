"""Shrinking a failing key's operations to a 1-minimal counterexample.

Two steps. For linearizability, which is prefix-closed, a binary search first finds the
shortest failing prefix of the history (cut at an ok completion; operations still running at
the cut become ``info``, reads still running are dropped): the operation completing at the cut
is one that cannot be placed. Then delta debugging (Zeller's ddmin, complement steps only)
drops chunks, halving the chunk size down to single operations, keeping each drop after which
the rest still fails. A drop must not leave a read unexplained (a read whose value no
remaining update writes): that would shrink a stale read down to a meaningless lone read.
The result is 1-minimal: dropping any single operation left makes the rest pass (or leaves a
read unexplained), unless the shrinking ran out of calls or budget (then it says so).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from checker.datatypes import implausible_reads
from checker.history import NEVER, Op

MAX_CALLS = 400


def shrink(
    ops: list[Op],
    datatype: str,
    fails: Callable[[list[Op]], bool | None],
    *,
    prefix_closed: bool,
    max_calls: int = MAX_CALLS,
) -> tuple[list[Op], bool]:
    """The smallest failing subset found, and whether it is known to be 1-minimal."""
    calls = 0
    exhaustive = True

    def still_fails(candidate: list[Op]) -> bool:
        nonlocal calls, exhaustive
        if calls >= max_calls:
            exhaustive = False
            return False
        calls += 1
        outcome = fails(candidate)
        if outcome is None:
            exhaustive = False
        return outcome is True

    current = [op for op in ops if op.status != "fail"]
    if prefix_closed:
        current = _shortest_failing_prefix(current, still_fails)
    unexplained = implausible_reads(current, datatype)

    chunks = 2
    while len(current) > 1:
        size = -(-len(current) // chunks)
        dropped = False
        for start in range(0, len(current), size):
            candidate = current[:start] + current[start + size :]
            if not implausible_reads(candidate, datatype) <= unexplained:
                continue
            if still_fails(candidate):
                current = candidate
                chunks = max(chunks - 1, 2)
                dropped = True
                break
        if dropped:
            continue
        if size == 1:
            break
        chunks = min(len(current), chunks * 2)
    return current, exhaustive


def _shortest_failing_prefix(ops: list[Op], still_fails: Callable[[list[Op]], bool]) -> list[Op]:
    cuts = sorted(op.complete_pos for op in ops if op.status == "ok")
    low, high = 0, len(cuts) - 1  # the full history (the last cut) is known to fail
    best = ops
    while low < high:
        middle = (low + high) // 2
        candidate = truncate(ops, cuts[middle])
        if still_fails(candidate):
            high = middle
            best = candidate
        else:
            low = middle + 1
    return best


def truncate(ops: list[Op], cut: float) -> list[Op]:
    """The history as it stood just after event ``cut``: running operations become info."""
    kept: list[Op] = []
    for op in ops:
        if op.invoke_pos > cut:
            continue
        if op.complete_pos <= cut:
            kept.append(op)
        elif op.is_update and op.status != "fail":
            kept.append(dataclasses.replace(op, status="info", complete_pos=NEVER))
    return kept
