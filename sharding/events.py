"""Sharded events: write on one shard, read by key (home shard plus a hot key's event slots)
or by time range across every shard in parallel (scatter-gather), paged by an opaque cursor.

Order is (ts, id) everywhere: ``id`` is a UUID chosen at write time, so the order does not
change when a bucket moves. Each shard answers only for rows it owns under the map version
the request uses (slot 0 rows of its buckets, plus extra-slot rows), so a bucket being moved
is never read twice; a shard that fails or times out is reported, never silently dropped.
"""

from __future__ import annotations

import heapq
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import DatabaseError, connections, transaction
from django.db.utils import OperationalError

from core.faults import fault_value
from sharding.conf import conf, spreading_enabled
from sharding.counters import _as_list
from sharding.db import home_write, rows
from sharding.errors import ShardCursorInvalid
from sharding.hotkeys import hot_states_cached, slot_pick
from sharding.metrics import operations_total, partial_reads_total
from sharding.placement import ShardMap, bucket_map_current, bucket_of, key_validate

SLOW_SHARDS_SWITCH = "sharding_slow_shards"
CURSOR_SALT = "sharding.events.cursor"
COLUMNS = "id, key, slot, ts, payload"


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
    from sharding.spreading import operation_observe

    key_validate(key)
    event_id = uuid.uuid4()
    document = json.dumps(payload)
    state = hot_states_cached().get(key) if spreading_enabled() else None
    slot = slot_pick(key=key, state=state) if state and state.spread else 0
    if slot:
        alias = state.spread[slot - 1]
        rows(
            alias,
            f"INSERT INTO sharding_event ({COLUMNS}, bucket, created_at) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, %s::jsonb, %s, now())",
            [event_id, key, slot, ts, document, bucket_of(key)],
        )
    else:
        alias, _ = home_write(
            key,
            lambda home, bucket, _map: (
                rows(
                    home,
                    "INSERT INTO sharding_event (id, key, slot, ts, payload, bucket, created_at) "
                    "SELECT %s, %s, 0, %s, %s::jsonb, %s, now() WHERE sharding_bucket_enter(%s) "
                    "RETURNING 1",
                    [event_id, key, ts, document, bucket, bucket],
                )
                or None
            ),
        )
    operations_total.labels(shard=alias, operation="event_create").inc()
    operation_observe(key=key, shard=alias)
    return EventRow(id=event_id, key=key, slot=slot, ts=ts, payload=payload, shard=alias)


@dataclass
class EventPage:
    items: list[EventRow]
    next_cursor: str | None
    partial: bool
    shards: dict[str, str] = field(default_factory=dict)
    map_version: int = 0


def cursor_encode(*, scope: dict, last: EventRow) -> str:
    return signing.dumps(
        {"scope": scope, "ts": last.ts.isoformat(), "id": str(last.id)},
        salt=CURSOR_SALT,
        compress=True,
    )


def cursor_decode(cursor: str, *, scope: dict) -> tuple[datetime, uuid.UUID]:
    try:
        data = signing.loads(cursor, salt=CURSOR_SALT)
        position = (datetime.fromisoformat(data["ts"]), uuid.UUID(data["id"]))
    except (signing.BadSignature, KeyError, ValueError, TypeError) as exc:
        raise ShardCursorInvalid("The cursor is malformed or was altered.", field="cursor") from exc
    if data.get("scope") != scope:
        raise ShardCursorInvalid(
            "The cursor belongs to another query; repeat the same filters.", field="cursor"
        )
    return position


def _shard_query(
    alias: str, sql: str, params: list, timeout_s: float, slow: bool
) -> list[EventRow]:
    try:
        with transaction.atomic(using=alias):
            rows(
                alias,
                "SELECT set_config('statement_timeout', %s, true)",
                [str(int(timeout_s * 1000))],
            )
            if slow:
                rows(alias, "SELECT pg_sleep(%s)", [timeout_s + 1])
            found = rows(alias, sql, params)
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
    queries: dict[str, tuple[str, list]], timeout_s: float
) -> tuple[list[EventRow], dict[str, str]]:
    """Every shard's query in parallel (each has its own timeout), merged by (ts, id)."""
    statuses: dict[str, str] = {}
    results: dict[str, list[EventRow]] = {}
    slow = set(fault_value(SLOW_SHARDS_SWITCH))
    pool = ThreadPoolExecutor(max_workers=max(1, len(queries)), thread_name_prefix="scatter")
    try:
        futures = {
            alias: pool.submit(_shard_query, alias, sql, params, timeout_s, alias in slow)
            for alias, (sql, params) in queries.items()
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
    merged: list[EventRow], statuses: dict[str, str], limit: int, scope: dict, version: int
) -> EventPage:
    items = merged[:limit]
    more = len(merged) > limit
    return EventPage(
        items=items,
        next_cursor=cursor_encode(scope=scope, last=items[-1]) if more else None,
        partial=any(status != "ok" for status in statuses.values()),
        shards=dict(sorted(statuses.items())),
        map_version=version,
    )


def _position_clause(position: tuple[datetime, uuid.UUID] | None) -> tuple[str, list]:
    if position is None:
        return "", []
    return " AND (ts, id) > (%s, %s)", [position[0], position[1]]


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
    position = cursor_decode(cursor, scope=scope) if cursor else None
    bucket_map = bucket_map or bucket_map_current()
    after, after_params = _position_clause(position)
    queries = {}
    for alias in settings.SHARD_ALIASES:
        sql = (
            f"SELECT {COLUMNS} FROM sharding_event "  # noqa: S608
            "WHERE ts >= %s AND ts < %s AND (slot > 0 OR bucket = ANY(%s))"
            f"{after} ORDER BY ts, id LIMIT %s"
        )
        params = [since, until, bucket_map.buckets_of(alias), *after_params, limit + 1]
        queries[alias] = (sql, params)
    merged, statuses = _gather(queries, conf().shard_timeout_s)
    for alias in statuses:
        operations_total.labels(shard=alias, operation="event_range").inc()
    return _page(merged, statuses, limit, scope, bucket_map.version)


def events_for_key(*, key: str, limit: int = 100, cursor: str | None = None) -> EventPage:
    """A key's events: its home shard, plus the shards of its extra event slots if it was hot."""
    key_validate(key)
    scope = {"key": key}
    position = cursor_decode(cursor, scope=scope) if cursor else None
    bucket_map = bucket_map_current()
    home = bucket_map.shard_for(key)
    placement = rows(home, "SELECT event_shards FROM sharding_keyplacement WHERE key = %s", [key])
    event_shards = _as_list(placement[0][0]) if placement else []
    after, after_params = _position_clause(position)
    queries = {}
    for alias in dict.fromkeys([home, *event_shards]):
        slot_filter = (
            "slot >= 0"
            if alias == home and alias in event_shards
            else ("slot = 0" if alias == home else "slot > 0")
        )
        sql = (
            f"SELECT {COLUMNS} FROM sharding_event WHERE key = %s AND {slot_filter}"  # noqa: S608
            f"{after} ORDER BY ts, id LIMIT %s"
        )
        queries[alias] = (sql, [key, *after_params, limit + 1])
    merged, statuses = _gather(queries, conf().shard_timeout_s)
    operations_total.labels(shard=home, operation="event_by_key").inc()
    return _page(merged, statuses, limit, scope, bucket_map.version)
