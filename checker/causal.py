"""Causal consistency of registers: the CC model of Bouajjani, Enea, Guerraoui and Hamza.

"On verifying causal consistency" (POPL 2017) shows that, for a differentiated history (each
value written at most once per key, so every read names the write it read from), CC holds
iff none of four bad patterns occurs, where the causal order ``co`` is the transitive closure
of the session order and the reads-from relation (write -> the reads of its value):

- CyclicCO: ``co`` has a cycle;
- ThinAirRead: a read returns a value no write wrote;
- WriteCOInitRead: a read returns the initial value though a write to its key is in its
  causal past;
- WriteCORead: a read returns ``w1`` though ``w1 co w2 co r`` for a write ``w2`` to the same key
  (the value was overwritten in the read's causal past).

That is what this module checks, in polynomial time: the causal past of every operation is a
bitset over the writes, built in a topological order of ``co``. The session order is the
``session`` field's: ``a`` before ``b`` when ``a`` completed before ``b`` was invoked. An ok
cas is one node that reads its expected value and writes its new one. Stronger variants
(causal convergence CCv, causal memory CM) are not checked; ``convergence`` checks that
replicas agree. Registers only: set and counter keys are skipped and listed.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from checker.history import History, Op
from checker.registers import RegisterView, register_view
from checker.session import thin_air_verdict
from checker.verdict import HOLDS, UNKNOWN, VIOLATED, Counterexample, Verdict

MODEL = "causal"


def check_causal(history: History) -> Verdict:
    view = register_view(history)
    if not view.keys:
        return Verdict(
            model=MODEL,
            outcome=UNKNOWN,
            reason="causal consistency is checked on registers; this history has none",
            stats={"skipped_keys": view.skipped_keys},
        )
    stats: dict[str, Any] = {
        "registers": len(view.keys),
        "reads": len(view.observations),
        "skipped_keys": view.skipped_keys,
    }
    if view.thin_air:
        return thin_air_verdict(MODEL, view.thin_air[0], stats)
    graph = _CausalGraph(view)
    cycle = graph.cycle()
    if cycle is not None:
        return _violated(
            stats,
            "CyclicCO",
            "these operations form a cycle of session order and reads-from: each is in "
            "the causal past of the next, and the last in that of the first",
            cycle,
            cycle[0].key,
        )
    graph.build_pasts()
    for observation in view.observations:
        reader, write = observation.reader, observation.write
        node = graph.index[reader.id]
        if write is None:
            overwritten = graph.first_write_in_past(node, reader.key)
            if overwritten is not None:
                path = graph.path(overwritten, node)
                return _violated(
                    stats,
                    "WriteCOInitRead",
                    f"the read at line {reader.invoke_line} returned the initial null, but the "
                    f"write at line {graph.ops[overwritten].invoke_line} is in its causal past",
                    path,
                    reader.key,
                )
            continue
        hidden = graph.overwriting_write(graph.index[write.id], node, reader.key)
        if hidden is not None:
            path = graph.path(graph.index[write.id], hidden)[:-1] + graph.path(hidden, node)
            return _violated(
                stats,
                "WriteCORead",
                f"the {reader.f} at line {reader.invoke_line} returned the value written at line "
                f"{write.invoke_line}, which the write at line {graph.ops[hidden].invoke_line} "
                "overwrote in its causal past",
                path,
                reader.key,
            )
    return Verdict(
        model=MODEL,
        outcome=HOLDS,
        reason=(
            f"{len(view.observations)} reads on {len(view.keys)} registers are causally consistent"
        ),
        stats=stats,
    )


def _violated(stats: dict[str, Any], pattern: str, text: str, ops: list[Op], key: Any) -> Verdict:
    return Verdict(
        model=MODEL,
        outcome=VIOLATED,
        reason=f"bad pattern {pattern} on key {key!r}",
        counterexample=Counterexample(
            kind=pattern,
            explanation=f"{pattern}: {text} (causal order: session order and reads-from)",
            ops=ops,
            key=key,
        ),
        stats=stats,
    )


class _CausalGraph:
    """Nodes: effective writes, and reads and cas that saw a write; edges: so and wr."""

    def __init__(self, view: RegisterView) -> None:
        members = {op.id: op for op in view.effective_writes}
        members.update({obs.reader.id: obs.reader for obs in view.observations})
        self.ops: list[Op] = sorted(members.values(), key=lambda op: op.invoke_pos)
        self.index = {op.id: node for node, op in enumerate(self.ops)}
        self.preds: list[list[int]] = [[] for _ in self.ops]
        self._session_edges()
        for obs in view.observations:
            if obs.write is not None:
                self.preds[self.index[obs.reader.id]].append(self.index[obs.write.id])
        self.is_write = [op.is_update for op in self.ops]
        self.write_bit: list[int] = []
        self._bit_nodes: dict[int, int] = {}
        bit = 1
        for node in range(len(self.ops)):
            self.write_bit.append(bit if self.is_write[node] else 0)
            if self.is_write[node]:
                self._bit_nodes[bit] = node
                bit <<= 1
        self.key_writes: dict[Any, int] = {}
        for node, op in enumerate(self.ops):
            self.key_writes[op.key] = self.key_writes.get(op.key, 0) | self.write_bit[node]
        self._left: set[int] = set()  # the nodes on or behind a cycle
        self.order = self._topological()
        self.past: list[int] = []
        self.hidden: list[int] = []

    def _session_edges(self) -> None:
        timeline: list[tuple[float, int, int]] = []
        for node, op in enumerate(self.ops):
            timeline.append((op.invoke_pos, 0, node))
            if op.status == "ok":
                timeline.append((op.complete_pos, 1, node))
        timeline.sort()
        latest: dict[Any, list[int]] = {}  # session -> completed ops no later one follows
        for _, completes, node in timeline:
            op = self.ops[node]
            done = latest.setdefault(op.session, [])
            if not completes:
                self.preds[node].extend(done)
            else:
                done[:] = [
                    other for other in done if not self.ops[other].complete_pos < op.invoke_pos
                ]
                done.append(node)

    def _topological(self) -> list[int] | None:
        succs: list[list[int]] = [[] for _ in self.ops]
        indegree = [len(preds) for preds in self.preds]
        for node, preds in enumerate(self.preds):
            for pred in preds:
                succs[pred].append(node)
        ready = deque(node for node, degree in enumerate(indegree) if degree == 0)
        order = []
        while ready:
            node = ready.popleft()
            order.append(node)
            for succ in succs[node]:
                indegree[succ] -= 1
                if indegree[succ] == 0:
                    ready.append(succ)
        self._left = {node for node, degree in enumerate(indegree) if degree > 0}
        return order if len(order) == len(self.ops) else None

    def cycle(self) -> list[Op] | None:
        if self.order is not None:
            return None
        node = next(iter(self._left))
        trail: list[int] = []
        position: dict[int, int] = {}
        while node not in position:
            position[node] = len(trail)
            trail.append(node)
            node = next(pred for pred in self.preds[node] if pred in self._left)
        loop = trail[position[node] :]
        return [self.ops[step] for step in reversed(loop)]

    def build_pasts(self) -> None:
        """past: the writes co-before each node; hidden: writes overwritten co-before it."""
        past = [0] * len(self.ops)
        hidden = [0] * len(self.ops)
        for node in self.order or []:
            node_past = node_hidden = 0
            for pred in self.preds[node]:
                node_past |= past[pred] | self.write_bit[pred]
                node_hidden |= hidden[pred]
                if self.is_write[pred]:
                    node_hidden |= past[pred] & self.key_writes[self.ops[pred].key]
            past[node], hidden[node] = node_past, node_hidden
        self.past, self.hidden = past, hidden

    def first_write_in_past(self, node: int, key: Any) -> int | None:
        bits = self.past[node] & self.key_writes[key]
        return self._node_of_bit(bits & -bits) if bits else None

    def overwriting_write(self, write: int, node: int, key: Any) -> int | None:
        """A write w2 to ``key`` with write co w2 co node, if any."""
        bit = self.write_bit[write]
        if not self.hidden[node] & bit:
            return None
        candidates = self.past[node] & self.key_writes[key]
        while candidates:
            lowest = candidates & -candidates
            candidates ^= lowest
            other = self._node_of_bit(lowest)
            if self.past[other] & bit:
                return other
        return None

    def _node_of_bit(self, bit: int) -> int:
        return self._bit_nodes[bit]

    def path(self, start: int, end: int) -> list[Op]:
        """A shortest causal path from write ``start`` to node ``end`` (both included)."""
        bit = self.write_bit[start]
        previous: dict[int, int | None] = {end: None}
        queue = deque([end])
        while queue:
            node = queue.popleft()
            if node == start:
                break
            for pred in self.preds[node]:
                if pred not in previous and (pred == start or self.past[pred] & bit):
                    previous[pred] = node
                    queue.append(pred)
        steps: list[Op] = []
        walked: int | None = start
        while walked is not None:
            following = self.ops[walked]
            # session order is transitive: skip the middle of a run within one session
            if len(steps) >= 2 and _session_before(steps[-2], following):
                steps[-1] = following
            else:
                steps.append(following)
            walked = previous[walked]
        return steps


def _session_before(first: Op, second: Op) -> bool:
    return first.session == second.session and first.complete_pos < second.invoke_pos
