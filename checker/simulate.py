"""A simulated single-copy (atomic) store, for the benchmark and the property tests.

Clients run concurrently against one copy of every key. Each operation takes effect at one
instant between its invoke and its completion, so every history this produces is
linearizable (and so sequentially consistent, causal, and every session guarantee holds).
Some operations time out: the client records ``info`` and carries on under a new process id;
such an operation takes effect or not, possibly well after the client gave up.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from checker.datatypes import COUNTER, REGISTER, SET


@dataclass
class _Planned:
    process: int
    session: str
    f: str
    key: str
    value: Any
    invoke_at: float
    effect_at: float
    complete_at: float
    times_out: bool
    takes_effect: bool = True
    status: str = "ok"
    result: Any = None
    order: int = field(default=0)


def simulate_history(
    rng: random.Random,
    *,
    operations: int = 1000,
    keys: int = 10,
    clients: int = 5,
    datatype: str = REGISTER,
    read_ratio: float = 0.5,
    cas_ratio: float = 0.1,
    info_rate: float = 0.02,
    final_replicas: int = 0,
) -> list[dict[str, Any]]:
    """Events of a linearizable execution, in the order they happened.

    With ``final_replicas``, the history ends, after quiescence, with that many final reads
    of every key (``"final": true``, ``replica`` ``r0``, ``r1``...), as a convergence check
    needs; a single copy trivially converges.
    """
    key_names = [f"k{index}" for index in range(keys)]
    written: dict[str, list[Any]] = {key: [] for key in key_names}
    next_value = 0
    next_process = clients
    planned: list[_Planned] = []
    ready = [
        (rng.random(), client, client) for client in range(clients)
    ]  # (free at, client, process)
    heapq.heapify(ready)
    while len(planned) < operations:
        free_at, client, process = heapq.heappop(ready)
        key = rng.choice(key_names)
        f, value = _choose(
            rng,
            datatype=datatype,
            read_ratio=read_ratio,
            cas_ratio=cas_ratio,
            written=written[key],
            last_value=next_value,
        )
        if f in ("write", "cas"):
            next_value += 1
            written[key].append(next_value)
        invoke_at = free_at + rng.random() * 0.5
        effect_at = invoke_at + rng.random()
        complete_at = effect_at + rng.random()
        times_out = rng.random() < info_rate
        op = _Planned(
            process=process,
            session=f"s{client}",
            f=f,
            key=key,
            value=value,
            invoke_at=invoke_at,
            effect_at=effect_at,
            complete_at=complete_at,
            times_out=times_out,
            order=len(planned),
        )
        if times_out:
            op.status = "info"
            op.complete_at = invoke_at + 1.0  # the client gives up after a timeout
            op.effect_at = invoke_at + rng.random() * 4.0  # maybe long after that
            op.takes_effect = rng.random() < 0.5
            heapq.heappush(ready, (op.complete_at, client, next_process))
            next_process += 1
        else:
            heapq.heappush(ready, (complete_at, client, process))
        planned.append(op)
    state = _execute(planned, datatype)
    events = _events(planned, datatype)
    after = max((op.effect_at for op in planned), default=0.0) + 1.0
    process = max((op.process for op in planned), default=0) + 1
    for key in key_names if final_replicas else ():
        value = state.get(key, _initial(datatype))
        result = sorted(value) if datatype == SET else value
        for replica in range(final_replicas):
            base = {"process": process, "session": f"final-{replica}", "f": "read", "key": key}
            for kind, result_value in (("invoke", None), ("ok", result)):
                events.append(
                    {
                        **base,
                        "type": kind,
                        "value": result_value,
                        "final": True,
                        "replica": f"r{replica}",
                        "time": int(after * 1_000_000),
                    }
                )
                after += 0.001
            process += 1
    return events


def _initial(datatype: str) -> Any:
    if datatype == SET:
        return frozenset()
    return 0 if datatype == COUNTER else None


def _choose(
    rng: random.Random,
    *,
    datatype: str,
    read_ratio: float,
    cas_ratio: float,
    written: list[Any],
    last_value: int,
) -> tuple[str, Any]:
    if rng.random() < read_ratio:
        return "read", None
    if datatype == REGISTER:
        if written and rng.random() < cas_ratio:
            return "cas", [rng.choice(written[-3:]), last_value + 1]
        return "write", last_value + 1
    if datatype == SET:
        return rng.choice(("add", "add", "remove")), rng.randrange(8)
    return "increment", rng.choice((1, 1, 2, 5, -1))


def _execute(planned: list[_Planned], datatype: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for op in sorted(planned, key=lambda op: (op.effect_at, op.order)):
        if not op.takes_effect:
            continue
        current = state.get(op.key, _initial(datatype))
        if op.f == "read":
            op.result = sorted(current) if datatype == SET else current
        elif op.f == "write":
            state[op.key] = op.value
        elif op.f == "cas":
            if current == op.value[0]:
                state[op.key] = op.value[1]
            elif not op.times_out:
                op.status = "fail"
        elif op.f == "add":
            state[op.key] = current | {op.value}
        elif op.f == "remove":
            state[op.key] = current - {op.value}
        else:
            state[op.key] = current + op.value
    return state


def _events(planned: list[_Planned], datatype: str) -> list[dict[str, Any]]:
    timeline: list[tuple[float, int, dict[str, Any]]] = []
    for op in planned:
        if op.f == "read" and datatype == COUNTER and op.result is None:
            op.result = 0
        base = {"process": op.process, "session": op.session, "f": op.f, "key": op.key}
        invoke = {**base, "type": "invoke", "value": op.value}
        complete = {**base, "type": op.status, "value": op.result if op.f == "read" else op.value}
        timeline.append((op.invoke_at, 2 * op.order, invoke))
        timeline.append((op.complete_at, 2 * op.order + 1, complete))
    timeline.sort(key=lambda item: (item[0], item[1]))
    events = []
    for at, _, event in timeline:
        event["time"] = int(at * 1_000_000)
        events.append(event)
    return events
