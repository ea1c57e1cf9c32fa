"""The four session guarantees of Terry et al. (PDIS 1994), checked from what the sessions saw.

Terry et al. define the guarantees on the servers' databases; a client history only shows
what each read returned. So each read ``r`` gets a *required view*: the writes it must
include under the guarantees being checked, the least set closed under these rules (session
order: ``a`` before ``b`` when they share a session and ``a`` completed before ``b`` was
invoked):

- always: ``r`` includes the write it read from, and what that write requires;
- read-your-writes: ``r`` includes its session's ok writes before it;
- monotonic reads: ``r`` includes what its session's reads before it included;
- monotonic writes: a write requires its session's ok writes before it (Terry: wherever
  ``w2`` is, ``w1`` is too), and is not ordered before them;
- writes-follow-reads: a write requires what its session's reads before it included, and
  is not ordered before the writes those reads returned.

So the required view of ``r`` is the set of writes reachable from ``r`` over reads-from and
the session-order steps the checked guarantees allow: a bitset per operation, built in one
pass (every step goes to an operation settled earlier in the history). A read violates the
guarantees when its required view holds a write to its key *newer* than the one it returned,
in the key's version order: the ``version`` field when the history has one (a number, a list
compared lexicographically, or an object compared as a vector clock), else the order real
time proves under the assumption that the store orders each key's writes consistently with
real time (one primary, or any linearizable write path): ``w1`` before ``w2`` when ``w1``
completed, or something that saw ``w1`` completed, before ``w2`` was invoked. Concurrent
writes are not ordered, so no violation is claimed between them: the check is sound under
that assumption, not complete. Stores that order writes otherwise (last-writer-wins on
skewed clocks, several leaders) should record ``version``.

Registers only (unique values per key, see :mod:`checker.registers`); set and counter keys
are skipped and listed. With single-key reads, monotonic writes and writes-follow-reads on
their own are seldom observable (one read must see the later write and lack the earlier);
combined in ``session`` they act through each reader's own session.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from checker.history import History, HistoryError, Op
from checker.registers import RegisterView, register_view
from checker.verdict import HOLDS, UNKNOWN, VIOLATED, Counterexample, Verdict

READ_YOUR_WRITES = "read-your-writes"
MONOTONIC_READS = "monotonic-reads"
MONOTONIC_WRITES = "monotonic-writes"
WRITES_FOLLOW_READS = "writes-follow-reads"
SESSION = "session"
GUARANTEES = (READ_YOUR_WRITES, MONOTONIC_READS, MONOTONIC_WRITES, WRITES_FOLLOW_READS)

_RULES = {name: frozenset({name}) for name in GUARANTEES} | {SESSION: frozenset(GUARANTEES)}


class VersionOrder:
    """Each key's write order: explicit versions, or what real time proves."""

    def __init__(self, view: RegisterView) -> None:
        self.explicit: set[Any] = set()
        self.versions: dict[int, Any] = {}
        self.settled: dict[int, float] = {}  # write id -> when it had surely taken effect
        for key in view.keys:
            writes = view.writes_of(key)
            versions = {op.id: self._version(op, view) for op in writes}
            if any(version is not None for version in versions.values()):
                self._take_versions(key, writes, versions)
        for op in view.effective_writes:
            readers = view.observers.get(op.id, [])
            self.settled[op.id] = min([op.complete_pos, *(r.complete_pos for r in readers)])

    @staticmethod
    def _version(op: Op, view: RegisterView) -> Any:
        if op.version is not None:
            return op.version
        for reader in view.observers.get(op.id, []):
            if reader.version is not None:
                return reader.version
        return None

    def _take_versions(self, key: Any, writes: list[Op], versions: dict[int, Any]) -> None:
        for op in writes:
            if versions[op.id] is None:
                raise HistoryError(
                    f"key {key!r} has versions but this write has none (nor has any read of "
                    "it): give every write of a key a version, or none",
                    line=op.invoke_line,
                )
        kinds = {_version_kind(version) for version in versions.values()}
        if len(kinds) > 1:
            raise HistoryError(f"key {key!r} mixes kinds of version: {sorted(kinds)}")
        self.explicit.add(key)
        self.versions.update(versions)

    def before(self, first: Op | None, second: Op | None) -> bool:
        """True when ``first`` is certainly ordered before ``second`` (None: initial value)."""
        if second is None or first is second:
            return False
        if first is None:
            return True
        if first.key in self.explicit:
            return _version_less(self.versions[first.id], self.versions[second.id])
        return self.settled[first.id] < second.invoke_pos


def _version_kind(version: Any) -> str:
    if isinstance(version, dict):
        return "vector clock"
    return "list" if isinstance(version, list) else "number"


def _version_less(first: Any, second: Any) -> bool:
    if isinstance(first, dict):
        names = set(first) | set(second)
        below = all(first.get(name, 0) <= second.get(name, 0) for name in names)
        return below and any(first.get(name, 0) < second.get(name, 0) for name in names)
    if isinstance(first, list):
        return tuple(first) < tuple(second)
    return first < second


@dataclass
class _Violation:
    anchor: Op  # the read that returned too old a value, or the write ordered too early
    seen: Op | None  # the write the read returned (None: the initial null)
    newer: Op  # the write it had to include
    write_order: bool = False  # a write whose version comes before one it must follow


def check_session(history: History, model: str) -> Verdict:
    """Check one of the four guarantees, or all four (``session``)."""
    rules = _RULES[model]
    view = register_view(history)
    if not view.keys:
        return Verdict(
            model=model,
            outcome=UNKNOWN,
            reason="the session guarantees are checked on registers; this history has none",
            stats={"skipped_keys": view.skipped_keys},
        )
    order = VersionOrder(view)
    stats: dict[str, Any] = {
        "registers": len(view.keys),
        "reads": len(view.observations),
        "skipped_keys": view.skipped_keys,
        "version_order": "explicit" if order.explicit else "real time",
    }
    if view.thin_air:
        stats["violations"] = len(view.thin_air)
        return thin_air_verdict(model, view.thin_air[0], stats)
    walk = _Walk(history, view, order, rules)
    violations = list(walk.violations())
    stats["violations"] = len(violations)
    if not violations:
        return Verdict(
            model=model,
            outcome=HOLDS,
            reason=f"{len(view.observations)} reads on {len(view.keys)} registers satisfy {model}",
            stats=stats,
        )
    first = violations[0]
    counterexample = walk.counterexample(first)
    return Verdict(
        model=model,
        outcome=VIOLATED,
        reason=(
            f"session {first.anchor.session!r}, key {first.anchor.key!r}: "
            f"{counterexample.kind} violated"
        ),
        counterexample=counterexample,
        stats=stats,
    )


def thin_air_verdict(model: str, reader: Op, stats: dict[str, Any]) -> Verdict:
    return Verdict(
        model=model,
        outcome=VIOLATED,
        reason=f"a read of key {reader.key!r} returned a value no write had written",
        counterexample=Counterexample(
            kind="thin-air-read",
            explanation=(
                f"the {reader.f} at line {reader.invoke_line} returned a value no write of key "
                f"{reader.key!r} wrote (or only a write invoked after it completed)"
            ),
            ops=[reader],
            key=reader.key,
        ),
        stats=stats,
    )


class _Walk:
    """One pass over the events, computing each operation's required view as a bitset.

    Bit ``i`` stands for the ``i``-th effective write in invoke order, so a view's newest
    write (real-time order) is its highest bit. A write's view is what it requires (taken at
    its invoke); a read's or cas's view is what it must include (taken at its completion,
    from its session's views at its invoke).
    """

    def __init__(
        self, history: History, view: RegisterView, order: VersionOrder, rules: frozenset[str]
    ) -> None:
        self.history = history
        self.order = order
        self.rules = rules
        self.keys = set(view.keys)
        self.writes = view.effective_writes  # in invoke order
        self.bit = {op.id: 1 << index for index, op in enumerate(self.writes)}
        self.key_bits: dict[Any, int] = {}
        for op in self.writes:
            self.key_bits[op.key] = self.key_bits.get(op.key, 0) | self.bit[op.id]
        self.observed = {obs.reader.id: obs.write for obs in view.observations}
        self.requires: dict[int, int] = {}  # write id -> writes it requires (not itself)
        self.includes: dict[int, int] = {}  # read or cas id -> writes it must include
        self.before_invoke: dict[int, tuple[int, int]] = {}  # op id -> session views then
        self.completed: dict[Any, list[Op]] = {}  # session -> its ok ops by completion
        for op in sorted(history.ops, key=lambda op: op.complete_pos):
            if op.key in self.keys and op.status == "ok":
                self.completed.setdefault(op.session, []).append(op)
        self.completions = {
            session: [op.complete_pos for op in ops] for session, ops in self.completed.items()
        }

    def violations(self) -> Iterator[_Violation]:
        own_writes: dict[Any, int] = {}  # session -> its completed ok writes and requirements
        own_reads: dict[Any, int] = {}  # session -> what its completed reads included
        for kind, op in self._events():
            session = op.session
            if kind == "invoke":
                writes_before = own_writes.get(session, 0)
                reads_before = own_reads.get(session, 0)
                self.before_invoke[op.id] = (writes_before, reads_before)
                if op.id in self.bit:
                    yield from self._invoke_write(op, writes_before, reads_before)
                continue
            writes_before, reads_before = self.before_invoke[op.id]
            if op.id in self.observed:
                yield from self._complete_read(op, writes_before, reads_before)
                own_reads[session] = own_reads.get(session, 0) | self.includes[op.id]
            if op.id in self.bit:
                closed = self.requires[op.id] | self.bit[op.id]
                own_writes[session] = own_writes.get(session, 0) | closed

    def _events(self) -> Iterator[tuple[str, Op]]:
        timeline: list[tuple[float, str, Op]] = []
        for op in self.history.ops:
            if op.key not in self.keys or op.status == "fail":
                continue
            if op.id in self.bit or op.id in self.observed:
                timeline.append((op.invoke_pos, "invoke", op))
                if op.status == "ok":
                    timeline.append((op.complete_pos, "ok", op))
        timeline.sort(key=lambda item: item[0])
        for _, kind, op in timeline:
            yield kind, op

    def _invoke_write(self, op: Op, writes_before: int, reads_before: int) -> Iterator[_Violation]:
        required = 0
        if MONOTONIC_WRITES in self.rules:
            required |= writes_before
        if WRITES_FOLLOW_READS in self.rules:
            required |= reads_before
        self.requires[op.id] = required
        if op.key in self.order.explicit:
            for earlier in self._ops(required & self.key_bits[op.key]):
                if self.order.before(op, earlier):
                    yield _Violation(op, None, earlier, write_order=True)
                    return

    def _complete_read(self, op: Op, writes_before: int, reads_before: int) -> Iterator[_Violation]:
        seen = self.observed[op.id]
        included = 0 if seen is None else self.requires.get(seen.id, 0) | self.bit[seen.id]
        if READ_YOUR_WRITES in self.rules:
            included |= writes_before
        if MONOTONIC_READS in self.rules:
            included |= reads_before
        self.includes[op.id] = included
        same_key = included & self.key_bits.get(op.key, 0)
        if not same_key:
            return
        if op.key in self.order.explicit:
            candidates = self._ops(same_key)
        else:  # the latest invoked write is the one real time can best prove newer
            candidates = [self.writes[same_key.bit_length() - 1]]
        for newer in candidates:
            if self.order.before(seen, newer):
                yield _Violation(op, seen, newer)
                return

    def _ops(self, bits: int) -> list[Op]:
        found = []
        while bits:
            lowest = bits & -bits
            found.append(self.writes[lowest.bit_length() - 1])
            bits ^= lowest
        return found

    def _steps(self, op: Op, as_reader: bool) -> Iterator[tuple[Op, bool, str | None]]:
        """What ``op`` leans on directly: (operation, acts as a reader, guarantee or None).

        None marks a read's step to the write it returned; the others are session steps.
        """
        if as_reader:
            seen = self.observed.get(op.id)
            if seen is not None:
                yield seen, False, None
        takes_writes = READ_YOUR_WRITES if as_reader else MONOTONIC_WRITES
        takes_reads = MONOTONIC_READS if as_reader else WRITES_FOLLOW_READS
        done = bisect_left(self.completions.get(op.session, []), op.invoke_pos)
        for other in self.completed.get(op.session, [])[:done]:
            if takes_writes in self.rules and other.id in self.bit and other.status == "ok":
                yield other, False, takes_writes
            if takes_reads in self.rules and other.id in self.includes:
                yield other, True, takes_reads

    def _holds(self, op_id: int, as_reader: bool, bit: int) -> bool:
        if as_reader:
            return bool(self.includes.get(op_id, 0) & bit)
        return bool((self.requires.get(op_id, 0) | self.bit.get(op_id, 0)) & bit)

    def counterexample(self, violation: _Violation) -> Counterexample:
        """The shortest chain of steps from the violating operation to the write it missed."""
        start = (violation.anchor.id, not violation.write_order)
        target = violation.newer
        bit = self.bit[target.id]
        previous: dict[tuple[int, bool], tuple[tuple[int, bool], str | None] | None] = {start: None}
        queue = deque([start])
        found = None
        while queue and found is None:
            node = queue.popleft()
            for other, as_reader, rule in self._steps(self.history.ops[node[0]], node[1]):
                step = (other.id, as_reader)
                if step in previous or not self._holds(other.id, as_reader, bit):
                    continue
                previous[step] = (node, rule)
                if other is target and not as_reader:
                    found = step
                    break
                queue.append(step)
        chain: list[Op] = []
        used: list[str] = []
        while found is not None:
            chain.append(self.history.ops[found[0]])
            link = previous[found]
            if link is None:
                break
            found, rule = link
            if rule is not None and rule not in used:
                used.insert(0, rule)
        chain.reverse()
        return _describe(violation, chain, used or sorted(self.rules))


def _describe(violation: _Violation, chain: list[Op], used: list[str]) -> Counterexample:
    anchor, newer, seen = violation.anchor, violation.newer, violation.seen
    kind = "+".join(used)
    ops = list(chain)
    if seen is not None and seen not in ops:
        ops.append(seen)
    steps = " -> ".join(f"line {op.invoke_line}" for op in chain)
    why = (
        f"by the chain {steps} (each step: the same session earlier, or the write a read returned)"
    )
    if violation.write_order:
        explanation = (
            f"{kind}: the {anchor.f} at line {anchor.invoke_line} has a version before the "
            f"write at line {newer.invoke_line}, which it follows {why}"
        )
    else:
        returned = f"the value written at line {seen.invoke_line}" if seen else "the initial null"
        explanation = (
            f"{kind}: the {anchor.f} at line {anchor.invoke_line} (session {anchor.session!r}) "
            f"returned {returned}, older than the write at line {newer.invoke_line} it must "
            f"include {why}"
        )
    return Counterexample(kind=kind, explanation=explanation, ops=ops, key=anchor.key)
