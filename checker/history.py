"""Histories: JSON-lines events, validated and paired into operations.

One event per line, in the order the events happened (the line order is the real-time order;
``time`` is carried for display and never reordered by)::

    {"process": 3, "session": "s3", "type": "invoke", "f": "write", "key": "k1", "value": 7}
    {"process": 3, "session": "s3", "type": "ok", "f": "write", "key": "k1", "value": 7}

Fields: ``process`` (a thread of control: at most one outstanding operation), ``session``
(optional; the client whose session guarantees are checked; default ``"p<process>"``),
``type`` (``invoke`` then one of ``ok`` / ``fail`` / ``info``), ``f``, ``key`` (optional; one
implicit key when absent), ``value``, ``time`` (optional, ns). Optional extras, on the invoke
or the completion: ``final`` (true: a read taken after quiescence, for ``convergence``),
``replica`` (which copy served the operation), ``version`` (the version the system assigned
to a write, or that a read returned: a number, a list compared lexicographically, or an
object compared as a vector clock).

An ``info`` operation never completes: it may take effect at any time after its invoke, or
never, so its process may not invoke again (use a new process id; :class:`checker.Recorder`
does). An invoke with no completion by the end of the history is treated as ``info``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from checker.datatypes import (
    COUNTER,
    FUNCTIONS,
    READ,
    REGISTER,
    SET,
    datatype_of_function,
)

EVENT_TYPES = ("invoke", "ok", "fail", "info")
NEVER = math.inf  # the completion position of an operation that never completes


class HistoryError(ValueError):
    """The history is malformed: it cannot be checked as it stands (exit code 3)."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


@dataclass(slots=True)
class Op:
    """One operation: an invoke paired with its completion.

    ``invoke_pos`` and ``complete_pos`` are positions in the event sequence (the real-time
    order); ``complete_pos`` is ``NEVER`` for an ``info`` operation. ``value`` is the
    argument (from the invoke); ``result`` what a read returned (from its ``ok``).
    """

    id: int
    process: Any
    session: Any
    f: str
    key: Any
    value: Any
    status: str
    invoke_pos: int
    complete_pos: float
    invoke_line: int
    complete_line: int | None = None
    result: Any = None
    invoke_time: Any = None
    complete_time: Any = None
    final: bool = False
    replica: Any = None
    version: Any = None
    pending: bool = False  # no completion at all by the end of the history

    @property
    def is_read(self) -> bool:
        return self.f == READ

    @property
    def is_update(self) -> bool:
        return self.f != READ

    def to_dict(self) -> dict[str, Any]:
        """The operation as the JSON a counterexample carries."""
        out: dict[str, Any] = {
            "process": self.process,
            "session": self.session,
            "f": self.f,
            "key": self.key,
            "value": self.result if self.is_read else self.value,
            "type": self.status,
            "invoke_line": self.invoke_line,
            "complete_line": self.complete_line,
        }
        for name in ("invoke_time", "complete_time", "replica", "version"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.final:
            out["final"] = True
        if self.pending:
            out["pending"] = True
        return out

    def describe(self) -> str:
        """One readable line: where it is, who did it, what it did and how it ended."""
        if self.is_read:
            what = f"read -> {_show(self.result)}" if self.status == "ok" else "read"
        elif self.f == "cas":
            expected, new = self.value
            what = f"cas {_show(expected)} -> {_show(new)}"
        else:
            what = f"{self.f} {_show(self.value)}"
        end = (
            f"{self.status} line {self.complete_line}"
            if self.complete_line is not None
            else "no completion"
        )
        extras = "".join(
            f" {name}={_show(getattr(self, name))}"
            for name in ("replica", "version")
            if getattr(self, name) is not None
        )
        final = " final" if self.final else ""
        who = f"p{self.process}"
        if self.session != who:
            who += f" session {_show(self.session)}"
        where = f"line {self.invoke_line:>5}  {who}  key {_show(self.key)}"
        return f"{where}: {what}  [{end}]{final}{extras}"


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass
class History:
    """Validated operations, in invoke order, with each key's datatype."""

    ops: list[Op]
    datatypes: dict[Any, str] = field(default_factory=dict)
    events: int = 0

    def keys(self) -> list[Any]:
        return list(self.datatypes)

    def by_key(self) -> dict[Any, list[Op]]:
        grouped: dict[Any, list[Op]] = {key: [] for key in self.datatypes}
        for op in self.ops:
            grouped[op.key].append(op)
        return grouped

    def __len__(self) -> int:
        return len(self.ops)


def read_history(source: str | Path | IO[str]) -> History:
    """Parse and validate a JSON-lines history from a path, ``-`` (stdin) or an open file."""
    if isinstance(source, str) and source == "-":
        return parse_history(_json_lines(sys.stdin))
    if isinstance(source, str | Path):
        try:
            with open(source, encoding="utf-8") as handle:
                return parse_history(_json_lines(handle))
        except OSError as exc:
            raise HistoryError(f"cannot read {source}: {exc.strerror}") from exc
    return parse_history(_json_lines(source))


def _json_lines(handle: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(handle, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            event = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"not JSON ({exc.msg})", line=number) from exc
        if not isinstance(event, dict):
            raise HistoryError("an event must be a JSON object", line=number)
        yield number, event


def parse_history(
    events: Iterable[dict[str, Any]] | Iterable[tuple[int, dict[str, Any]]],
) -> History:
    """Validate events (dicts, or ``(line, dict)`` pairs) and pair them into operations."""
    builder = _Builder()
    for position, item in enumerate(events):
        if isinstance(item, tuple):
            line, event = item
        else:
            line, event = position + 1, item
        builder.add(position, line, event)
    return builder.finish()


class _Builder:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.outstanding: dict[Any, Op] = {}
        self.crashed: dict[Any, int] = {}  # process -> line of its info completion
        self.datatypes: dict[Any, str] = {}
        self.datatype_lines: dict[Any, int] = {}
        self.count = 0

    def add(self, position: int, line: int, event: dict[str, Any]) -> None:
        self.count += 1
        if not isinstance(event, dict):
            raise HistoryError("an event must be a JSON object", line=line)
        kind = event.get("type")
        if kind not in EVENT_TYPES:
            raise HistoryError(
                f"type must be one of {', '.join(EVENT_TYPES)}, not {kind!r}", line=line
            )
        if "process" not in event or not _is_scalar(event["process"]):
            raise HistoryError("every event needs a process (a number or a string)", line=line)
        process = event["process"]
        if kind == "invoke":
            self._invoke(position, line, process, event)
        else:
            self._complete(position, line, process, kind, event)

    def _invoke(self, position: int, line: int, process: Any, event: dict[str, Any]) -> None:
        if process in self.outstanding:
            earlier = self.outstanding[process]
            raise HistoryError(
                f"process {process} invokes while its invoke at line {earlier.invoke_line} "
                "is still outstanding (a process runs one operation at a time)",
                line=line,
            )
        if process in self.crashed:
            raise HistoryError(
                f"process {process} invokes after its operation ended in info at line "
                f"{self.crashed[process]}; an info operation stays outstanding forever, so the "
                "next operation needs a new process id (checker.Recorder does this)",
                line=line,
            )
        f = event.get("f")
        if f not in FUNCTIONS:
            raise HistoryError(f"f must be one of {', '.join(FUNCTIONS)}, not {f!r}", line=line)
        key = event.get("key")
        if not _is_scalar(key):
            raise HistoryError("key must be a string, a number or absent", line=line)
        value = event.get("value")
        _check_argument(f, value, line)
        if f == "increment" and value is None:
            value = 1
        datatype = datatype_of_function(f)
        if datatype is not None:
            known = self.datatypes.get(key)
            if known is not None and known != datatype:
                raise HistoryError(
                    f"key {key!r} is a {known} (line {self.datatype_lines[key]}) "
                    f"but {f} belongs to a {datatype}",
                    line=line,
                )
            if known is None:
                self.datatypes[key] = datatype
                self.datatype_lines[key] = line
        session = event.get("session")
        if session is None:
            session = f"p{process}"
        elif not _is_scalar(session):
            raise HistoryError("session must be a string or a number", line=line)
        op = Op(
            id=len(self.ops),
            process=process,
            session=session,
            f=f,
            key=key,
            value=value,
            status="info",
            invoke_pos=position,
            complete_pos=NEVER,
            invoke_line=line,
            invoke_time=event.get("time"),
            pending=True,
        )
        self._extras(op, event, line)
        self.ops.append(op)
        self.outstanding[process] = op

    def _complete(
        self, position: int, line: int, process: Any, kind: str, event: dict[str, Any]
    ) -> None:
        op = self.outstanding.pop(process, None)
        if op is None:
            raise HistoryError(
                f"{kind} for process {process}, which has no outstanding invoke", line=line
            )
        if "f" in event and event["f"] != op.f:
            raise HistoryError(
                f"{kind} says f={event['f']!r} but the invoke at line {op.invoke_line} "
                f"was {op.f!r}",
                line=line,
            )
        if "key" in event and event["key"] != op.key:
            raise HistoryError(
                f"{kind} says key={event['key']!r} but the invoke at line {op.invoke_line} "
                f"was for key {op.key!r}",
                line=line,
            )
        op.status = kind
        op.pending = False
        op.complete_line = line
        op.complete_time = event.get("time")
        if kind == "info":
            self.crashed[process] = line
        else:
            op.complete_pos = position
        if kind == "ok" and op.is_read:
            op.result = event.get("value")
        self._extras(op, event, line)

    def _extras(self, op: Op, event: dict[str, Any], line: int) -> None:
        if "final" in event:
            if not isinstance(event["final"], bool):
                raise HistoryError("final must be true or false", line=line)
            op.final = op.final or event["final"]
        if event.get("replica") is not None:
            if not _is_scalar(event["replica"]):
                raise HistoryError("replica must be a string or a number", line=line)
            op.replica = event["replica"]
        if event.get("version") is not None:
            version = event["version"]
            if not _is_version(version):
                raise HistoryError(
                    "version must be a number, a list of numbers or an object of numbers",
                    line=line,
                )
            op.version = version

    def finish(self) -> History:
        for op in self.ops:
            if op.final and not op.is_read:
                raise HistoryError(
                    "only reads can be final (final reads say what each replica holds)",
                    line=op.invoke_line,
                )
        # keys only ever read: typed by what the reads returned (lists: a set, integers: a
        # counter), else a register
        untyped = {op.key: REGISTER for op in self.ops if op.key not in self.datatypes}
        for op in self.ops:
            if op.key in untyped and untyped[op.key] == REGISTER:
                if isinstance(op.result, list):
                    untyped[op.key] = SET
                elif isinstance(op.result, int) and not isinstance(op.result, bool):
                    untyped[op.key] = COUNTER
        self.datatypes.update(untyped)
        for op in self.ops:
            if op.is_read and op.status == "ok":
                _check_read_type(op, self.datatypes[op.key])
        return History(ops=self.ops, datatypes=self.datatypes, events=self.count)


def _is_scalar(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_version(value: Any) -> bool:
    if _is_number(value):
        return True
    if isinstance(value, list):
        return all(_is_number(item) for item in value)
    if isinstance(value, dict):
        return all(_is_number(item) for item in value.values())
    return False


def _check_argument(f: str, value: Any, line: int) -> None:
    if f == "cas" and not (isinstance(value, list) and len(value) == 2):
        raise HistoryError("a cas value is [expected, new]", line=line)
    if (
        f == "increment"
        and value is not None
        and (not isinstance(value, int) or isinstance(value, bool))
    ):
        raise HistoryError("an increment value is an integer (default 1)", line=line)
    if f in ("add", "remove") and isinstance(value, list | dict):
        raise HistoryError(f"an {f} value is one element (a string or a number)", line=line)


def _check_read_type(op: Op, datatype: str) -> None:
    result = op.result
    if datatype == SET and result is not None and not isinstance(result, list):
        raise HistoryError(
            f"a read of set {op.key!r} returns a list (or null), not {result!r}",
            line=op.complete_line,
        )
    if (
        datatype == COUNTER
        and result is not None
        and not (isinstance(result, int) and not isinstance(result, bool))
    ):
        raise HistoryError(
            f"a read of counter {op.key!r} returns an integer (or null), not {result!r}",
            line=op.complete_line,
        )
