"""Histories of operations (architecture section 11's JSON lines) and the stale reads in them.

Each event is ``{"process", "session", "type": "invoke" | "ok" | "fail" | "info", "f": "read" |
"write", "key", "value", "time"}``, time in nanoseconds from the recording's start. A write's
value is unique in the history; a read's completion carries what it returned: the value, a
list of values when it returned siblings (sorted by their JSON text), or null when it found
nothing. A write that got fewer than W acknowledgements completes as ``info`` (it may have
landed: indeterminate), one refused before any node was asked as ``fail``.

Stale read (``stale_reads``): a completed read of key k that returned neither the value of the
last write of k acknowledged (``ok``) before the read was invoked, nor the value of any write of
k invoked after that one. Writes of a key are ordered by their invocation, so this is exact
when each key has one writer at a time (as in the benchmark and the tests), and it needs no
model of what "latest" means between concurrent writes.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Event:
    process: int | str
    session: str
    type: str
    f: str
    key: str
    value: Any
    time: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_value(values: list[Any]) -> Any:
    """How a read's result is recorded: None, the one value, or the sorted list of siblings."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return sorted(values, key=lambda value: json.dumps(value, sort_keys=True))


class History:
    """A thread-safe recording of invocations and completions."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._started = time.monotonic_ns()

    def elapsed_ns(self) -> int:
        """Nanoseconds since the recording started (the events' time scale)."""
        return time.monotonic_ns() - self._started

    def _add(self, event_type: str, *, process, session, f, key, value) -> Event:
        event = Event(process, session, event_type, f, key, value, self.elapsed_ns())
        with self._lock:
            self._events.append(event)
        return event

    def invoke(self, *, process: int | str, session: str, f: str, key: str, value: Any = None):
        return self._add("invoke", process=process, session=session, f=f, key=key, value=value)

    def complete(
        self, outcome: str, *, process: int | str, session: str, f: str, key: str, value: Any
    ) -> Event:
        if outcome not in {"ok", "fail", "info"}:
            raise ValueError(f"a completion is ok, fail or info, not {outcome!r}")
        return self._add(outcome, process=process, session=session, f=f, key=key, value=value)

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def write_jsonl(self, path: Path) -> None:
        with path.open("w") as out:
            for event in self.events():
                out.write(json.dumps(event.as_dict(), separators=(",", ":")) + "\n")


def load_jsonl(path: Path) -> list[Event]:
    return [Event(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class Operation:
    """An invocation paired with its completion (None while it has none)."""

    process: int | str
    session: str
    f: str
    key: str
    invoked: int
    completed: int | None
    outcome: str | None
    value: Any


def operations(events: Iterable[Event]) -> list[Operation]:
    """Pair each invoke with the next completion of the same process (one operation at a time
    per process, as Jepsen's histories)."""
    open_by_process: dict[Any, Event] = {}
    paired: list[Operation] = []
    for event in sorted(events, key=lambda e: e.time):
        if event.type == "invoke":
            open_by_process[event.process] = event
            continue
        invoked = open_by_process.pop(event.process, None)
        if invoked is None:
            continue
        value = invoked.value if invoked.f == "write" else event.value
        paired.append(
            Operation(
                event.process,
                invoked.session,
                invoked.f,
                invoked.key,
                invoked.time,
                event.time,
                event.type,
                value,
            )
        )
    for invoked in open_by_process.values():
        paired.append(
            Operation(
                invoked.process,
                invoked.session,
                invoked.f,
                invoked.key,
                invoked.time,
                None,
                None,
                invoked.value,
            )
        )
    return paired


def _returned(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [] if value is None else [value]
    return [json.dumps(item, sort_keys=True) for item in values]


def stale_reads(events: Iterable[Event]) -> list[Operation]:
    """The completed (ok) reads that missed a write acknowledged before they were invoked."""
    ops = operations(events)
    writes: dict[str, list[Operation]] = defaultdict(list)
    for op in ops:
        if op.f == "write":
            writes[op.key].append(op)
    for key_writes in writes.values():
        key_writes.sort(key=lambda op: op.invoked)
    stale = []
    for op in ops:
        if op.f != "read" or op.outcome != "ok":
            continue
        key_writes = writes.get(op.key, [])
        acknowledged = [
            index
            for index, write in enumerate(key_writes)
            if write.outcome == "ok"
            and write.completed is not None
            and write.completed < op.invoked
        ]
        if not acknowledged:
            continue
        acceptable = {
            json.dumps(write.value, sort_keys=True) for write in key_writes[acknowledged[-1] :]
        }
        if not acceptable.intersection(_returned(op.value)):
            stale.append(op)
    return stale


def checked_reads(events: Iterable[Event]) -> list[Operation]:
    """The reads ``stale_reads`` judges: completed ok, after some acknowledged write of the key."""
    ops = operations(events)
    acknowledged: dict[str, list[int]] = defaultdict(list)
    for op in ops:
        if op.f == "write" and op.outcome == "ok" and op.completed is not None:
            acknowledged[op.key].append(op.completed)
    return [
        op
        for op in ops
        if op.f == "read"
        and op.outcome == "ok"
        and any(done < op.invoked for done in acknowledged.get(op.key, []))
    ]
