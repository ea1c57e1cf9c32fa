"""Where the primary and each streaming replica are in the WAL, and how far behind.

Used by ``/readyz``, the replica-lag metrics and the replica pool. A probe is two cheap
queries (one on the primary, one per replica); ``replica_positions(max_age_s=...)`` caches
the result per process so that hot paths do not query per read.

Which replicas exist is ``replica_aliases()``: the database aliases in ``REPLICA_ALIASES``.
Nothing here knows how they were found (a URL each today, a cluster's standbys later).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connections


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

    def as_dict(self) -> dict:
        return {
            "ok": self.up,
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


def write_position(using: str = "default") -> int:
    """The primary's WAL insert position now: after a commit, at or past that commit."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        return parse_lsn(cursor.fetchone()[0])


_REPLICA_QUERY = """
SELECT pg_last_wal_replay_lsn()::text,
       pg_last_wal_receive_lsn()::text,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END,
       pg_is_wal_replay_paused()
"""


def probe_replica(alias: str, primary_lsn: int | None) -> ReplicaPosition:
    """One replica's replay position; lag in bytes is measured against ``primary_lsn``.

    Lag in seconds is 0 when everything received has been replayed, else the age of the last
    replayed transaction: an idle primary does not make a caught-up replica look late.
    """
    now = time.monotonic()
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(_REPLICA_QUERY)
            replay_text, _receive_text, lag_seconds, paused = cursor.fetchone()
    except DatabaseError as error:
        connections[alias].close()
        return ReplicaPosition(alias=alias, up=False, error=_first_line(error), probed_at=now)
    if replay_text is None:
        return ReplicaPosition(alias=alias, up=False, error="not a standby", probed_at=now)
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


def set_replica_apply_delay(alias: str, delay_ms: int) -> None:
    """Change a running standby's ``recovery_min_apply_delay`` without a restart.

    ALTER SYSTEM writes postgresql.auto.conf, which a standby accepts; a reload applies it.
    The startup process picks the reload up between records, so this waits a moment before
    returning: a write made after the call is delayed. Needs a superuser on the replica (the
    embedded stack's user is one).
    """
    if delay_ms < 0:
        raise ValueError("delay_ms must be >= 0")
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
