"""Recording histories in the checker's format, from any number of threads.

::

    recorder = Recorder("history.jsonl")
    client = recorder.session("s1")
    with client.operation("write", "k1", recorder.unique_value()) as op:
        store.put("k1", op.value)
        op.ok()
    with client.operation("read", "k1") as op:
        op.ok(store.get("k1"), replica="replica_1")

Each event is stamped and appended under one lock, so the line order is the real-time order
the checker relies on. Several OS processes record apart, each with a Recorder of its own
``namespace`` (so process ids and unique values do not collide), and
:func:`merge_recordings` interleaves their files by ``time``: the default clock,
``time.monotonic_ns``, is one clock for the whole host.

An operation left without a completion (an exception, a timeout) is recorded as ``info``:
it may or may not have taken effect. After an ``info`` the session continues under a fresh
process id (an info operation stays outstanding forever, and a process runs one operation at
a time). Write values must be unique per key for the causal and session models:
:meth:`Recorder.unique_value` hands out such values.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from checker.history import History, parse_history


class Recorder:
    """Collects events in memory and, when given a sink, appends them there as JSON lines."""

    def __init__(
        self,
        sink: str | Path | IO[str] | None = None,
        *,
        clock: Callable[[], int] = time.monotonic_ns,
        namespace: str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._namespace = namespace
        self._events: list[dict[str, Any]] = []
        self._processes = itertools.count()
        self._values = itertools.count(1)
        self._owns_sink = isinstance(sink, str | Path)
        self._sink: IO[str] | None = (
            open(sink, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            if isinstance(sink, str | Path)
            else sink
        )

    def session(self, name: Any = None) -> Session:
        """A client: one operation at a time, under a process id of its own."""
        process = self.new_process()
        return Session(self, name if name is not None else f"s{process}", process)

    def new_process(self) -> int | str:
        """A process id no session of this recorder had (prefixed by the namespace)."""
        with self._lock:
            number = next(self._processes)
        return number if self._namespace is None else f"{self._namespace}-{number}"

    def unique_value(self) -> int | str:
        """A value never handed out before by this recorder (unique across keys too).

        An integer; with a namespace, ``"<namespace>-<n>"``, unique across recorders.
        """
        with self._lock:
            number = next(self._values)
        return number if self._namespace is None else f"{self._namespace}-{number}"

    def record(self, event: dict[str, Any]) -> dict[str, Any]:
        """Stamp ``time`` and append one event; returns it."""
        with self._lock:
            event = {**event, "time": self._clock()}
            self._events.append(event)
            if self._sink is not None:
                self._sink.write(json.dumps(event, default=str) + "\n")
                self._sink.flush()
        return event

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def history(self) -> History:
        """The events so far, validated (operations still running count as info)."""
        return parse_history(self.events)

    def write(self, path: str | Path) -> None:
        """Write every event so far to ``path`` (replacing it)."""
        with open(path, "w", encoding="utf-8") as handle:
            for event in self.events:
                handle.write(json.dumps(event, default=str) + "\n")

    def close(self) -> None:
        if self._owns_sink and self._sink is not None:
            self._sink.close()
            self._sink = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Session:
    """One client's sequence of operations (use it from one thread)."""

    def __init__(self, recorder: Recorder, name: Any, process: int | str) -> None:
        self.recorder = recorder
        self.name = name
        self.process = process
        self._pending: Pending | None = None

    def invoke(self, f: str, key: Any = None, value: Any = None, **extra: Any) -> Pending:
        """Record an invoke; complete the returned Pending with ok, fail or info.

        ``extra`` fields go into the event as they are (``final=True`` marks a read taken
        after quiescence).
        """
        if self._pending is not None and not self._pending.done:
            raise RuntimeError(
                f"session {self.name!r} invokes {f} while its {self._pending.f} is still running"
            )
        event = {"process": self.process, "session": self.name, "type": "invoke", "f": f}
        if key is not None:
            event["key"] = key
        event["value"] = value
        event.update(extra)
        self.recorder.record(event)
        self._pending = Pending(self, f, key, value)
        return self._pending

    @contextmanager
    def operation(
        self,
        f: str,
        key: Any = None,
        value: Any = None,
        *,
        definite_failures: tuple[type[BaseException], ...] = (),
        **extra: Any,
    ) -> Iterator[Pending]:
        """Invoke, run the block, and record info if the block did not complete the operation.

        An exception of a type in ``definite_failures`` (errors that prove the operation did
        not take effect) is recorded as fail; any other is info. Exceptions propagate.
        """
        pending = self.invoke(f, key, value, **extra)
        try:
            yield pending
        except definite_failures:
            if not pending.done:
                pending.fail()
            raise
        except BaseException:
            if not pending.done:
                pending.info()
            raise
        if not pending.done:
            pending.info()

    def _crashed(self) -> None:
        self.process = self.recorder.new_process()


class Pending:
    """An invoked operation waiting for its completion."""

    def __init__(self, session: Session, f: str, key: Any, value: Any) -> None:
        self.session = session
        self.f = f
        self.key = key
        self.value = value
        self.done = False

    def ok(self, value: Any = None, **extra: Any) -> None:
        """It took effect; for a read, ``value`` is what it returned."""
        self._complete("ok", value if self.f == "read" else self.value, extra)

    def fail(self, **extra: Any) -> None:
        """It certainly did not take effect."""
        self._complete("fail", None if self.f == "read" else self.value, extra)

    def info(self, **extra: Any) -> None:
        """Its outcome is unknown (a timeout, a lost connection)."""
        self._complete("info", None if self.f == "read" else self.value, extra)
        self.session._crashed()

    def _complete(self, kind: str, value: Any, extra: dict[str, Any]) -> None:
        if self.done:
            raise RuntimeError(f"this {self.f} was already completed")
        self.done = True
        event = {
            "process": self.session.process,
            "session": self.session.name,
            "type": kind,
            "f": self.f,
        }
        if self.key is not None:
            event["key"] = self.key
        event["value"] = value
        event.update(extra)
        self.session.recorder.record(event)


def merge_recordings(*sources: str | Path | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One history from recordings made apart (files or event lists), ordered by ``time``.

    Each source must come from a Recorder with its own namespace and the same host clock;
    events with equal times keep their sources' order.
    """
    events: list[tuple[int, int, int, dict[str, Any]]] = []
    for index, source in enumerate(sources):
        if isinstance(source, str | Path):
            with open(source, encoding="utf-8") as handle:
                loaded = [json.loads(line) for line in handle if line.strip()]
        else:
            loaded = list(source)
        for position, event in enumerate(loaded):
            if "time" not in event:
                raise ValueError(f"source {index}: event {position + 1} has no time to merge by")
            events.append((event["time"], index, position, event))
    events.sort(key=lambda item: item[:3])
    return [event for *_, event in events]
