"""The bucket fence: what makes a bucket move lose no write.

A write to a bucket's home rows runs ``sharding_bucket_enter(bucket)`` (a SQL function, see
migration 0002) in its own transaction: it takes the bucket's advisory lock in *shared* mode,
then checks with a fresh snapshot that the shard has no fence for the bucket. A move takes the
same lock in *exclusive* mode to insert the fence, so it waits for every write in flight, and
every later write sees the fence and goes to the new home instead (``home_write``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.db import transaction

from sharding import store
from sharding.errors import ShardUnavailable
from sharding.placement import ShardMap, bucket_map_current, bucket_of

FENCE_WAIT_S = 15.0

T = TypeVar("T")


class BucketFenced(Exception):
    """The shard no longer takes writes for this bucket (moved or being moved)."""


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


def fenced_transaction(alias: str, bucket: int, work: Callable[[], T]) -> T | None:
    """``work()`` in one transaction on ``alias`` under the bucket's shared lock; None if fenced."""
    try:
        with transaction.atomic(using=alias):
            if not store.bucket_enter(alias, bucket):
                raise BucketFenced(bucket)
            return work()
    except BucketFenced:
        return None
