"""The periodic jobs of the sharding app, run by Celery beat (``sharding.tasks``), never inside a
request: a request only records its operation for detection (one Redis round trip).

- ``promote``: spread each key that has been over the hot threshold for ``hot_sustain_s``;
- ``tick``: fold keys that stayed cool for ``cool_sustain_s``, fold spreads orphaned by a lost
  hot set, finish interrupted folds;
- ``purge``: delete fold bookkeeping that no reader or replay needs any more, on every shard.
Their periods are ``settings.SHARDING_MAINTENANCE_PERIODS_S`` (0.5 s, 1 s, 60 s).

Each run holds a lease in Redis, so runs of one job do not overlap across workers (without
Redis they run anyway: every step is safe to run twice).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connections

from core.redis import redis_client
from sharding import store
from sharding.conf import conf, spreading_enabled
from sharding.folding import folds_redrive, key_fold
from sharding.hotkeys import cool_candidate, promotion_candidates
from sharding.keylock import RELEASE_LUA
from sharding.placement import bucket_map_cache_clear, bucket_map_current
from sharding.redis_keys import all_keys_pattern, job_lease_key
from sharding.spreading import hot_cache_clear, hot_states, key_spread

logger = logging.getLogger(__name__)

JOB_LEASE_S = 15.0  # a run killed mid-way holds its job back this long at most


def hot_keys_promote() -> int:
    """Spread every promotion candidate; the number spread."""
    if not spreading_enabled():
        return 0
    promoted = 0
    candidates = promotion_candidates(now=time.time(), exclude=set(hot_states()))
    for key, observation in candidates.items():
        try:
            promoted += key_spread(key=key, observation=observation)
        except Exception:
            logger.exception("promoting hot key %s failed; the next run tries again", key)
    return promoted


def hot_keys_tick() -> dict[str, int]:
    """Demote keys that stayed cool, fold orphaned spreads, re-drive folds."""
    settings_ = conf()
    now = time.time()
    folded = 0
    states = hot_states()
    for key in states:
        under_since = cool_candidate(key=key, now=now)
        if under_since is not None and now - under_since >= settings_.cool_sustain_s:
            folded += key_fold(key=key, under_since=under_since)
    redriven = folds_redrive()
    for alias in settings.SHARD_ALIASES:
        try:
            spread_keys = store.spread_keys(alias)
        except DatabaseError:
            continue
        for key in spread_keys:
            if key not in states and bucket_map_current().shard_for(key) == alias:
                folded += key_fold(key=key)
    return {"folded": folded, "redriven": redriven}


def folds_purge() -> int:
    """Delete fold records applied over an hour ago, on every shard that answers; then the
    notes of applied folds (``FoldApplied``, two hours old at least) whose record is gone from
    every shard: deleting a note whose record still exists (its shard unreachable when the
    fold stopped) would let a replay of the fold apply it twice. Returns notes deleted."""
    aliases = list(settings.SHARD_ALIASES)
    for alias in aliases:
        try:
            store.fold_records_purge(alias)
        except DatabaseError:
            continue
    deleted = 0
    for home in aliases:
        try:
            old = store.folds_applied_old(home)
            if not old:
                continue
            present: set = set()
            for alias in aliases:  # every shard must answer, or no note goes
                present |= store.fold_records_present(alias, fold_ids=old)
            gone = [fold_id for fold_id in old if fold_id not in present]
            store.folds_applied_delete(home, fold_ids=gone)
        except DatabaseError:
            continue
        deleted += len(gone)
    return deleted


JOBS: dict[str, Callable[[], Any]] = {
    "promote": hot_keys_promote,
    "tick": hot_keys_tick,
    "purge": folds_purge,
}


@contextmanager
def _job_lease(job: str) -> Iterator[bool]:
    """Whether this run may go ahead: no other run of ``job`` holds the lease."""
    client, name, token = redis_client(), job_lease_key(job), uuid.uuid4().hex
    try:
        acquired = bool(client.set(name, token, nx=True, px=int(JOB_LEASE_S * 1000)))
    except redis.RedisError:
        yield True
        return
    try:
        yield acquired
    finally:
        if acquired:
            try:
                client.eval(RELEASE_LUA, 1, name, token)
            except redis.RedisError:
                logger.warning("lease of %s not released; it expires in %s s", job, JOB_LEASE_S)


def job_run(job: str) -> Any:
    """Run one maintenance job unless another run of it is under way (then None)."""
    with _job_lease(job) as acquired:
        if not acquired:
            return None
        return JOBS[job]()


@contextmanager
def maintenance_running() -> Iterator[None]:
    """Run every job on its period in a thread of this process until the block ends: the
    scheduler for an in-process driver that has no Celery beat (the service-layer
    benchmark). With beat running as well, the leases keep runs apart."""
    periods = settings.SHARDING_MAINTENANCE_PERIODS_S
    stop = threading.Event()
    due = dict.fromkeys(JOBS, 0.0)

    def loop() -> None:
        try:
            while not stop.wait(min(periods.values()) / 2):
                for name in JOBS:
                    if time.monotonic() < due[name]:
                        continue
                    due[name] = time.monotonic() + periods[name]
                    try:
                        job_run(name)
                    except Exception:
                        logger.exception("maintenance job %s failed; the next run retries", name)
        finally:
            connections.close_all()

    thread = threading.Thread(target=loop, name="sharding-maintenance", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


def process_caches_clear() -> None:
    """Forget this process's cached bucket map, hot set and shard rates."""
    bucket_map_cache_clear()
    hot_cache_clear()


def redis_state_reset() -> None:
    """Forget every Redis key of this prefix and this process's caches (tests, benchmark
    phases)."""
    client = redis_client()
    names = list(client.scan_iter(match=all_keys_pattern(), count=500))
    if names:
        client.delete(*names)
    process_caches_clear()
