"""The soak's history in the history checker's format (``checker``, issue 14): profile writes
and reads as one register per profile, counter increments (and the final counter reads) as
counters. Transfers are left out: a transfer's effect lands after its answer (202), which is
no operation of the checker's datatypes.

Each chaos client runs one operation at a time, so a client is a checker ``process`` (a new
one after an unknown outcome, which stays outstanding); the demo user whose token it holds is
its ``session`` (the server keeps one session per token). Events are ordered by time (the
soak's, rounded to 0.1 ms); at equal times invokes come before completions, so no operation is
claimed to precede another it may overlap; a client's invoke at the time its previous operation
ended follows that completion, and only it (a client runs one operation at a time).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos.history import FAIL, OK, History, Operation

_TYPES = {OK: "ok", FAIL: "fail"}  # anything else (unknown) is info
_INVOKE, _COMPLETE_BEFORE_NEXT, _COMPLETE = 0, 1, 2


def checker_events(history: History) -> list[dict[str, Any]]:
    timed: list[tuple[float, int, int, dict[str, Any]]] = []
    processes: dict[str, str] = {}
    restarts: dict[str, int] = {}
    next_start = _next_starts(history.operations)
    for position, operation in enumerate(history.operations):
        converted = _converted(operation)
        if converted is None:
            continue
        f, key, argument, result, extra = converted
        process = processes.setdefault(operation.client, operation.client)
        common = {"process": process, "session": operation.client.split("-")[0], "f": f}
        if key is not None:
            common["key"] = key
        kind = _TYPES.get(operation.outcome, "info")
        if f == "read" and kind == "info":
            kind = "fail"  # a read that did not return showed nothing
        invoke = {**common, "type": "invoke", "value": argument, **extra.get("invoke", {})}
        completion = {
            **common,
            "type": kind,
            "value": result if f == "read" and kind == "ok" else argument,
            **extra.get("complete", {}),
        }
        timed.append((operation.started, _INVOKE, position, invoke))
        rank = _COMPLETE_BEFORE_NEXT if next_start.get(position) == operation.ended else _COMPLETE
        timed.append((operation.ended, rank, position, completion))
        if kind == "info":
            restarts[operation.client] = restarts.get(operation.client, 0) + 1
            processes[operation.client] = f"{operation.client}#{restarts[operation.client]}"
    timed.sort(key=lambda item: item[:3])
    return [{**event, "time": int(at * 1e9)} for at, event in _client_order(timed)]


def _client_order(timed: list[tuple[float, int, int, dict[str, Any]]]):
    """Hold back an invoke whose process is still running an operation until that operation's
    completion (at the same time) has gone out."""
    running: set[str] = set()
    held: dict[str, tuple[float, dict[str, Any]]] = {}
    for at, rank, _, event in timed:
        process = event["process"]
        if rank == _INVOKE and process in running:
            held[process] = (at, event)
            continue
        yield at, event
        if rank == _INVOKE:
            running.add(process)
        elif event["type"] != "info":
            running.discard(process)
            if process in held:
                running.add(process)
                yield held.pop(process)


def _next_starts(operations: list[Operation]) -> dict[int, float]:
    """For each operation (by position), when its client's next operation started."""
    following: dict[int, float] = {}
    last: dict[str, int] = {}
    for position, operation in enumerate(operations):
        if operation.client in last:
            following[last[operation.client]] = operation.started
        last[operation.client] = position
    return following


def _converted(operation: Operation):
    data = operation.data
    if operation.kind == "profile_write" and "bio" in data:
        return "write", f"profile:{data['user']}", data["bio"], None, {}
    if operation.kind == "profile_read" and "user" in data:
        replica = {"complete": {"replica": data["served_by"]}} if "served_by" in data else {}
        return "read", f"profile:{data['user']}", None, data.get("bio") or None, replica
    if operation.kind == "increment":
        return "increment", data["key"], data["by"], None, {}
    if operation.kind == "counter_final":
        return "read", data["key"], None, data.get("value"), {"invoke": {"final": True}}
    return None


def checker_history_write(history: History, path: Path) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for event in checker_events(history):
            handle.write(json.dumps(event, default=str) + "\n")
    return path
