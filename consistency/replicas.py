"""Where the primary and each streaming replica are in the WAL, and how far behind.

Used by ``/readyz``, the replica-lag metrics and the replica pool. A probe is two cheap
queries (one on the primary, one per replica); ``replica_positions(max_age_s=...)`` caches
the result per process so that hot paths do not query per read.

Which replicas exist is ``replica_aliases()``: the database aliases in ``REPLICA_ALIASES``.
Nothing here knows how they were found: a URL each, or (a Patroni cluster) a multi-host URL
that reaches whichever member is a standby now. So a probe checks the role too: a server
that is not in recovery (a promoted standby) is no replica, whatever its alias, and its
``pg_last_wal_replay_lsn()`` (NULL, or frozen where its recovery ended) is no position.

Positions carry their timeline (``WalPosition``): after a failover the new leader's WAL
forks from the old timeline at a switch point (``timeline_switch_points``), and the same LSN
on two timelines can be two different histories.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.db import DatabaseError, connections


class WalPosition(NamedTuple):
    """A position in a server's WAL history: (timeline, LSN). Tuples order by timeline,
    then LSN: a later write of a session is always the greater (timelines only rise)."""

    timeline: int
    lsn: int

    def __str__(self) -> str:
        return f"{self.timeline}:{format_lsn(self.lsn)}"


NO_POSITION = WalPosition(0, 0)

# The timeline of the WAL being written now: a WAL file's name starts with it (8 hex digits).
TIMELINE_SQL = "('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int"


def parse_lsn(text: str) -> int:
    """``'16/B374D848'`` -> byte position in the WAL."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class ReplicaPosition:
    alias: str
    up: bool
    replay_lsn: int | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    replay_paused: bool = False
    error: str = ""
    probed_at: float = 0.0
    timeline: int | None = None
    server: str = ""

    def as_dict(self) -> dict:
        return {
            "ok": self.up,
            "server": self.server or None,
            "timeline": self.timeline,
            "replay_lsn": format_lsn(self.replay_lsn) if self.replay_lsn is not None else None,
            "lag_bytes": self.lag_bytes,
            "lag_seconds": self.lag_seconds,
            "replay_paused": self.replay_paused,
            **({"error": self.error} if self.error else {}),
        }


def replica_aliases() -> list[str]:
    """The database aliases of the primary's streaming replicas."""
    return list(settings.REPLICA_ALIASES)


def primary_wal_lsn(using: str = "default") -> int:
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return parse_lsn(cursor.fetchone()[0])


def write_position(using: str = "default") -> WalPosition:
    """The primary's WAL insert position now, with its timeline: after a commit, at or past
    that commit."""
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT {TIMELINE_SQL}, pg_current_wal_insert_lsn()::text")
        timeline, lsn = cursor.fetchone()
        return WalPosition(int(timeline), parse_lsn(lsn))


_HISTORY_SQL = "SELECT pg_read_file('pg_wal/' || lpad(upper(to_hex(%s)), 8, '0') || '.history')"


def timeline_switch_points(timeline: int, using: str = "default") -> dict[int, int] | None:
    """Where each ancestor of ``timeline`` ended: {ancestor timeline: switch LSN}, read from
    the primary's timeline history file (``{}`` for timeline 1). WAL of an ancestor below its
    switch point is shared with ``timeline``; beyond it, it is not. None when the history
    cannot be read (reading it needs a superuser or pg_read_server_files)."""
    if timeline <= 1:
        return {}
    try:
        with connections[using].cursor() as cursor:
            cursor.execute(_HISTORY_SQL, [timeline])
            text = cursor.fetchone()[0]
    except DatabaseError:
        connections[using].close()
        return None
    points = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit():
            points[int(fields[0])] = parse_lsn(fields[1])
    return points


_REPLICA_QUERY = """
SELECT pg_is_in_recovery(),
       pg_last_wal_replay_lsn()::text,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END,
       CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,
       (SELECT received_tli FROM pg_stat_wal_receiver WHERE status = 'streaming'),
       inet_server_port()
"""


def probe_replica(alias: str, primary_lsn: int | None) -> ReplicaPosition:
    """One replica's replay position and timeline; lag in bytes is measured against
    ``primary_lsn``.

    A server that is not in recovery is reported down ("not a standby"): a promoted standby
    keeps answering on its alias until the alias reconnects elsewhere. The timeline is the one
    its WAL receiver streams (None while it streams nothing: then nothing says which history
    it will replay next). Lag in seconds is 0 when everything received has been replayed, else
    the age of the last replayed transaction: an idle primary does not make a caught-up
    replica look late.
    """
    now = time.monotonic()
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(_REPLICA_QUERY)
            in_recovery, replay_text, lag_seconds, paused, timeline, port = cursor.fetchone()
    except DatabaseError as error:
        connections[alias].close()
        return ReplicaPosition(alias=alias, up=False, error=_first_line(error), probed_at=now)
    server = f"{connections[alias].settings_dict['HOST'].split(',')[0]}:{port}"
    if not in_recovery or replay_text is None:
        # Its connection is to a leader now: drop it, so that the next one finds a standby.
        connections[alias].close()
        return ReplicaPosition(
            alias=alias, up=False, error="not a standby", probed_at=now, server=server
        )
    replay_lsn = parse_lsn(replay_text)
    lag_bytes = max(0, primary_lsn - replay_lsn) if primary_lsn is not None else None
    return ReplicaPosition(
        alias=alias,
        up=True,
        replay_lsn=replay_lsn,
        lag_bytes=lag_bytes,
        lag_seconds=round(float(lag_seconds or 0.0), 3),
        replay_paused=bool(paused),
        probed_at=now,
        timeline=int(timeline) if timeline is not None else None,
        server=server,
    )


_cache_lock = threading.Lock()
_cached: dict[str, ReplicaPosition] = {}


def replica_positions(max_age_s: float = 0.0) -> dict[str, ReplicaPosition]:
    """Every replica's position, probed now or at most ``max_age_s`` ago (per process)."""
    now = time.monotonic()
    with _cache_lock:
        if (
            max_age_s > 0
            and _cached
            and all(now - position.probed_at <= max_age_s for position in _cached.values())
        ):
            return dict(_cached)
    try:
        primary_lsn: int | None = primary_wal_lsn()
    except DatabaseError:
        connections["default"].close()
        primary_lsn = None
    positions = {alias: probe_replica(alias, primary_lsn) for alias in replica_aliases()}
    with _cache_lock:
        _cached.clear()
        _cached.update(positions)
    return positions


def wait_for_replay(alias: str, target_lsn: int, timeout_s: float = 10.0) -> bool:
    """Block until ``alias`` has replayed ``target_lsn``; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        position = probe_replica(alias, None)
        if position.up and position.replay_lsn is not None and position.replay_lsn >= target_lsn:
            return True
        time.sleep(0.02)
    return False


RELOAD_SETTLE_S = 0.2
APPLY_DELAY_TIMEOUT_S = 15.0

#: Who sets a standby's apply delay when the standbys have a manager that owns their
#: configuration (Patroni rewrites what ALTER SYSTEM sets); None: ALTER SYSTEM.
ApplyDelaySetter = Callable[[str, int], None]
_apply_delay_setter: ApplyDelaySetter | None = None


def apply_delay_setter_register(setter: ApplyDelaySetter | None) -> None:
    """Let the standbys' manager set apply delays (``setter(alias, delay_ms)``, which may set
    it for every standby it manages); None restores ALTER SYSTEM."""
    global _apply_delay_setter  # noqa: PLW0603 - one hook per process, set by an AppConfig
    _apply_delay_setter = setter


def set_replica_apply_delay(alias: str, delay_ms: int) -> None:
    """Change a running standby's ``recovery_min_apply_delay`` without a restart.

    Unmanaged standbys: ALTER SYSTEM writes postgresql.auto.conf, which a standby accepts; a
    reload applies it. Managed ones (a registered setter): their manager applies it. Either
    way this returns once the standby has the delay in force, plus a moment: the startup
    process picks the reload up between records, and a write made after the call must be
    delayed. Needs a superuser on the replica (the embedded stack's user is one).
    """
    if delay_ms < 0:
        raise ValueError("delay_ms must be >= 0")
    if _apply_delay_setter is not None:
        _apply_delay_setter(alias, int(delay_ms))
        deadline = time.monotonic() + APPLY_DELAY_TIMEOUT_S
        while replica_apply_delay_ms(alias) != int(delay_ms):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{alias} did not take apply delay {delay_ms} ms")
            time.sleep(0.05)
    else:
        with connections[alias].cursor() as cursor:
            cursor.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(delay_ms)}ms'")
            cursor.execute("SELECT pg_reload_conf()")
    time.sleep(RELOAD_SETTLE_S)


def replica_apply_delay_ms(alias: str) -> int:
    """The ``recovery_min_apply_delay`` a running standby has in force, in milliseconds."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT setting::int FROM pg_settings WHERE name = 'recovery_min_apply_delay'"
        )
        return cursor.fetchone()[0]


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
