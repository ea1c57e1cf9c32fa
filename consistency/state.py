"""What one session wrote and saw: the positions its reads must not go behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from consistency.replicas import NO_POSITION, WalPosition

MAX_TRACKED_OBJECTS = 128

Value = TypeVar("Value", int, WalPosition)


@dataclass
class SessionState:
    """What one session wrote (object key -> WAL position, with its timeline, of its last
    write) and saw (object key -> highest version read, its own writes included). Changes are
    also kept as deltas, so that a store shared by concurrent requests can merge them
    (positions only ever rise) instead of overwriting."""

    writes: dict[str, WalPosition] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    raised_writes: set[str] = field(default_factory=set, compare=False)
    raised_seen: set[str] = field(default_factory=set, compare=False)
    forgotten: dict[str, WalPosition] = field(default_factory=dict, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {"w": {key: list(position) for key, position in self.writes.items()}, "s": self.seen}

    @classmethod
    def from_json(cls, data: Any) -> SessionState:
        if not isinstance(data, dict):
            return cls()
        writes = data.get("w") if isinstance(data.get("w"), dict) else {}
        seen = data.get("s") if isinstance(data.get("s"), dict) else {}
        return cls(
            writes={str(k): _position(v) for k, v in writes.items()},
            seen={str(k): int(v) for k, v in seen.items()},
        )

    def required_position(self, key: str | None) -> WalPosition:
        """The position a replica must hold for a read of ``key`` (None: of anything this
        session wrote); ``NO_POSITION`` when there is none."""
        if key is None:
            return max(self.writes.values(), default=NO_POSITION)
        return self.writes.get(key, NO_POSITION)

    def version_floor(self, key: str) -> int:
        return self.seen.get(key, 0)

    def raise_write(self, key: str, position: WalPosition) -> bool:
        if _bounded_put(self.writes, key, position):
            self.raised_writes.add(key)
            self.forgotten.pop(key, None)
            return True
        return False

    def raise_seen(self, key: str, version: int) -> bool:
        if _bounded_put(self.seen, key, version):
            self.raised_seen.add(key)
            return True
        return False

    def forget_write(self, key: str, held_by_all: WalPosition) -> bool:
        """Stop requiring ``key``'s write position once every replica holds ``held_by_all``
        (a position at or past it on the same history: the caller checked)."""
        if NO_POSITION < self.writes.get(key, NO_POSITION) <= held_by_all:
            del self.writes[key]
            self.raised_writes.discard(key)
            self.forgotten[key] = held_by_all
            return True
        return False

    def has_changes(self) -> bool:
        return bool(self.raised_writes or self.raised_seen or self.forgotten)

    def changes_saved(self) -> None:
        self.raised_writes.clear()
        self.raised_seen.clear()
        self.forgotten.clear()


def _position(value: Any) -> WalPosition:
    """A position from JSON: ``[timeline, lsn]``; a bare LSN (timeline unknown) becomes
    timeline 0, which no replica is on: only the primary serves it."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return WalPosition(int(value[0]), int(value[1]))
    return WalPosition(0, int(value))


def _bounded_put(mapping: dict[str, Value], key: str, value: Value) -> bool:
    """Raise ``mapping[key]`` to ``value``; keep the newest ``MAX_TRACKED_OBJECTS`` keys."""
    if key in mapping and mapping[key] >= value:
        return False
    mapping.pop(key, None)
    mapping[key] = value
    while len(mapping) > MAX_TRACKED_OBJECTS:
        mapping.pop(next(iter(mapping)))
    return True
