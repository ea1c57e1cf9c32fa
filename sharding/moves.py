"""Moving a bucket between shards while reads and writes continue.

Steps (``bucket_move``): copy the bucket's home rows (slot-0 counters, placements, applied
folds, slot-0 events) to the target; copy again to catch up; *freeze* (take the bucket's
advisory lock exclusively on the source and insert a fence: writes in flight finish first,
later ones are turned away and retry on the new home once the map switches); final copy;
verify (row counts and a Merkle root per table, source == target); switch the map; announce
its version in Redis (if that fails, the move stops there, before deleting anything); wait
the bound within which every process has read the new map (``map_max_age_s``, plus
``map_in_flight_s`` for requests already under way); delete the source rows. Copies write absolute
values (upsert), so repeating one is harmless: nothing is lost or doubled. Extra slots of hot
keys are not part of a bucket and stay where they are.

Two moves at once: a move holds its bucket's lock on ``default`` from start to end, so a
second move of the same bucket is refused (it would copy from a source the first one has
fenced, and orphan what is written to the first target meanwhile); and the map switch is a
compare-and-set on the newest version (``bucket_map_switch``), so moves of different buckets
cannot put each other's bucket back on its fenced, emptied source.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings
from django.db import connections
from django.utils import timezone

from sharding import store
from sharding.conf import conf
from sharding.control.models import BucketMove
from sharding.errors import BucketMoveIncomplete, BucketMoveRefused
from sharding.placement import bucket_map_current, bucket_map_switch, map_version_announce

logger = logging.getLogger(__name__)


def _copy(source: str, target: str, bucket: int) -> dict[str, int]:
    """Upsert every bucket row of the source into the target (absolute values)."""
    copied = {}
    for table in store.BUCKET_TABLES:
        found = store.bucket_rows(source, table, bucket)
        store.bucket_rows_upsert(target, table, found)
        copied[table.name] = len(found)
    return copied


def bucket_checksum(alias: str, bucket: int) -> tuple[dict[str, int], str]:
    """Row counts and a Merkle root over the bucket's rows (leaves: SHA-256 of each row in
    key order; each level hashes pairs), comparable between two shards."""
    counts: dict[str, int] = {}
    roots = []
    for table in store.BUCKET_TABLES:
        found = store.bucket_rows(alias, table, bucket)
        counts[table.name] = len(found)
        leaves = [
            hashlib.sha256(json.dumps(row, default=str, sort_keys=True).encode()).digest()
            for row in found
        ]
        roots.append(_merkle_root(leaves))
    return counts, _merkle_root(roots).hex()


def _merkle_root(leaves: list[bytes]) -> bytes:
    level = leaves or [hashlib.sha256(b"").digest()]
    while len(level) > 1:
        if len(level) % 2:
            level = [*level, level[-1]]
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


MOVE_LOCK_CLASS = 7347  # advisory lock on default, per bucket: one move of a bucket at a time


@contextmanager
def _bucket_move_lock(bucket: int) -> Iterator[None]:
    """Hold the bucket's move lock for the whole move (a session lock on ``default``: a mover
    that dies releases it with its connection); refuse when another move holds it."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [MOVE_LOCK_CLASS, bucket])
        (acquired,) = cursor.fetchone()
    if not acquired:
        raise BucketMoveRefused(
            f"bucket {bucket} is being moved by another move; try again once it is done",
            bucket=bucket,
        )
    try:
        yield
    finally:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [MOVE_LOCK_CLASS, bucket])


def bucket_move(*, bucket: int, target: str, log=None) -> BucketMove:
    """Move ``bucket`` to ``target`` (see the module docstring); returns the move record.
    One move of a bucket at a time: a second one is refused while the first runs."""
    if not 0 <= bucket < len(bucket_map_current(force=True).assignment):
        raise BucketMoveRefused(f"no bucket {bucket}", bucket=bucket)
    if target not in settings.SHARD_ALIASES:
        raise BucketMoveRefused(f"no shard {target}", target=target)
    with _bucket_move_lock(bucket):
        source = bucket_map_current(force=True).shard_of_bucket(bucket)
        if source == target:
            raise BucketMoveRefused(f"bucket {bucket} is already on {target}", bucket=bucket)
        move = BucketMove.objects.using("default").create(
            bucket=bucket, source=source, target=target
        )
        try:
            _steps(move, log or logger.info)
        except Exception as exc:
            _state(move, BucketMove.State.FAILED, error=str(exc)[:2000], finished_at=timezone.now())
            still_on_source = bucket_map_current(force=True).shard_of_bucket(bucket) == source
            if move.map_version is None and still_on_source:
                store.bucket_fence_clear(source, bucket)
            raise
    return move


def _steps(move: BucketMove, say) -> None:
    bucket, source, target = move.bucket, move.source, move.target
    # A fence left on the target by an earlier move away from it, and rows of an aborted
    # move, would block or duplicate: the target does not own the bucket, so clear both.
    store.bucket_fence_clear(target, bucket)
    store.bucket_rows_delete(target, bucket)
    copied = _copy(source, target, bucket)
    say(f"bucket {bucket}: copied {copied} from {source} to {target}")
    _state(move, BucketMove.State.CATCHING_UP, rows_copied=copied)
    copied = _copy(source, target, bucket)
    store.bucket_fence_set(source, bucket)
    _state(move, BucketMove.State.FROZEN)
    copied = _copy(source, target, bucket)
    source_counts, source_root = bucket_checksum(source, bucket)
    target_counts, target_root = bucket_checksum(target, bucket)
    say(
        f"bucket {bucket}: source {source_counts} {source_root[:16]}, "
        f"target {target_counts} {target_root[:16]}"
    )
    if (source_counts, source_root) != (target_counts, target_root):
        raise BucketMoveRefused(
            "the copy does not match the source", source=source_counts, target=target_counts
        )
    _state(
        move,
        BucketMove.State.VERIFIED,
        rows_copied=source_counts,
        source_checksum=source_root,
        target_checksum=target_root,
    )
    new_map = bucket_map_switch(
        bucket=bucket,
        source=source,
        target=target,
        reason=f"move bucket {bucket} {source} -> {target}",
    )
    _state(move, BucketMove.State.SWITCHED, map_version=new_map.version)
    say(f"bucket {bucket}: map v{new_map.version} sends it to {target}")
    settings_ = conf()
    try:
        map_version_announce(new_map.version)
    except redis.RedisError as exc:
        raise BucketMoveIncomplete(
            f"map v{new_map.version} is in force but could not be announced in Redis ({exc}); "
            f"every process reads it from the database within {settings_.map_max_age_s} s. "
            f"The source {source} keeps the bucket's rows (fenced, never read): they go when "
            f"the bucket next moves back there.",
            bucket=bucket,
            map_version=new_map.version,
        ) from exc
    # A process uses a map at most map_max_age_s old (see bucket_map_current), and a request
    # that took the previous one may still be reading the source for map_in_flight_s.
    time.sleep(settings_.map_max_age_s + settings_.map_in_flight_s)
    store.bucket_rows_delete(source, bucket)
    _state(move, BucketMove.State.DONE, finished_at=timezone.now())
    say(f"bucket {bucket}: source rows removed; done")


def _state(move: BucketMove, state: str, **fields) -> None:
    move.state = state
    for name, value in fields.items():
        setattr(move, name, value)
    move.save(using="default")
