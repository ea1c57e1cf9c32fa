"""Which write each register read saw: the common ground of the causal and session models.

Those models need to know, for every read, the write it read from. They get it from unique
values: a recorder must write a value only once per key (and never ``null``, which is the
initial value); a history that does not is rejected (:class:`HistoryError`). A read returning
``null`` read the initial value. An ``info`` write took effect iff some read or cas saw its
value (unique values make that certain); one nobody saw is left out (it may never have
happened, and leaving it out can only remove constraints).

A read whose value nobody wrote, or that only a write invoked after the read completed
writes, is a thin-air read: every model counts it as a violation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checker.datatypes import REGISTER, freeze, written_state
from checker.history import History, HistoryError, Op


@dataclass
class Observation:
    """A read (or an ok cas, which reads its expected value) and the write it saw."""

    reader: Op
    write: Op | None  # None: the initial null


@dataclass
class RegisterView:
    keys: list[Any]
    observations: list[Observation] = field(default_factory=list)
    effective_writes: list[Op] = field(default_factory=list)  # ok, or info that was observed
    thin_air: list[Op] = field(default_factory=list)
    observers: dict[int, list[Op]] = field(default_factory=dict)  # write id -> its readers
    skipped_keys: list[Any] = field(default_factory=list)  # sets and counters

    def writes_of(self, key: Any) -> list[Op]:
        return [op for op in self.effective_writes if op.key == key]


def register_view(history: History) -> RegisterView:
    keys = [key for key, datatype in history.datatypes.items() if datatype == REGISTER]
    view = RegisterView(
        keys=keys,
        skipped_keys=[key for key, kind in history.datatypes.items() if kind != REGISTER],
    )
    wanted = set(keys)
    writer: dict[tuple[Any, Any], Op] = {}
    for op in history.ops:
        if op.key not in wanted or not op.is_update or op.status == "fail":
            continue
        value = written_state(op)
        if value is None:
            raise HistoryError(
                f"key {op.key!r}: a write of null cannot be told from the initial value; "
                "the causal and session models need unique non-null values per key",
                line=op.invoke_line,
            )
        earlier = writer.get((op.key, value))
        if earlier is not None:
            raise HistoryError(
                f"key {op.key!r}: value {_show(op)} is written twice (lines "
                f"{earlier.invoke_line} and {op.invoke_line}); the causal and session models "
                "need unique values per key, so the recorder must write each value once",
                line=op.invoke_line,
            )
        writer[(op.key, value)] = op
    observed: set[int] = set()
    for op in history.ops:
        if op.key not in wanted or op.status != "ok" or op.f == "write":
            continue
        seen = freeze(op.result if op.is_read else op.value[0])
        if seen is None:
            view.observations.append(Observation(op, None))
            continue
        write = writer.get((op.key, seen))
        if write is None or write.invoke_pos > op.complete_pos:
            view.thin_air.append(op)
            continue
        view.observations.append(Observation(op, write))
        view.observers.setdefault(write.id, []).append(op)
        observed.add(write.id)
    view.effective_writes = [op for op in writer.values() if op.status == "ok" or op.id in observed]
    view.effective_writes.sort(key=lambda op: op.invoke_pos)
    return view


def _show(op: Op) -> str:
    import json

    value = op.value[1] if op.f == "cas" else op.value
    return json.dumps(value, sort_keys=True)
