"""Profiles tests run on the real primary, the real streaming replica and the real Redis.

Rows must be committed to reach the replica, so the tests that read through routing use
``transaction=True``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.db import connections

from consistency.pool import replica_pool
from consistency.replicas import primary_wal_lsn, set_replica_apply_delay, wait_for_replay
from core.redis import redis_breaker_reset, redis_client, redis_key

ROUTED_DATABASES = ["default", *settings.REPLICA_ALIASES]


def _delete_test_keys() -> None:
    client = redis_client()
    for namespace in ("profiles", "consistency"):
        keys = list(client.scan_iter(match=redis_key(namespace, "*"), count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture(autouse=True)
def _fresh_consistency_state() -> Iterator[None]:
    """Each test starts with no cached replica positions, a closed Redis breaker and none of
    this run's cache keys (database ids restart with every test database)."""
    replica_pool.reset()
    redis_breaker_reset()
    _delete_test_keys()
    yield
    replica_pool.reset()
    redis_breaker_reset()


def replicas_caught_up(timeout_s: float = 15) -> None:
    target = primary_wal_lsn()
    for alias in settings.REPLICA_ALIASES:
        assert wait_for_replay(alias, target, timeout_s=timeout_s), f"{alias} did not catch up"
    replica_pool.reset()


@pytest.fixture
def replica_delay() -> Iterator[Callable[[int], None]]:
    """Sets the SHARED replica's apply delay (keep it short); always back to 0 afterwards."""
    applied: list[int] = []

    def apply(delay_ms: int) -> None:
        assert delay_ms <= 3000, "the replica is shared: keep delays short"
        for alias in settings.REPLICA_ALIASES:
            set_replica_apply_delay(alias, delay_ms)
        applied.append(delay_ms)

    try:
        yield apply
    finally:
        if applied:
            for alias in settings.REPLICA_ALIASES:
                set_replica_apply_delay(alias, 0)
            replicas_caught_up(timeout_s=30)


def run_in_threads(count: int, target: Callable[[int], object]) -> list[object]:
    """Run ``target(i)`` in ``count`` threads on their own connections, which see the same
    test databases (and the same real standby) as the test's thread."""
    standby = {alias: connections[alias].settings_dict for alias in settings.REPLICA_ALIASES}
    results: list[object] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        for alias, settings_dict in standby.items():
            connections[alias].settings_dict = settings_dict
        try:
            results[index] = target(index)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results
