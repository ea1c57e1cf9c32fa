# ruff: noqa: S608 - statements are built from this module's constants, never from input
"""The shard tables: their names and every SQL statement on them (one alias per call).

The tables exist on every shard (migrations of the ``sharding`` app); which shard a row is on
is decided by the callers (``sharding.placement``), never by the router. Home rows of a bucket
(slot-0 counters, key placements, applied folds, slot-0 events) move with the bucket
(``BUCKET_TABLES``); extra slots of hot keys and their fold records stay where they are.

Statements that write a bucket's home rows either run ``sharding_bucket_enter(bucket)`` (the
SQL function of migration 0002: the bucket's advisory lock in shared mode, then a fresh check
that the shard has no fence for the bucket) or run inside a transaction that already did
(``bucket_enter``); see ``sharding.fences``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections, transaction

COUNTER_SLOT_TABLE = "sharding_counterslot"
KEY_PLACEMENT_TABLE = "sharding_keyplacement"
FOLD_RECORD_TABLE = "sharding_foldrecord"
FOLD_APPLIED_TABLE = "sharding_foldapplied"
EVENT_TABLE = "sharding_event"
BUCKET_FENCE_TABLE = "sharding_bucketfence"
BUCKET_LOCK_CLASS = 7345  # the first key of the bucket's advisory lock (migration 0002)


class FencedOut(Exception):
    """A write carried a fencing token older than the one its row holds: a newer promotion
    or fold of the key has begun, and this one must stop."""


def rows(alias: str, sql: str, params: list[Any] | tuple = ()) -> list[tuple]:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _json_list(value: Any) -> list:
    """A jsonb list as the driver returns it (already decoded, or text)."""
    return json.loads(value) if isinstance(value, str) else list(value or [])


# --- bucket fences ------------------------------------------------------------------------------


def bucket_enter(alias: str, bucket: int) -> bool:
    """Inside a transaction on ``alias``: hold the bucket's shared lock; False if fenced."""
    return bool(rows(alias, "SELECT sharding_bucket_enter(%s)", [bucket])[0][0])


def bucket_fence_set(alias: str, bucket: int) -> None:
    """Fence the bucket on ``alias``: the exclusive lock waits for every write in flight."""
    with transaction.atomic(using=alias):
        rows(alias, "SELECT pg_advisory_xact_lock(%s, %s)", [BUCKET_LOCK_CLASS, bucket])
        rows(
            alias,
            f"INSERT INTO {BUCKET_FENCE_TABLE} (bucket, created_at) VALUES (%s, now()) "
            "ON CONFLICT (bucket) DO NOTHING",
            [bucket],
        )


def bucket_fence_clear(alias: str, bucket: int) -> None:
    rows(alias, f"DELETE FROM {BUCKET_FENCE_TABLE} WHERE bucket = %s", [bucket])


# --- counter slots ------------------------------------------------------------------------------

_SLOT0_ADD = f"""
INSERT INTO {COUNTER_SLOT_TABLE} (key, slot, bucket, pos, neg, open)
VALUES (%s, 0, %s, %s, %s, true)
ON CONFLICT (key, slot) DO UPDATE
SET pos = {COUNTER_SLOT_TABLE}.pos + EXCLUDED.pos, neg = {COUNTER_SLOT_TABLE}.neg + EXCLUDED.neg
RETURNING 1
"""
_SLOT0_ADD_FENCED = f"""
INSERT INTO {COUNTER_SLOT_TABLE} (key, slot, bucket, pos, neg, open)
SELECT %s, 0, %s, %s, %s, true WHERE sharding_bucket_enter(%s)
ON CONFLICT (key, slot) DO UPDATE
SET pos = {COUNTER_SLOT_TABLE}.pos + EXCLUDED.pos, neg = {COUNTER_SLOT_TABLE}.neg + EXCLUDED.neg
RETURNING 1
"""
_EXTRA_SLOT_ADD = f"""
UPDATE {COUNTER_SLOT_TABLE} SET pos = pos + %s, neg = neg + %s
WHERE key = %s AND slot = %s AND open
RETURNING 1
"""


def slot0_add(alias: str, *, key: str, bucket: int, pos: int, neg: int) -> bool:
    """Add to slot 0 in one statement that enters the bucket first; False if fenced."""
    return bool(rows(alias, _SLOT0_ADD_FENCED, [key, bucket, pos, neg, bucket]))


def slot0_add_entered(alias: str, *, key: str, bucket: int, pos: int, neg: int) -> None:
    """Add to slot 0 inside a transaction that already holds the bucket (``bucket_enter``)."""
    rows(alias, _SLOT0_ADD, [key, bucket, pos, neg])


def extra_slot_add(alias: str, *, key: str, slot: int, pos: int, neg: int) -> bool:
    """Add to an extra slot while it is open; False when it is closed (folded) or absent."""
    return bool(rows(alias, _EXTRA_SLOT_ADD, [pos, neg, key, slot]))


def extra_slot_open(alias: str, *, key: str, slot: int, bucket: int, fence: int) -> None:
    """Open (or reopen) an extra slot for the promotion holding token ``fence``; FencedOut if
    a newer promotion or fold has written the slot."""
    if not rows(
        alias,
        f"INSERT INTO {COUNTER_SLOT_TABLE} (key, slot, bucket, pos, neg, open, fence) "
        "VALUES (%s, %s, %s, 0, 0, true, %s) ON CONFLICT (key, slot) DO UPDATE "
        "SET open = true, fence = EXCLUDED.fence "
        f"WHERE {COUNTER_SLOT_TABLE}.fence <= EXCLUDED.fence RETURNING 1",
        [key, slot, bucket, fence],
    ):
        raise FencedOut(key)


def counter_slots(alias: str, *, key: str, extra_only: bool = False) -> list[tuple]:
    """(slot, pos, neg, open) of the key's slots on ``alias``."""
    where = "key = %s AND slot > 0" if extra_only else "key = %s"
    return rows(
        alias, f"SELECT slot, pos, neg, open FROM {COUNTER_SLOT_TABLE} WHERE {where}", [key]
    )


def slot_take(
    alias: str, *, key: str, slot: int, fold_id: uuid.UUID, fence: int
) -> tuple[int, int] | None:
    """Step 1 of a fold holding token ``fence``, one transaction: lock the slot, zero it,
    close it and record the amount as ``FoldRecord(fold_id)``; None when the slot is absent
    or held nothing; FencedOut if a newer promotion or fold has written the slot."""
    with transaction.atomic(using=alias):
        found = rows(
            alias,
            f"SELECT pos, neg, fence FROM {COUNTER_SLOT_TABLE} "
            "WHERE key = %s AND slot = %s FOR UPDATE",
            [key, slot],
        )
        if not found:
            return None
        pos, neg, newest = found[0]
        if newest > fence:
            raise FencedOut(key)
        rows(
            alias,
            f"UPDATE {COUNTER_SLOT_TABLE} SET pos = 0, neg = 0, open = false, fence = %s "
            "WHERE key = %s AND slot = %s",
            [fence, key, slot],
        )
        if not pos and not neg:
            return None
        rows(
            alias,
            f"INSERT INTO {FOLD_RECORD_TABLE} "
            "(fold_id, key, slot, pos, neg, applied, created_at) "
            "VALUES (%s, %s, %s, %s, %s, false, now())",
            [fold_id, key, slot, pos, neg],
        )
    return pos, neg


def row_counts(alias: str) -> tuple[int, int]:
    """Counter slots and events stored on ``alias``."""
    counters, events = rows(
        alias,
        f"SELECT (SELECT count(*) FROM {COUNTER_SLOT_TABLE}), (SELECT count(*) FROM {EVENT_TABLE})",
    )[0]
    return counters, events


# --- key placements -----------------------------------------------------------------------------


def placement_spread(alias: str, *, key: str) -> list[str]:
    """Shard of each open extra slot of ``key`` (slot i+1 at index i), from its home shard."""
    found = rows(alias, f"SELECT spread FROM {KEY_PLACEMENT_TABLE} WHERE key = %s", [key])
    return _json_list(found[0][0]) if found else []


def placement_event_shards(alias: str, *, key: str) -> list[str]:
    """Every shard that ever held extra event slots of ``key``, from its home shard."""
    found = rows(alias, f"SELECT event_shards FROM {KEY_PLACEMENT_TABLE} WHERE key = %s", [key])
    return _json_list(found[0][0]) if found else []


def placement_token_issue(alias: str, *, key: str, bucket: int) -> int:
    """The key's next fencing token (1, 2, ...), inside a transaction that holds the bucket;
    the placement row carries it, so it moves with the bucket and never goes back."""
    return rows(
        alias,
        f"INSERT INTO {KEY_PLACEMENT_TABLE} (key, bucket, spread, event_shards, fence) "
        "VALUES (%s, %s, '[]'::jsonb, '[]'::jsonb, 1) "
        f"ON CONFLICT (key) DO UPDATE SET fence = {KEY_PLACEMENT_TABLE}.fence + 1 "
        "RETURNING fence",
        [key, bucket],
    )[0][0]


def placement_spread_set(alias: str, *, key: str, spread: list[str], fence: int) -> None:
    """Record the key's open extra slots (and add their shards to its event shards), inside a
    transaction that holds the bucket; FencedOut unless ``fence`` is the key's newest token."""
    if not rows(
        alias,
        f"""
        UPDATE {KEY_PLACEMENT_TABLE} SET
          spread = %s::jsonb,
          event_shards = (
            SELECT coalesce(jsonb_agg(DISTINCT shard), '[]'::jsonb)
            FROM jsonb_array_elements_text(event_shards || %s::jsonb) AS shard)
        WHERE key = %s AND fence = %s
        RETURNING 1
        """,
        [json.dumps(spread), json.dumps(spread), key, fence],
    ):
        raise FencedOut(key)


def placement_spread_clear(alias: str, *, key: str, fence: int) -> None:
    """Forget the key's extra slots, inside a transaction that holds the bucket; FencedOut
    unless ``fence`` is the key's newest token."""
    if not rows(
        alias,
        f"UPDATE {KEY_PLACEMENT_TABLE} SET spread = '[]'::jsonb "
        "WHERE key = %s AND fence = %s RETURNING 1",
        [key, fence],
    ):
        raise FencedOut(key)


def spread_keys(alias: str, *, limit: int = 100) -> list[str]:
    """Keys whose placement on ``alias`` still names extra slots."""
    return [
        row[0]
        for row in rows(
            alias,
            f"SELECT key FROM {KEY_PLACEMENT_TABLE} WHERE spread <> '[]'::jsonb LIMIT %s",
            [limit],
        )
    ]


# --- folds --------------------------------------------------------------------------------------


def fold_records(alias: str, *, key: str, unapplied_only: bool = False) -> list[tuple]:
    """(fold_id, pos, neg) of the key's fold records on ``alias``."""
    where = "key = %s AND NOT applied" if unapplied_only else "key = %s"
    return rows(alias, f"SELECT fold_id, pos, neg FROM {FOLD_RECORD_TABLE} WHERE {where}", [key])


def fold_records_pending(alias: str, *, min_age_s: float) -> list[tuple]:
    """(fold_id, key, pos, neg) of records not yet marked applied, at least ``min_age_s`` old."""
    return rows(
        alias,
        f"SELECT fold_id, key, pos, neg FROM {FOLD_RECORD_TABLE} WHERE NOT applied "
        "AND created_at < now() - make_interval(secs => %s)",
        [min_age_s],
    )


def fold_record_mark_applied(alias: str, *, fold_id: uuid.UUID) -> None:
    rows(alias, f"UPDATE {FOLD_RECORD_TABLE} SET applied = true WHERE fold_id = %s", [fold_id])


def folds_applied(alias: str, *, key: str) -> set[uuid.UUID]:
    """Ids of the key's folds already added to slot 0 on its home shard ``alias``."""
    return {
        row[0]
        for row in rows(alias, f"SELECT fold_id FROM {FOLD_APPLIED_TABLE} WHERE key = %s", [key])
    }


def fold_applied_insert(
    alias: str, *, fold_id: uuid.UUID, key: str, bucket: int, pos: int, neg: int
) -> bool:
    """Note the fold as applied on the home shard; False when it already was (a replay)."""
    return bool(
        rows(
            alias,
            f"INSERT INTO {FOLD_APPLIED_TABLE} (fold_id, key, bucket, pos, neg, created_at) "
            "VALUES (%s, %s, %s, %s, %s, now()) ON CONFLICT (fold_id) DO NOTHING RETURNING 1",
            [fold_id, key, bucket, pos, neg],
        )
    )


def fold_records_purge(alias: str) -> None:
    """Delete records marked applied more than an hour ago."""
    rows(
        alias,
        f"DELETE FROM {FOLD_RECORD_TABLE} WHERE applied AND created_at < now() - interval '1 hour'",
    )


def folds_applied_old(alias: str, *, limit: int = 500) -> list[uuid.UUID]:
    """Ids of notes of applied folds older than two hours (purge candidates)."""
    return [
        row[0]
        for row in rows(
            alias,
            f"SELECT fold_id FROM {FOLD_APPLIED_TABLE} "
            "WHERE created_at < now() - interval '2 hours' ORDER BY created_at LIMIT %s",
            [limit],
        )
    ]


def fold_records_present(alias: str, *, fold_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``fold_ids`` still have a fold record on ``alias``."""
    return {
        row[0]
        for row in rows(
            alias,
            f"SELECT fold_id FROM {FOLD_RECORD_TABLE} WHERE fold_id = ANY(%s)",
            [fold_ids],
        )
    }


def folds_applied_delete(alias: str, *, fold_ids: list[uuid.UUID]) -> None:
    rows(alias, f"DELETE FROM {FOLD_APPLIED_TABLE} WHERE fold_id = ANY(%s)", [fold_ids])


# --- events -------------------------------------------------------------------------------------

EVENT_COLUMNS = "id, key, slot, ts, payload"


def event_insert_extra(
    alias: str,
    *,
    event_id: uuid.UUID,
    key: str,
    slot: int,
    bucket: int,
    ts: datetime,
    document: str,
) -> None:
    """An event of a hot key on one of its extra event slots (these rows never move)."""
    rows(
        alias,
        f"INSERT INTO {EVENT_TABLE} ({EVENT_COLUMNS}, bucket, created_at) "
        "VALUES (%s, %s, %s, %s, %s::jsonb, %s, now())",
        [event_id, key, slot, ts, document, bucket],
    )


def event_insert_home(
    alias: str, *, event_id: uuid.UUID, key: str, bucket: int, ts: datetime, document: str
) -> bool:
    """An event on the key's home shard, in one statement that enters the bucket first;
    False if fenced."""
    return bool(
        rows(
            alias,
            f"INSERT INTO {EVENT_TABLE} (id, key, slot, ts, payload, bucket, created_at) "
            "SELECT %s, %s, 0, %s, %s::jsonb, %s, now() WHERE sharding_bucket_enter(%s) "
            "RETURNING 1",
            [event_id, key, ts, document, bucket, bucket],
        )
    )


Position = tuple[datetime, uuid.UUID]


def _after(position: Position | None) -> tuple[str, list]:
    if position is None:
        return "", []
    return " AND (ts, id) > (%s, %s)", [position[0], position[1]]


def events_in_range(
    alias: str,
    *,
    since: datetime,
    until: datetime,
    buckets: list[int],
    after: Position | None,
    limit: int,
) -> list[tuple]:
    """The first ``limit`` events with ``since <= ts < until`` that ``alias`` answers for
    (extra-slot rows, and slot-0 rows of ``buckets``), after ``after`` in (ts, id) order."""
    clause, params = _after(after)
    return rows(
        alias,
        f"SELECT {EVENT_COLUMNS} FROM {EVENT_TABLE} "
        "WHERE ts >= %s AND ts < %s AND (slot > 0 OR bucket = ANY(%s))"
        f"{clause} ORDER BY ts, id LIMIT %s",
        [since, until, buckets, *params, limit],
    )


def events_of_key(
    alias: str, *, key: str, home: bool, extra: bool, after: Position | None, limit: int
) -> list[tuple]:
    """The first ``limit`` events of ``key`` on ``alias`` after ``after``: its slot-0 rows if
    ``home``, its extra-slot rows if ``extra``."""
    slot_filter = "slot >= 0" if home and extra else ("slot = 0" if home else "slot > 0")
    clause, params = _after(after)
    return rows(
        alias,
        f"SELECT {EVENT_COLUMNS} FROM {EVENT_TABLE} WHERE key = %s AND {slot_filter}"
        f"{clause} ORDER BY ts, id LIMIT %s",
        [key, *params, limit],
    )


def statement_timeout_set(alias: str, *, timeout_s: float) -> None:
    """For the rest of the transaction on ``alias``."""
    rows(alias, "SELECT set_config('statement_timeout', %s, true)", [str(int(timeout_s * 1000))])


def stall(alias: str, *, seconds: float) -> None:
    """Keep ``alias`` busy (the slow-shard fault)."""
    rows(alias, "SELECT pg_sleep(%s)", [seconds])


# --- a bucket's home rows, for moves ------------------------------------------------------------


@dataclass(frozen=True)
class BucketTable:
    """A table's home rows of a bucket: which rows, and how a copy upserts them."""

    name: str
    columns: tuple[str, ...]
    where: str
    conflict: str
    update: tuple[str, ...]
    json_columns: tuple[str, ...] = ()

    def select(self) -> str:
        return (
            f"SELECT {', '.join(self.columns)} FROM {self.name} "
            f"WHERE {self.where} ORDER BY {self.conflict.strip('()')}"
        )

    def upsert(self) -> str:
        placeholders = ", ".join(
            "%s::jsonb" if column in self.json_columns else "%s" for column in self.columns
        )
        action = (
            "DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in self.update)
            if self.update
            else "DO NOTHING"
        )
        return (
            f"INSERT INTO {self.name} ({', '.join(self.columns)}) VALUES ({placeholders}) "
            f"ON CONFLICT {self.conflict} {action}"
        )

    def delete(self) -> str:
        return f"DELETE FROM {self.name} WHERE {self.where}"


BUCKET_TABLES = (
    BucketTable(
        COUNTER_SLOT_TABLE,
        ("key", "slot", "bucket", "pos", "neg", "open"),
        "bucket = %s AND slot = 0",
        "(key, slot)",
        ("pos", "neg", "open"),
    ),
    BucketTable(
        KEY_PLACEMENT_TABLE,
        ("key", "bucket", "spread", "event_shards", "fence"),
        "bucket = %s",
        "(key)",
        ("spread", "event_shards", "fence"),
        json_columns=("spread", "event_shards"),
    ),
    BucketTable(
        FOLD_APPLIED_TABLE,
        ("fold_id", "key", "bucket", "pos", "neg", "created_at"),
        "bucket = %s",
        "(fold_id)",
        (),
    ),
    BucketTable(
        EVENT_TABLE,
        ("id", "key", "slot", "bucket", "ts", "payload", "created_at"),
        "bucket = %s AND slot = 0",
        "(id)",
        (),
        json_columns=("payload",),
    ),
)


def bucket_rows(alias: str, table: BucketTable, bucket: int) -> list[tuple]:
    """The bucket's home rows of ``table`` on ``alias``, in key order."""
    return rows(alias, table.select(), [bucket])


def bucket_rows_upsert(alias: str, table: BucketTable, found: list[tuple]) -> None:
    """Write ``found`` (rows of ``table``) to ``alias`` as absolute values, one transaction."""
    if not found:
        return
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.executemany(
            table.upsert(),
            [
                [json.dumps(value) if isinstance(value, (list, dict)) else value for value in row]
                for row in found
            ],
        )


def bucket_rows_delete(alias: str, bucket: int) -> None:
    """Delete every home row of the bucket on ``alias``, one transaction."""
    with transaction.atomic(using=alias):
        for table in BUCKET_TABLES:
            rows(alias, table.delete(), [bucket])
