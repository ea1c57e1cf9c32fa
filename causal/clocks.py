"""Vector clocks and dotted version vectors (DVV), the causality of replicated values.

A vector clock maps a replica (node or region) id to the number of events it has issued; one
clock happened before another when it is less or equal everywhere and different somewhere.
Two clocks neither before nor after each other are concurrent: their values are siblings.

Why dotted version vectors rather than a vector clock per value: with plain per-value vector
clocks, a server that stores a write from a client whose context is old cannot tell the new
value from the old sibling it is concurrent with, so every retry of a stale client adds a
sibling (Riak's "sibling explosion"). A dotted version vector gives each stored value its own
*dot* (the replica that accepted the write and that replica's event counter) next to the
*context* the client read: a value is obsolete exactly when another write's context covers its
dot, so a write removes precisely the siblings its client saw, and nothing else (Preguiça,
Baquero et al., "Dotted Version Vectors: Logical Clocks for Optimistic Replication", 2010;
Riak 2.0 adopted them for this reason).

Hand-written because these few operations are the application's data model (they decide what
a read returns and what a write removes), and no maintained Python package offers them over
rows stored in Postgres.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

MAX_COUNTER = 2**62


class Order(Enum):
    BEFORE = "before"
    AFTER = "after"
    EQUAL = "equal"
    CONCURRENT = "concurrent"


class ClockError(ValueError):
    """A clock or dot that is not well formed (from a client, a header, a row)."""


def _valid_replica(replica: Any) -> str:
    if not isinstance(replica, str) or not replica or len(replica) > 64:
        raise ClockError(
            f"a replica id is a non-empty string of at most 64 characters: {replica!r}"
        )
    return replica


def _valid_counter(counter: Any) -> int:
    if isinstance(counter, bool) or not isinstance(counter, int) or not 0 < counter < MAX_COUNTER:
        raise ClockError(f"a counter is a positive integer below 2**62: {counter!r}")
    return counter


@dataclass(frozen=True)
class VectorClock:
    """Immutable replica -> counter map; absent replicas count 0 (zeros are never stored)."""

    entries: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, mapping: Mapping[str, int] | None = None) -> VectorClock:
        items = {
            _valid_replica(replica): _valid_counter(counter)
            for replica, counter in (mapping or {}).items()
            if counter != 0
        }
        return cls(tuple(sorted(items.items())))

    def as_dict(self) -> dict[str, int]:
        return dict(self.entries)

    def get(self, replica: str) -> int:
        return self.as_dict().get(replica, 0)

    def increment(self, replica: str) -> VectorClock:
        counts = self.as_dict()
        counts[replica] = counts.get(replica, 0) + 1
        return VectorClock.of(counts)

    def merge(self, other: VectorClock) -> VectorClock:
        """The least clock that both happened before (pointwise maximum)."""
        counts = self.as_dict()
        for replica, counter in other.entries:
            counts[replica] = max(counts.get(replica, 0), counter)
        return VectorClock.of(counts)

    def descends(self, other: VectorClock) -> bool:
        """True when this clock has seen every event of `other` (>= pointwise)."""
        mine = self.as_dict()
        return all(mine.get(replica, 0) >= counter for replica, counter in other.entries)

    def compare(self, other: VectorClock) -> Order:
        forward, backward = self.descends(other), other.descends(self)
        if forward and backward:
            return Order.EQUAL
        if forward:
            return Order.AFTER
        if backward:
            return Order.BEFORE
        return Order.CONCURRENT

    def covers(self, dot: Dot) -> bool:
        return self.get(dot.replica) >= dot.counter

    def with_dot(self, dot: Dot) -> VectorClock:
        return self.merge(VectorClock.of({dot.replica: dot.counter}))


@dataclass(frozen=True, order=True)
class Dot:
    """One write event: the replica that accepted it and that replica's counter."""

    replica: str
    counter: int

    def __post_init__(self) -> None:
        _valid_replica(self.replica)
        _valid_counter(self.counter)

    def as_list(self) -> list[Any]:
        return [self.replica, self.counter]

    @classmethod
    def from_list(cls, value: Any) -> Dot:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ClockError(f"a dot is [replica, counter]: {value!r}")
        return cls(value[0], value[1])


@dataclass(frozen=True)
class Version:
    """A stored value's causal identity: its own dot and the context its writer had read."""

    dot: Dot
    context: VectorClock

    def clock(self) -> VectorClock:
        """The vector clock this version stands for (its context plus its own event)."""
        return self.context.with_dot(self.dot)

    def obsoleted_by(self, context: VectorClock) -> bool:
        return context.covers(self.dot)


def new_dot(replica: str, context: VectorClock, known: Iterable[Dot]) -> Dot:
    """The dot of a write accepted by `replica`: one past every event of that replica that the
    write's context or the replica's stored versions know of, so dots are never reused."""
    highest = max([context.get(replica), *(dot.counter for dot in known if dot.replica == replica)])
    return Dot(replica, highest + 1)


def surviving(versions: Iterable[Version], context: VectorClock) -> list[Version]:
    """The versions a write with `context` leaves in place: those its writer had not seen."""
    return [version for version in versions if not version.obsoleted_by(context)]


def siblings(versions: Iterable[Version]) -> list[Version]:
    """The versions not obsoleted by another one's context: what a read returns."""
    versions = list(versions)
    return sorted(
        {
            version
            for version in versions
            if not any(
                other.dot != version.dot and other.context.covers(version.dot) for other in versions
            )
        },
        key=lambda version: version.dot,
    )


def joined_context(versions: Iterable[Version]) -> VectorClock:
    """The context a reader gets: every event behind the versions it was given."""
    clock = VectorClock()
    for version in versions:
        clock = clock.merge(version.clock())
    return clock
