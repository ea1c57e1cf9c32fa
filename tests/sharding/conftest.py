"""Real shard databases and real Redis; each test gets its own Redis key prefix."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from django.conf import settings
from django.db import connections

from sharding.maintenance import process_caches_clear, redis_state_reset
from tests.saga.conftest import broker_purge
from tests.workers import celery_worker

ALL_DATABASES = ["default", *settings.SHARD_ALIASES]


@pytest.fixture
def sharding_settings(settings):
    """Per-test prefix and thresholds a test can lower (``sharding_settings.SHARDING[...]``)."""
    settings.SHARDING = {
        **settings.SHARDING,
        "prefix": f"sharding-{settings.CACHES['default']['KEY_PREFIX']}-{uuid.uuid4().hex[:8]}",
        "map_check_s": 0.2,
        "map_max_age_s": 0.3,
        "map_in_flight_s": 0.2,
    }
    process_caches_clear()
    yield settings
    redis_state_reset()


@pytest.fixture
def shards(sharding_settings, transactional_db, django_db_blocker):
    """Committed data on default and every shard (threads and processes must see it)."""
    yield sharding_settings
    for alias in ALL_DATABASES:
        connections[alias].close()


def sharding_tuning(settings, **values) -> None:
    settings.SHARDING = {**settings.SHARDING, **values}


# Settings a process started by a test reads from its environment: name, unit per setting unit.
_ENVIRONMENT_OF = {
    "hot_rate": ("SHARDING_HOT_RATE", 1),
    "hot_share": ("SHARDING_HOT_SHARE_PERCENT", 100),
    "hot_min_total_rate": ("SHARDING_HOT_MIN_TOTAL_RATE", 1),
    "hot_sustain_s": ("SHARDING_HOT_SUSTAIN_MS", 1000),
    "cool_sustain_s": ("SHARDING_COOL_SUSTAIN_MS", 1000),
    "half_life_s": ("SHARDING_HALF_LIFE_MS", 1000),
    "merged_cache_s": ("SHARDING_MERGED_CACHE_MS", 1000),
    "shard_timeout_s": ("SHARDING_SHARD_TIMEOUT_MS", 1000),
    "map_max_age_s": ("SHARDING_MAP_MAX_AGE_MS", 1000),
    "prefix": ("SHARDING_REDIS_PREFIX", None),
}


def sharding_environment(settings) -> dict[str, str]:
    """The environment of a process that must use this test's sharding settings."""
    environment = {}
    for name, (variable, scale) in _ENVIRONMENT_OF.items():
        value = settings.SHARDING[name]
        environment[variable] = str(value if scale is None else round(value * scale))
    return environment


@pytest.fixture
def maintenance_worker(shards, tmp_path):
    """Starts, when called (after the test tuned its settings), a real Celery worker with its
    embedded beat: the maintenance jobs (promotion, demotion, folds) run as in production,
    off the test's own process; stopped at the end of the test."""
    with ExitStack() as stack:

        def start():
            broker_purge()  # what earlier tests left queued would delay the jobs past expiry
            return stack.enter_context(
                celery_worker(
                    tmp_path, name="sharding", beat=True, environment=sharding_environment(shards)
                )
            )

        yield start


@contextmanager
def stale_map(bucket_map) -> Iterator[None]:
    """This process keeps using ``bucket_map`` (as a process that has not yet seen a newer
    version would) until the block ends."""
    from sharding import placement

    later = time.monotonic() + 3600
    with placement._lock:
        saved = placement._cached, placement._checked_at, placement._loaded_at
        placement._cached, placement._checked_at, placement._loaded_at = bucket_map, later, later
    try:
        yield
    finally:
        with placement._lock:
            placement._cached, placement._checked_at, placement._loaded_at = saved
