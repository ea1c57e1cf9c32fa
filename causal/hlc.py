"""Hybrid logical clocks (Kulkarni et al., 2014): timestamps that follow physical time and
still respect causality, for last-writer-wins.

A timestamp is (wall milliseconds, logical counter, replica id); ordering by that triple gives
a total order in which a write that saw another one is always later, even when the two
replicas' physical clocks disagree, while staying within the clock skew of real time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Timestamp:
    wall_ms: int
    logical: int
    replica: str

    def as_list(self) -> list:
        return [self.wall_ms, self.logical, self.replica]

    @classmethod
    def from_list(cls, value: object) -> Timestamp:
        if (
            not isinstance(value, list | tuple)
            or len(value) != 3
            or not all(isinstance(part, int) and not isinstance(part, bool) for part in value[:2])
            or not isinstance(value[2], str)
        ):
            raise ValueError(f"a timestamp is [wall_ms, logical, replica]: {value!r}")
        return cls(value[0], value[1], value[2])


class HybridClock:
    """One replica's clock; thread-safe. ``now()`` for a local event, ``observe(ts)`` on
    receiving a remote timestamp (so that later local events order after it)."""

    def __init__(self, replica: str, wall_ms: Callable[[], int] | None = None) -> None:
        self.replica = replica
        self._wall_ms = wall_ms or (lambda: time.time_ns() // 1_000_000)
        self._last = Timestamp(0, 0, replica)
        self._lock = threading.Lock()

    def now(self) -> Timestamp:
        with self._lock:
            wall = self._wall_ms()
            if wall > self._last.wall_ms:
                self._last = Timestamp(wall, 0, self.replica)
            else:
                self._last = Timestamp(self._last.wall_ms, self._last.logical + 1, self.replica)
            return self._last

    def observe(self, remote: Timestamp) -> Timestamp:
        with self._lock:
            wall = self._wall_ms()
            top = max(wall, self._last.wall_ms, remote.wall_ms)
            if top == self._last.wall_ms == remote.wall_ms:
                logical = max(self._last.logical, remote.logical) + 1
            elif top == self._last.wall_ms:
                logical = self._last.logical + 1
            elif top == remote.wall_ms:
                logical = remote.logical + 1
            else:
                logical = 0
            self._last = Timestamp(top, logical, self.replica)
            return self._last
