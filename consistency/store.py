"""Where a session's positions live between its requests: Postgres, on the primary.

A token client's positions are kept under a digest of its token, a browser session's under a
digest of its session key (no secret is copied into the table), one row per object
(``consistency.models.SessionPosition``). The client never sends a position, so it cannot
forge one.

Why Postgres, next to the token, rather than Redis: a position lost while its write is
acknowledged breaks read-your-writes, and Redis can lose one (a save that times out in a
blip, a restart without persistence). Here a write's version floor is saved in the write's
own transaction, so it commits with the write or not at all; its WAL position right after
the commit. The token authentication reads a token's positions in the query that
authenticates it (``consistency.authentication``), so they cost no round trip of their own.

Every save raises values only (a write position as (timeline, LSN), a version by ``GREATEST``)
and only for the objects this request changed,
so concurrent requests of one session (two browser tabs, two threads of one token) merge
their positions; none can erase another's.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db import DatabaseError, connections
from django.db.models import F
from django.db.models.functions import JSONObject
from django.utils import timezone

from consistency.levels import PRIMARY
from consistency.models import SessionPosition
from consistency.replicas import NO_POSITION, TIMELINE_SQL, WalPosition
from consistency.state import MAX_TRACKED_OBJECTS, SessionState

logger = logging.getLogger(__name__)

# Rows holding only a seen version kept per session: beyond, the oldest are dropped. (Rows with
# a write position are not: they lose it once every replica has replayed the write.)
MAX_STORED_OBJECTS = 4 * MAX_TRACKED_OBJECTS

_TABLE = SessionPosition._meta.db_table
# A write position rises as (timeline, LSN): a later write is on the same or a later timeline.
_RAISE_WRITE = """
  write_timeline = CASE WHEN (EXCLUDED.write_timeline, EXCLUDED.write_lsn)
      > (p.write_timeline, p.write_lsn) THEN EXCLUDED.write_timeline ELSE p.write_timeline END,
  write_lsn = CASE WHEN (EXCLUDED.write_timeline, EXCLUDED.write_lsn)
      > (p.write_timeline, p.write_lsn) THEN EXCLUDED.write_lsn ELSE p.write_lsn END"""
_MERGE = f"""
INSERT INTO {_TABLE} AS p (owner, object_key, write_timeline, write_lsn, seen_version, updated_at)
SELECT %s, object_key, write_timeline, write_lsn, seen_version, now()
FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::bigint[])
  AS c(object_key, write_timeline, write_lsn, seen_version)
ORDER BY object_key
ON CONFLICT (owner, object_key) DO UPDATE SET {_RAISE_WRITE},
  seen_version = GREATEST(p.seen_version, EXCLUDED.seen_version),
  updated_at = EXCLUDED.updated_at
"""  # noqa: S608 - the table name is the model's, never input
# The write's WAL position and timeline, read and saved in one statement after the write's
# commit: read after that commit, the insert position is at or past the commit record.
_WRITE_POSITION = f"""
INSERT INTO {_TABLE} AS p (owner, object_key, write_timeline, write_lsn, seen_version, updated_at)
VALUES (%s, %s, {TIMELINE_SQL}, pg_current_wal_insert_lsn() - '0/0'::pg_lsn, 0, now())
ON CONFLICT (owner, object_key) DO UPDATE SET {_RAISE_WRITE}, updated_at = EXCLUDED.updated_at
RETURNING write_timeline, write_lsn
"""  # noqa: S608
_FORGET = f"""
UPDATE {_TABLE} AS p SET write_lsn = 0, write_timeline = 0
FROM unnest(%s::text[], %s::int[], %s::bigint[]) AS f(object_key, held_timeline, held_lsn)
WHERE p.owner = %s AND p.object_key = f.object_key
  AND (p.write_timeline, p.write_lsn) <= (f.held_timeline, f.held_lsn)
"""  # noqa: S608
_PRUNE = f"""
DELETE FROM {_TABLE} WHERE id IN (
  SELECT id FROM {_TABLE} WHERE owner = %s AND write_lsn = 0
  ORDER BY updated_at DESC, id DESC OFFSET %s
)
"""  # noqa: S608


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:40]


def token_owner(token_key: str) -> str:
    return "t:" + _digest(token_key)


def session_owner(session_key: str) -> str:
    return "s:" + _digest(session_key)


def positions_subquery(owner: str) -> ArraySubquery:
    """An expression for a query's select list: ``owner``'s rows as a list of
    ``{"k", "t", "w", "s"}`` (``state_from_rows`` reads it)."""
    rows = (
        SessionPosition.objects.filter(owner=owner)
        .order_by("updated_at")
        .values(
            json=JSONObject(
                k=F("object_key"), t=F("write_timeline"), w=F("write_lsn"), s=F("seen_version")
            )
        )
    )
    return ArraySubquery(rows)


def state_from_rows(rows: Iterable[dict[str, Any]]) -> SessionState:
    state = SessionState()
    for row in rows:
        if row["w"]:
            state.writes[row["k"]] = WalPosition(int(row.get("t") or 0), int(row["w"]))
        if row["s"]:
            state.seen[row["k"]] = int(row["s"])
    return state


class PositionStore:
    """One session's positions (``owner``), on the primary. ``preloaded``: the rows already
    read by the query that authenticated the caller."""

    def __init__(self, owner: str, *, preloaded: list[dict[str, Any]] | None = None) -> None:
        self.owner = owner
        self._preloaded = preloaded
        self._stored_objects = 0

    @classmethod
    def for_token(cls, token_key: str, *, preloaded: list[dict] | None = None) -> PositionStore:
        return cls(token_owner(token_key), preloaded=preloaded)

    @classmethod
    def for_session(cls, session_key: str) -> PositionStore:
        return cls(session_owner(session_key))

    def load(self) -> SessionState | None:
        """The positions; None when they cannot be read (then only the primary is safe)."""
        rows = self._preloaded
        self._preloaded = None
        if rows is None:
            try:
                rows = list(
                    SessionPosition.objects.using(PRIMARY)
                    .filter(owner=self.owner)
                    .order_by("updated_at")
                    .values(
                        k=F("object_key"),
                        t=F("write_timeline"),
                        w=F("write_lsn"),
                        s=F("seen_version"),
                    )
                )
            except DatabaseError as error:
                connections[PRIMARY].close()
                logger.warning("positions of %s not read: %s", self.owner[:10], error)
                return None
        self._stored_objects = len(rows)
        return state_from_rows(rows)

    def save(self, state: SessionState) -> None:
        """Merge what ``state`` raised or forgot since it was loaded (or last saved)."""
        changed = sorted(state.raised_writes | state.raised_seen)
        with connections[PRIMARY].cursor() as cursor:
            if changed:
                cursor.execute(
                    _MERGE,
                    [
                        self.owner,
                        changed,
                        [state.writes.get(key, NO_POSITION).timeline for key in changed],
                        [state.writes.get(key, NO_POSITION).lsn for key in changed],
                        [state.seen.get(key, 0) for key in changed],
                    ],
                )
            if state.forgotten:
                keys = sorted(state.forgotten)
                held = [state.forgotten[key] for key in keys]
                cursor.execute(
                    _FORGET,
                    [keys, [p.timeline for p in held], [p.lsn for p in held], self.owner],
                )
            if self._stored_objects + len(changed) > MAX_STORED_OBJECTS:
                cursor.execute(_PRUNE, [self.owner, MAX_STORED_OBJECTS])
                self._stored_objects = MAX_STORED_OBJECTS

    def save_seen(self, key: str, version: int) -> None:
        """Raise the version floor of ``key`` now: inside a write's transaction, it commits
        with the write or not at all. Errors propagate (the write must fail with them)."""
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute(_MERGE, [self.owner, [key], [0], [0], [version]])

    def save_write_position(self, key: str) -> WalPosition:
        """Right after a write's commit: save the primary's WAL insert position (at or past
        that commit) and its timeline as the session's write position of ``key``; returns
        it."""
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute(_WRITE_POSITION, [self.owner, key])
            timeline, lsn = cursor.fetchone()
            return WalPosition(int(timeline), int(lsn))


def store_for_request(request: Any) -> PositionStore | None:
    """The caller's position store: its token's for token clients (with the rows its
    authentication already read, if any), its browser session's for session-authenticated
    callers, None without either."""
    auth = getattr(request, "auth", None)
    token_key = getattr(auth, "key", None)
    if isinstance(token_key, str) and token_key:
        return PositionStore.for_token(
            token_key, preloaded=getattr(auth, "consistency_positions", None)
        )
    session = getattr(request, "session", None)
    session_key = getattr(session, "session_key", None)
    return PositionStore.for_session(session_key) if session_key else None


def positions_purge(*, older_than_s: float) -> int:
    """Delete positions not raised for ``older_than_s`` (every replica replayed their writes
    long ago); returns how many rows went."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    deleted, _ = SessionPosition.objects.using(PRIMARY).filter(updated_at__lt=cutoff).delete()
    return deleted
