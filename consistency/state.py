"""What one session wrote and saw: the positions its reads must not go behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_TRACKED_OBJECTS = 128


@dataclass
class SessionState:
    """What one session wrote (object key -> WAL position of its last write) and saw (object
    key -> highest version read, its own writes included). Changes are also kept as deltas, so
    that a store shared by concurrent requests can merge them (positions only ever rise)
    instead of overwriting."""

    writes: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    raised_writes: set[str] = field(default_factory=set, compare=False)
    raised_seen: set[str] = field(default_factory=set, compare=False)
    forgotten: dict[str, int] = field(default_factory=dict, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {"w": self.writes, "s": self.seen}

    @classmethod
    def from_json(cls, data: Any) -> SessionState:
        if not isinstance(data, dict):
            return cls()
        writes = data.get("w") if isinstance(data.get("w"), dict) else {}
        seen = data.get("s") if isinstance(data.get("s"), dict) else {}
        return cls(
            writes={str(k): int(v) for k, v in writes.items()},
            seen={str(k): int(v) for k, v in seen.items()},
        )

    def required_lsn(self, key: str | None) -> int:
        if key is None:
            return max(self.writes.values(), default=0)
        return self.writes.get(key, 0)

    def version_floor(self, key: str) -> int:
        return self.seen.get(key, 0)

    def raise_write(self, key: str, lsn: int) -> bool:
        if _bounded_put(self.writes, key, lsn):
            self.raised_writes.add(key)
            self.forgotten.pop(key, None)
            return True
        return False

    def raise_seen(self, key: str, version: int) -> bool:
        if _bounded_put(self.seen, key, version):
            self.raised_seen.add(key)
            return True
        return False

    def forget_write(self, key: str, replayed_by_all: int) -> bool:
        if 0 < self.writes.get(key, 0) <= replayed_by_all:
            del self.writes[key]
            self.raised_writes.discard(key)
            self.forgotten[key] = replayed_by_all
            return True
        return False

    def has_changes(self) -> bool:
        return bool(self.raised_writes or self.raised_seen or self.forgotten)

    def changes_saved(self) -> None:
        self.raised_writes.clear()
        self.raised_seen.clear()
        self.forgotten.clear()


def _bounded_put(mapping: dict[str, int], key: str, value: int) -> bool:
    """Raise ``mapping[key]`` to ``value``; keep the newest ``MAX_TRACKED_OBJECTS`` keys."""
    if mapping.get(key, -1) >= value:
        return False
    mapping.pop(key, None)
    mapping[key] = value
    while len(mapping) > MAX_TRACKED_OBJECTS:
        mapping.pop(next(iter(mapping)))
    return True
