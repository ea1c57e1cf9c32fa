"""Raw SQL on one shard alias, and the bucket fence that makes a move lose no write.

A write to a bucket's rows on its home shard runs ``sharding_bucket_enter(bucket)`` (a SQL
function, see migration 0002) in its own transaction: it takes the bucket's advisory lock in
*shared* mode, then checks with a fresh snapshot that the shard has no fence for the bucket.
A move takes the same lock in *exclusive* mode to insert the fence, so it waits for every
write in flight, and every later write sees the fence and goes to the new home instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connections, transaction

from sharding.errors import ShardUnavailable
from sharding.placement import ShardMap, bucket_map_current, bucket_of

BUCKET_LOCK_CLASS = 7345
FENCE_WAIT_S = 15.0

T = TypeVar("T")


class BucketFenced(Exception):
    """The shard no longer takes writes for this bucket (moved or being moved)."""


def rows(alias: str, sql: str, params: list[Any] | tuple = ()) -> list[tuple]:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def home_write(key: str, write: Callable[[str, int, ShardMap], T | None]) -> tuple[str, T]:
    """Run ``write(alias, bucket, map)`` on the key's home shard; ``write`` returns None when the
    fence stopped it, then the map is reloaded and the write retried on the new home."""
    deadline = time.monotonic() + FENCE_WAIT_S
    force = False
    while True:
        bucket_map = bucket_map_current(force=force)
        bucket = bucket_of(key, len(bucket_map.assignment))
        alias = bucket_map.shard_of_bucket(bucket)
        result = write(alias, bucket, bucket_map)
        if result is not None:
            return alias, result
        if time.monotonic() > deadline:
            raise ShardUnavailable(
                f"bucket {bucket} is being moved; try again", bucket=bucket, shard=alias
            )
        force = True
        time.sleep(0.02)


def bucket_enter(alias: str, bucket: int) -> None:
    """Inside a transaction on ``alias``: hold the bucket's shared lock or raise BucketFenced."""
    (allowed,) = rows(alias, "SELECT sharding_bucket_enter(%s)", [bucket])[0]
    if not allowed:
        raise BucketFenced(bucket)


def fenced_transaction(alias: str, bucket: int, work: Callable[[], T]) -> T | None:
    """``work()`` in one transaction on ``alias`` under the bucket's shared lock; None if fenced."""
    try:
        with transaction.atomic(using=alias):
            bucket_enter(alias, bucket)
            return work()
    except BucketFenced:
        return None
