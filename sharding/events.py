"""Sharded events: write on one shard, read by key (home shard plus a hot key's event slots)
or by time range across every shard in parallel (scatter-gather), paged by an opaque cursor
that keeps each shard's own position (a shard that did not answer is read again from its own).

Order is (ts, id) everywhere: ``id`` is a UUID chosen at write time, so the order does not
change when a bucket moves. Each shard answers only for rows it owns under the map version
the request uses (slot 0 rows of its buckets, plus extra-slot rows), so a bucket being moved
is never read twice; a shard that fails or times out is reported, never silently dropped.
"""

from __future__ import annotations

import heapq
import json
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import DatabaseError, connections, transaction
from django.db.utils import OperationalError

from core.faults import fault_value
from sharding import store
from sharding.conf import conf, spreading_enabled
from sharding.errors import ShardCursorInvalid
from sharding.fences import home_write
from sharding.hotkeys import hot_key_record
from sharding.metrics import operations_total, partial_reads_total
from sharding.placement import ShardMap, bucket_map_current, bucket_of, key_validate
from sharding.spreading import hot_states_cached, slot_pick

SLOW_SHARDS_SWITCH = "sharding_slow_shards"
CURSOR_SALT = "sharding.events.cursor"


@dataclass(frozen=True)
class EventRow:
    id: uuid.UUID
    key: str
    slot: int
    ts: datetime
    payload: Any
    shard: str

    def as_dict(self) -> dict:
        return {
            "id": str(self.id),
            "key": self.key,
            "ts": self.ts,
            "payload": self.payload,
            "shard": self.shard,
            "slot": self.slot,
        }


def event_create(*, key: str, ts: datetime, payload: Any) -> EventRow:
    """Store one event on the key's home shard, or on one of its slots' shards when hot."""
    key_validate(key)
    event_id = uuid.uuid4()
    document = json.dumps(payload)
    state = hot_states_cached().get(key) if spreading_enabled() else None
    slot = slot_pick(key=key, state=state) if state and state.spread else 0
    if slot:
        alias = state.spread[slot - 1]
        store.event_insert_extra(
            alias,
            event_id=event_id,
            key=key,
            slot=slot,
            bucket=bucket_of(key),
            ts=ts,
            document=document,
        )
    else:
        alias, _ = home_write(
            key,
            lambda home, bucket, _map: (
                store.event_insert_home(
                    home, event_id=event_id, key=key, bucket=bucket, ts=ts, document=document
                )
                or None
            ),
        )
    operations_total.labels(shard=alias, operation="event_create").inc()
    hot_key_record(key=key, shard=alias)
    return EventRow(id=event_id, key=key, slot=slot, ts=ts, payload=payload, shard=alias)


@dataclass
class EventPage:
    items: list[EventRow]
    next_cursor: str | None
    partial: bool
    shards: dict[str, str] = field(default_factory=dict)
    map_version: int = 0


Position = tuple[datetime, uuid.UUID] | None  # None: before every row


@dataclass(frozen=True)
class Cursor:
    """Where each shard's rows have been handed out up to, inclusive: ``at`` for every shard
    but those in ``behind``. After a page that every shard answered they are all at its last
    row; a shard that did not answer keeps its own position, so the next page reads it again
    from there (its rows then come later than rows of other shards already handed out: a
    page is in (ts, id) order, and no row is skipped or repeated)."""

    at: Position
    behind: dict[str, Position]
    map_version: int

    def position(self, alias: str) -> Position:
        return self.behind.get(alias, self.at)

    def for_map(self, version: int) -> Cursor:
        """The cursor for a request under map ``version``. Positions that differ do not
        survive a bucket move (the moved rows change shard): every shard then restarts from
        the earliest one, so rows may come twice, never zero times."""
        if not self.behind or version == self.map_version:
            return self
        earliest = min([self.at, *self.behind.values()], key=lambda p: (p is not None, p or ()))
        return Cursor(at=earliest, behind={}, map_version=version)


def _order(position: Position) -> tuple:
    """Sort key of positions: None (before every row) first."""
    return (position is not None, position or ())


def _position_encode(position: Position) -> list[str] | None:
    return None if position is None else [position[0].isoformat(), str(position[1])]


def _position_decode(value: object) -> Position:
    if value is None:
        return None
    ts, event_id = value  # a pair, or the caller's ValueError/TypeError
    return datetime.fromisoformat(ts), uuid.UUID(event_id)


def cursor_encode(*, scope: dict, positions: dict[str, Position], map_version: int) -> str:
    """An opaque, signed cursor from each shard's position (the most common one stored once)."""
    at = Counter(positions.values()).most_common(1)[0][0] if positions else None
    return signing.dumps(
        {
            "scope": scope,
            "at": _position_encode(at),
            "behind": {
                alias: _position_encode(position)
                for alias, position in sorted(positions.items())
                if position != at
            },
            "v": map_version,
        },
        salt=CURSOR_SALT,
        compress=True,
    )


def cursor_decode(cursor: str, *, scope: dict) -> Cursor:
    """The cursor of a query with ``scope``; a forged, altered or foreign one is a
    ``ShardCursorInvalid`` (400)."""
    try:
        data = signing.loads(cursor, salt=CURSOR_SALT)
        if not isinstance(data, dict):
            raise TypeError(data)
        behind = data.get("behind", {})
        if not isinstance(behind, dict) or not set(behind) <= set(settings.SHARD_ALIASES):
            raise ValueError(behind)
        decoded = Cursor(
            at=_position_decode(data["at"]),
            behind={alias: _position_decode(value) for alias, value in behind.items()},
            map_version=int(data["v"]),
        )
    except (signing.BadSignature, KeyError, ValueError, TypeError) as exc:
        raise ShardCursorInvalid("The cursor is malformed or was altered.", field="cursor") from exc
    if data.get("scope") != scope:
        raise ShardCursorInvalid(
            "The cursor belongs to another query; repeat the same filters.", field="cursor"
        )
    return decoded


def _shard_query(
    alias: str, query: Callable[[], list[tuple]], timeout_s: float, slow: bool
) -> list[EventRow]:
    try:
        with transaction.atomic(using=alias):
            store.statement_timeout_set(alias, timeout_s=timeout_s)
            if slow:
                store.stall(alias, seconds=timeout_s + 1)
            found = query()
        return [
            EventRow(
                id=row[0],
                key=row[1],
                slot=row[2],
                ts=row[3],
                payload=json.loads(row[4]) if isinstance(row[4], str) else row[4],
                shard=alias,
            )
            for row in found
        ]
    finally:
        connections.close_all()


def _status_of(exc: BaseException) -> str:
    text = str(exc).lower()
    if "statement timeout" in text or "canceling statement" in text:
        return "timeout"
    if isinstance(exc, OperationalError):
        return "unavailable"
    return "error"


def _gather(
    queries: dict[str, Callable[[], list[tuple]]], timeout_s: float
) -> tuple[list[EventRow], dict[str, str]]:
    """Every shard's query in parallel (each has its own timeout), merged by (ts, id)."""
    statuses: dict[str, str] = {}
    results: dict[str, list[EventRow]] = {}
    slow = set(fault_value(SLOW_SHARDS_SWITCH))
    pool = ThreadPoolExecutor(max_workers=max(1, len(queries)), thread_name_prefix="scatter")
    try:
        futures = {
            alias: pool.submit(_shard_query, alias, query, timeout_s, alias in slow)
            for alias, query in queries.items()
        }
        for alias, future in futures.items():
            try:
                results[alias] = future.result(timeout=timeout_s + 1.0)
                statuses[alias] = "ok"
            except FutureTimeout:
                statuses[alias] = "timeout"
            except DatabaseError as exc:
                statuses[alias] = _status_of(exc)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for alias, status in statuses.items():
        if status != "ok":
            partial_reads_total.labels(shard=alias).inc()
    merged = list(heapq.merge(*results.values(), key=lambda event: (event.ts, event.id)))
    return merged, statuses


def _page(
    merged: list[EventRow],
    statuses: dict[str, str],
    *,
    limit: int,
    scope: dict,
    cursor: Cursor | None,
    version: int,
) -> EventPage:
    """The first ``limit`` rows, and a cursor when any shard may have more: one that had more
    than the page took, or one that did not answer (a partial page always has a cursor)."""
    items = merged[:limit]
    last = (items[-1].ts, items[-1].id) if items else None
    positions = {}
    for alias, status in statuses.items():
        previous = cursor.position(alias) if cursor else None
        # A shard that answered sent its first limit + 1 rows after its position: every one
        # of its rows up to the page's last row is on the page.
        answered_up_to = max([previous, last], key=_order)
        positions[alias] = answered_up_to if status == "ok" else previous
    partial = any(status != "ok" for status in statuses.values())
    return EventPage(
        items=items,
        next_cursor=(
            cursor_encode(scope=scope, positions=positions, map_version=version)
            if partial or len(merged) > limit
            else None
        ),
        partial=partial,
        shards=dict(sorted(statuses.items())),
        map_version=version,
    )


def events_range(
    *,
    since: datetime,
    until: datetime,
    limit: int = 100,
    cursor: str | None = None,
    bucket_map: ShardMap | None = None,
) -> EventPage:
    """Events with ``since <= ts < until`` from every shard, in (ts, id) order."""
    scope = {"since": since.isoformat(), "until": until.isoformat()}
    aliases = list(settings.SHARD_ALIASES)
    resume = cursor_decode(cursor, scope=scope) if cursor else None
    bucket_map = bucket_map or bucket_map_current()
    if resume is not None:
        resume = resume.for_map(bucket_map.version)
    queries = {
        alias: partial(
            store.events_in_range,
            alias,
            since=since,
            until=until,
            buckets=bucket_map.buckets_of(alias),
            after=resume.position(alias) if resume else None,
            limit=limit + 1,
        )
        for alias in aliases
    }
    merged, statuses = _gather(queries, conf().shard_timeout_s)
    for alias in statuses:
        operations_total.labels(shard=alias, operation="event_range").inc()
    return _page(
        merged, statuses, limit=limit, scope=scope, cursor=resume, version=bucket_map.version
    )


def events_for_key(*, key: str, limit: int = 100, cursor: str | None = None) -> EventPage:
    """A key's events: its home shard, plus the shards of its extra event slots if it was hot."""
    key_validate(key)
    scope = {"key": key}
    bucket_map = bucket_map_current()
    home = bucket_map.shard_for(key)
    event_shards = store.placement_event_shards(home, key=key)
    aliases = list(dict.fromkeys([home, *event_shards]))
    resume = cursor_decode(cursor, scope=scope) if cursor else None
    if resume is not None:
        resume = resume.for_map(bucket_map.version)
    queries = {
        alias: partial(
            store.events_of_key,
            alias,
            key=key,
            home=alias == home,
            extra=alias in event_shards,
            after=resume.position(alias) if resume else None,
            limit=limit + 1,
        )
        for alias in aliases
    }
    merged, statuses = _gather(queries, conf().shard_timeout_s)
    operations_total.labels(shard=home, operation="event_by_key").inc()
    return _page(
        merged, statuses, limit=limit, scope=scope, cursor=resume, version=bucket_map.version
    )
