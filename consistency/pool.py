"""The replica pool: which replicas are in rotation, and how far each has replayed.

One probe (primary insert LSN + each replica's replay LSN) per
``CONSISTENCY_POSITIONS_MAX_AGE_S`` per process at most, never a query per read, and none
while the last snapshot (at most ``CONSISTENCY_HEALTH_MAX_AGE_S`` old) already shows a replica
at the session's position. A cached replay LSN only ever under-states the replica's real
position, so a stale cache can send a read to the primary needlessly but never to a replica
that lacks the write. Replicas down, or staler than ``CONSISTENCY_MAX_STALENESS_S``, leave the
rotation until a probe finds them healthy again; a read that fails on a replica fails over to
the primary and takes the replica out at once (``mark_down``).

Across a failover (a Patroni cluster's standby promoted): a replica is in rotation only while
it is a standby streaming the primary's timeline, and a session position written on an older
timeline is held by a replica only if that timeline's switch point (from the primary's
timeline history) is at or past it: the write is then in the history both timelines share.
A position beyond the switch point was lost with the old leader, or lives only on a member
that has not been rewound yet: the read goes to the primary.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connections

from consistency.levels import PRIMARY
from consistency.replicas import (
    WalPosition,
    probe_replica,
    replica_aliases,
    timeline_switch_points,
    write_position,
)


@dataclass(frozen=True)
class ReplicaState:
    alias: str
    up: bool
    replay_lsn: int = 0
    staleness_s: float = float("inf")
    error: str = ""
    timeline: int = 0

    @property
    def in_rotation(self) -> bool:
        return self.up and self.staleness_s <= settings.CONSISTENCY_MAX_STALENESS_S


@dataclass(frozen=True)
class History:
    """The primary's timeline and where each of its ancestors ended (None: unknown)."""

    timeline: int = 0
    switch_points: dict[int, int] | None = None

    def holds(self, replica: ReplicaState, position: WalPosition | None) -> bool:
        """True when ``replica`` has replayed the write at ``position``: on the same timeline
        at or past it, or on a later timeline whose history shares it (the older timeline's
        switch point is at or past it). No position (or LSN 0) is held by every replica."""
        if position is None or position.lsn == 0:
            return True
        if replica.replay_lsn < position.lsn:
            return False
        if position.timeline == replica.timeline:
            return True
        if position.timeline > replica.timeline or self.switch_points is None:
            return False
        switch = self.switch_points.get(position.timeline)
        return switch is not None and switch >= position.lsn


class ReplicaPool:
    """Replica positions per process, probed at most every ``max_age_s``.

    Staleness of a replica is how long ago the primary was last seen at (or below) the
    position the replica has replayed: it is measured against this process's own samples of
    the primary's LSN, so an idle primary does not make a caught-up replica look late.
    """

    SAMPLE_WINDOW_S = 60.0
    PRIMARY_SAMPLE_INTERVAL_S = 0.1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, ReplicaState] = {}
        self._probed_at = -float("inf")
        self._primary_sampled_at = -float("inf")
        self._down_until: dict[str, float] = {}
        self._sample_times: deque[float] = deque()
        self._sample_lsns: deque[int] = deque()
        self._history = History()

    @property
    def history(self) -> History:
        """The primary's timeline and switch points, as last probed."""
        return self._history

    def holds(self, replica: ReplicaState, position: WalPosition | None) -> bool:
        return self._history.holds(replica, position)

    def reset(self) -> None:
        with self._lock:
            self._states = {}
            self._probed_at = -float("inf")
            self._primary_sampled_at = -float("inf")
            self._down_until.clear()
            self._sample_times.clear()
            self._sample_lsns.clear()
            self._history = History()

    def states(self, *, required: WalPosition | None = None) -> dict[str, ReplicaState]:
        """Every replica's state, probed at most ``CONSISTENCY_POSITIONS_MAX_AGE_S`` ago; or,
        given ``required``, up to ``CONSISTENCY_HEALTH_MAX_AGE_S`` ago when a replica in
        rotation already held it then. Replay positions only rise, so such a snapshot
        still proves that replica has the write: a read that needs nothing newer (another
        user's object, a write every replica has replayed) costs no probe."""
        now = time.monotonic()
        age = now - self._probed_at
        if age <= settings.CONSISTENCY_POSITIONS_MAX_AGE_S:
            return self._states
        if (
            required is not None
            and age <= settings.CONSISTENCY_HEALTH_MAX_AGE_S
            and any(
                state.in_rotation and self.holds(state, required) for state in self._states.values()
            )
        ):
            return self._states
        # One prober at a time; others use the previous snapshot, which is a safe lower bound.
        if not self._lock.acquire(blocking=not self._states):
            return self._states
        try:
            if time.monotonic() - self._probed_at > settings.CONSISTENCY_POSITIONS_MAX_AGE_S:
                self._probe()
        finally:
            self._lock.release()
        return self._states

    @property
    def probed_at(self) -> float:
        """``time.monotonic()`` of the last probe (``-inf`` before the first)."""
        return self._probed_at

    def mark_down(self, alias: str, error: str) -> None:
        with self._lock:
            self._down_until[alias] = time.monotonic() + settings.CONSISTENCY_DOWN_RETRY_S
            states = dict(self._states)
            states[alias] = ReplicaState(alias=alias, up=False, error=error)
            self._states = states

    def _probe(self) -> None:
        now = time.monotonic()
        primary_lsn: int | None = None
        # The primary's position dates replay positions (staleness) and names its timeline:
        # sampled less often, and always while its timeline is unknown.
        if (
            now - self._primary_sampled_at >= self.PRIMARY_SAMPLE_INTERVAL_S
            or not self._history.timeline
        ):
            primary = _primary_position()
            if primary is None:
                self._history = History()
            else:
                primary_lsn = primary.lsn
                self._timeline_follow(primary.timeline)
                self._sample(now, primary_lsn)
                self._primary_sampled_at = now
        positions = {}
        states = {}
        for alias in replica_aliases():
            if self._down_until.get(alias, 0) > now:
                states[alias] = self._states.get(alias) or ReplicaState(alias=alias, up=False)
            else:
                positions[alias] = probe_replica(alias, primary_lsn)
        # Replicas must stream the primary's timeline; while the primary does not answer, the
        # latest any of them streams (one on an older timeline is a former leader's follower).
        timeline = self._history.timeline or max(
            (p.timeline or 0 for p in positions.values() if p.up), default=0
        )
        for alias, position in positions.items():
            error = position.error
            if position.up and position.timeline != timeline:
                error = (
                    f"streams timeline {position.timeline or '?'}, "
                    f"the primary's is {timeline or '?'}"
                )
            if error or position.replay_lsn is None:
                self._down_until[alias] = now + settings.CONSISTENCY_DOWN_RETRY_S
                states[alias] = ReplicaState(alias=alias, up=False, error=error)
                continue
            states[alias] = ReplicaState(
                alias=alias,
                up=True,
                replay_lsn=position.replay_lsn,
                staleness_s=self._staleness(now, position.replay_lsn, position.lag_seconds),
                timeline=timeline,
            )
        self._states = states
        self._probed_at = time.monotonic()

    def _timeline_follow(self, timeline: int) -> None:
        """A new timeline (a failover): its history, and fresh staleness samples (LSNs of two
        timelines do not compare as dates)."""
        if timeline == self._history.timeline and self._history.switch_points is not None:
            return
        if timeline != self._history.timeline:
            self._sample_times.clear()
            self._sample_lsns.clear()
        try:
            switch_points = timeline_switch_points(timeline)
        except DatabaseError:
            connections[PRIMARY].close()
            switch_points = None
        self._history = History(timeline=timeline, switch_points=switch_points)

    def _sample(self, now: float, lsn: int) -> None:
        if self._sample_lsns and self._sample_lsns[-1] == lsn:
            self._sample_times[-1] = now
        elif not self._sample_lsns or lsn > self._sample_lsns[-1]:
            self._sample_times.append(now)
            self._sample_lsns.append(lsn)
        while self._sample_times and now - self._sample_times[0] > self.SAMPLE_WINDOW_S:
            self._sample_times.popleft()
            self._sample_lsns.popleft()

    def _staleness(self, now: float, replay_lsn: int, lag_seconds: float | None) -> float:
        index = bisect.bisect_right(self._sample_lsns, replay_lsn)
        if index == 0:
            # Behind every sample this process has (e.g. just started): fall back on the age
            # of the last replayed commit, an upper bound.
            return lag_seconds if lag_seconds is not None else float("inf")
        return max(0.0, now - self._sample_times[index - 1])


def _primary_position() -> WalPosition | None:
    """The primary's position; a connection that fails is reopened once (after a failover
    the old one is to a dead or demoted server, and the multi-host URL finds the new
    leader); None when the primary does not answer."""
    for _attempt in range(2):
        try:
            return write_position()
        except DatabaseError:
            connections[PRIMARY].close()
    return None


replica_pool = ReplicaPool()
