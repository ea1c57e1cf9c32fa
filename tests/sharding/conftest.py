"""Real shard databases and real Redis; each test gets its own Redis key prefix."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.db import connections

from sharding.hotkeys import hot_cache_clear, tracking_reset
from sharding.placement import bucket_map_cache_clear

ALL_DATABASES = ["default", *settings.SHARD_ALIASES]


@pytest.fixture
def sharding_settings(settings):
    """Per-test prefix and thresholds a test can lower (``sharding_settings.SHARDING[...]``)."""
    settings.SHARDING = {
        **settings.SHARDING,
        "prefix": f"sharding-{settings.CACHES['default']['KEY_PREFIX']}-{uuid.uuid4().hex[:8]}",
        "map_check_s": 0.2,
    }
    bucket_map_cache_clear()
    hot_cache_clear()
    yield settings
    tracking_reset()
    bucket_map_cache_clear()
    hot_cache_clear()


@pytest.fixture
def shards(sharding_settings, transactional_db, django_db_blocker):
    """Committed data on default and every shard (threads and processes must see it)."""
    yield sharding_settings
    for alias in ALL_DATABASES:
        connections[alias].close()


def sharding_tuning(settings, **values) -> None:
    settings.SHARDING = {**settings.SHARDING, **values}
