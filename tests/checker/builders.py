"""Hand-written histories, one event per call, in the order they happened.

``op(...)`` is an operation with nothing in between its invoke and its completion; for
concurrency, write the events one by one with ``invoke`` and ``ok`` / ``fail`` / ``info``.
Every operation is on key ``"x"`` unless told otherwise; the session defaults to the process.
"""

from __future__ import annotations

from typing import Any

from checker import History, parse_history


def event(process: Any, kind: str, f: str, value: Any = None, key: Any = "x", **extra: Any) -> dict:
    return {"process": process, "type": kind, "f": f, "key": key, "value": value, **extra}


def invoke(process: Any, f: str, value: Any = None, key: Any = "x", **extra: Any) -> dict:
    return event(process, "invoke", f, value, key, **extra)


def ok(process: Any, f: str, value: Any = None, key: Any = "x", **extra: Any) -> dict:
    return event(process, "ok", f, value, key, **extra)


def fail(process: Any, f: str, value: Any = None, key: Any = "x", **extra: Any) -> dict:
    return event(process, "fail", f, value, key, **extra)


def info(process: Any, f: str, value: Any = None, key: Any = "x", **extra: Any) -> dict:
    return event(process, "info", f, value, key, **extra)


def op(process: Any, f: str, value: Any = None, key: Any = "x", **extra: Any) -> list[dict]:
    """An operation that completes before anything else happens: its invoke and its ok.

    For a read, ``value`` is what it returned; ``extra`` goes on both events.
    """
    argument = None if f == "read" else value
    return [invoke(process, f, argument, key, **extra), ok(process, f, value, key, **extra)]


def history(*parts: dict | list[dict]) -> History:
    events: list[dict] = []
    for part in parts:
        events.extend(part if isinstance(part, list) else [part])
    return parse_history(events)


def ids(verdict: Any) -> list[tuple[str, Any]]:
    """The counterexample's operations as (f, value-or-result) pairs, in invoke order."""
    ops = sorted(verdict.counterexample.ops, key=lambda op: op.invoke_pos)
    return [(op.f, op.result if op.is_read else op.value) for op in ops]
