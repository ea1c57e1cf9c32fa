"""Placement: key -> bucket (stable hash) -> shard (versioned bucket map).

``bucket_of`` is blake2b, the same in every process and release (Python's ``hash()`` is
salted per process). ``shard_for(key, bucket_map)`` is a pure function of the key and the map
version. Each process caches the current map, checks a version number in Redis at most every
``map_check_s`` (reloading from ``default`` when it changed) and re-reads ``default`` at least
every ``map_max_age_s`` whatever Redis says; a write that hits a bucket fence forces a reload,
so a stale map can delay a write but never misplace it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import IntegrityError, connections, transaction

from core.redis import redis_client
from sharding.conf import conf
from sharding.control.models import BucketMap
from sharding.errors import BucketMoveRefused, ShardKeyInvalid
from sharding.redis_keys import map_version_key

KEY_MAX_LENGTH = 128
MAP_LOCK_CLASS = 7346  # advisory lock on default: one map switch at a time
KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]*", re.ASCII)


def key_validate(key: object) -> str:
    """Keys are 1-128 ASCII letters, digits and ``_.:@-``, starting with a letter or digit;
    anything else (including look-alike Unicode letters) is refused with a clear code."""
    if not isinstance(key, str) or not key:
        raise ShardKeyInvalid("A key is required.", field="key")
    if len(key) > KEY_MAX_LENGTH:
        raise ShardKeyInvalid(
            f"A key has at most {KEY_MAX_LENGTH} characters.", field="key", max_length=128
        )
    if not KEY_PATTERN.fullmatch(key):
        raise ShardKeyInvalid(
            "A key uses only ASCII letters, digits and _ . : @ -, and starts with a letter "
            "or digit.",
            field="key",
            pattern=KEY_PATTERN.pattern,
        )
    return key


def bucket_of(key: str, buckets: int | None = None) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (buckets or conf().buckets)


@dataclass(frozen=True)
class ShardMap:
    version: int
    assignment: tuple[str, ...]

    def shard_of_bucket(self, bucket: int) -> str:
        return self.assignment[bucket]

    def shard_for(self, key: str) -> str:
        return self.assignment[bucket_of(key, len(self.assignment))]

    def buckets_of(self, alias: str) -> list[int]:
        return [bucket for bucket, owner in enumerate(self.assignment) if owner == alias]


def shard_for(key: str, bucket_map: ShardMap) -> str:
    return bucket_map.shard_for(key)


def initial_assignment(aliases: list[str], buckets: int) -> list[str]:
    return [aliases[bucket % len(aliases)] for bucket in range(buckets)]


_lock = threading.Lock()
_cached: ShardMap | None = None
_checked_at = -1e9  # last check of the version (Redis or the database)
_loaded_at = -1e9  # last read of the database


def bucket_map_ensure() -> ShardMap:
    """The latest stored map; version 1 (round-robin over the shard aliases) when none is."""
    latest = BucketMap.objects.using("default").order_by("-version").first()
    if latest is None:
        assignment = initial_assignment(list(settings.SHARD_ALIASES), conf().buckets)
        try:
            with transaction.atomic(using="default"):
                latest = BucketMap.objects.using("default").create(
                    version=1, assignment=assignment, reason="initial: round-robin"
                )
        except IntegrityError:
            latest = BucketMap.objects.using("default").order_by("-version").first()
    return ShardMap(version=latest.version, assignment=tuple(latest.assignment))


def bucket_map_current(*, force: bool = False) -> ShardMap:
    """This process's map. Its version is checked in Redis at most every ``map_check_s``, and
    trusted from Redis for ``map_max_age_s`` at most: a map older than that is read again
    from ``default``, so a version that never reached Redis reaches every process within
    ``map_max_age_s`` anyway (the bound a move waits for before deleting its source)."""
    global _cached, _checked_at, _loaded_at  # noqa: PLW0603 - the per-process map cache
    settings_ = conf()
    now = time.monotonic()
    with _lock:
        cached, checked_at, loaded_at = _cached, _checked_at, _loaded_at
    if cached is not None and not force and now - loaded_at < settings_.map_max_age_s:
        if now - checked_at < settings_.map_check_s:
            return cached
        try:
            published = redis_client().get(map_version_key())
        except redis.RedisError:
            published = None
        if published is not None and int(published) == cached.version:
            with _lock:
                _checked_at = now
            return cached
    fresh = bucket_map_ensure()
    with _lock:
        _cached, _checked_at, _loaded_at = fresh, now, now
    with contextlib.suppress(redis.RedisError):
        redis_client().set(map_version_key(), fresh.version, nx=True)
    return fresh


ANNOUNCE_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""
ANNOUNCE_ATTEMPTS = 3


def map_version_announce(version: int) -> None:
    """Tell every process through Redis that map ``version`` exists (never lowering the
    announced version); retried briefly, then the Redis error is raised."""
    for attempt in range(ANNOUNCE_ATTEMPTS):
        try:
            redis_client().eval(ANNOUNCE_LUA, 1, map_version_key(), version)
            return
        except redis.RedisError:
            if attempt == ANNOUNCE_ATTEMPTS - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def bucket_map_switch(*, bucket: int, source: str, target: str, reason: str) -> ShardMap:
    """Store a new map version in which ``bucket`` goes from ``source`` to ``target``: built
    from the newest version inside the switch's transaction (never from a copy read earlier,
    so two switches of different buckets cannot undo each other) and only if the bucket is
    still on ``source`` (compare and set; else ``BucketMoveRefused``). Switches take one
    advisory lock on ``default`` in turn, so versions are allocated one at a time."""
    with transaction.atomic(using="default"):
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [MAP_LOCK_CLASS])
        latest = bucket_map_ensure()
        owner = latest.shard_of_bucket(bucket)
        if owner != source:
            raise BucketMoveRefused(
                f"bucket {bucket} is on {owner} in map v{latest.version}, not on {source}",
                bucket=bucket,
                map_version=latest.version,
            )
        assignment = list(latest.assignment)
        assignment[bucket] = target
        BucketMap.objects.using("default").create(
            version=latest.version + 1, assignment=assignment, reason=reason[:200]
        )
    return bucket_map_current(force=True)


def bucket_map_cache_clear() -> None:
    global _cached, _checked_at, _loaded_at
    with _lock:
        _cached, _checked_at, _loaded_at = None, -1e9, -1e9


def rebalance_plan(assignment: list[str], aliases: list[str]) -> dict[int, str]:
    """Moves (bucket -> new shard) that spread ``assignment`` evenly over ``aliases``, moving
    only what must move: a new shard takes buckets from the fullest ones, nothing else moves."""
    buckets = len(assignment)
    owned: dict[str, list[int]] = {alias: [] for alias in aliases}
    orphaned: list[int] = []
    for bucket, owner in enumerate(assignment):
        (owned.get(owner, orphaned)).append(bucket)
    quota = {
        alias: buckets // len(aliases) + (1 if index < buckets % len(aliases) else 0)
        for index, alias in enumerate(aliases)
    }
    moves: dict[int, str] = {}
    spare = list(orphaned)
    for alias in sorted(owned, key=lambda a: -len(owned[a])):
        while len(owned[alias]) > quota[alias]:
            spare.append(owned[alias].pop())
    for alias in aliases:
        while len(owned[alias]) < quota[alias] and spare:
            bucket = spare.pop()
            owned[alias].append(bucket)
            moves[bucket] = alias
    return moves
