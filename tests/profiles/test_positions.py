"""A session's positions survive what happens around a write: a Redis blip or restart at the
write, a lost position save, a concurrent request of the same browser session.

Real faults only: a real Redis frozen (SIGSTOP) or replaced by an empty one, a real replica
apply delay, real concurrent requests."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from consistency.metrics import position_saves_failed_total
from core.redis import redis_breaker_reset, redis_unavailable_total
from profiles.cache import profile_lease_acquire
from tests.factories import StaffFactory
from tests.profiles.conftest import ROUTED_DATABASES, replicas_caught_up, run_in_threads
from tests.profiles.factories import ProfileUserFactory, token_client
from tests.servers import disposable_redis

pytestmark = [
    pytest.mark.replication,
    pytest.mark.django_db(databases=ROUTED_DATABASES, transaction=True),
]
NO_CACHE = {"HTTP_CACHE_CONTROL": "no-cache"}


@pytest.fixture
def own_redis(settings, tmp_path) -> Iterator[Callable]:
    """The cache (and anything else on ``REDIS_URL``) on a real Redis of this test's own;
    yields ``frozen()``, a context manager during which that Redis answers nothing (SIGSTOP:
    a network blip), after which it answers again with its data."""
    with disposable_redis(tmp_path) as (url, process):
        settings.REDIS_URL = url

        @contextmanager
        def frozen() -> Iterator[None]:
            process.send_signal(signal.SIGSTOP)
            try:
                yield
            finally:
                process.send_signal(signal.SIGCONT)
                # The next requests are served by processes whose circuit breaker is closed.
                redis_breaker_reset()

        yield frozen


def _cache_sets_failed() -> float:
    return redis_unavailable_total.labels(operation="profile_set")._value.get()


def _versions_read_back(client) -> list[int]:
    cached = client.get("/api/profiles/me/")
    uncached = client.get("/api/profiles/me/", **NO_CACHE)
    return [cached.json()["version"], uncached.json()["version"]]


def test_a_redis_blip_at_a_write_does_not_lose_read_your_writes(own_redis, replica_delay):
    client = token_client(ProfileUserFactory())
    replicas_caught_up()
    client.get("/api/profiles/me/")
    assert client.get("/api/profiles/me/")["X-Cache"] == "hit"
    replica_delay(2000)
    failed_before = _cache_sets_failed()

    with own_redis():
        written = client.patch("/api/profiles/me/", {"bio": "during a blip"}, format="json")

    assert written.status_code == 200
    assert _cache_sets_failed() == failed_before + 1
    assert _versions_read_back(client) == [written.json()["version"]] * 2


def test_a_token_keeps_its_positions_when_redis_restarts_empty(
    own_redis, replica_delay, settings, tmp_path
):
    client = token_client(ProfileUserFactory())
    replicas_caught_up()
    replica_delay(2000)
    written = client.patch("/api/profiles/me/", {"bio": "before the restart"}, format="json")

    with disposable_redis(tmp_path) as (empty_url, _process):
        settings.REDIS_URL = empty_url  # Redis came back without its data (no persistence)
        versions = _versions_read_back(client)

    assert versions == [written.json()["version"]] * 2


@pytest.fixture
def staff_client():
    client = token_client(StaffFactory())
    yield client
    client.put("/api/faults/", {}, format="json")


def test_a_failed_position_save_and_cache_set_at_a_write_keep_read_your_writes(
    own_redis, replica_delay, staff_client
):
    client = token_client(ProfileUserFactory())
    replicas_caught_up()
    client.get("/api/profiles/me/")
    assert client.get("/api/profiles/me/")["X-Cache"] == "hit"
    switched = staff_client.patch(
        "/api/faults/", {"consistency_position_save_failure_rate": 1.0}, format="json"
    )
    assert switched.status_code == 200
    replica_delay(2000)
    cache_failed_before = _cache_sets_failed()
    position_failed_before = position_saves_failed_total._value.get()

    with own_redis():
        written = client.patch("/api/profiles/me/", {"bio": "position lost"}, format="json")
    staff_client.patch(
        "/api/faults/", {"consistency_position_save_failure_rate": 0.0}, format="json"
    )

    assert written.status_code == 200
    assert _cache_sets_failed() == cache_failed_before + 1
    assert position_saves_failed_total._value.get() == position_failed_before + 1
    assert _versions_read_back(client) == [written.json()["version"]] * 2


def test_a_slow_read_overlapping_a_write_of_the_same_browser_session_keeps_its_position(
    replica_delay, settings
):
    settings.PROFILES_CACHE_WAIT_S = 1.5
    user, other = ProfileUserFactory(), ProfileUserFactory()
    browser = APIClient()
    browser.force_login(user)
    replicas_caught_up()
    replica_delay(3000)
    # Another loader holds the lease on the other profile: the slow read waits for its fill.
    assert profile_lease_acquire(user_id=other.pk) is not None

    def tab(index: int):
        same_session = APIClient()
        same_session.cookies = browser.cookies
        if index == 0:
            return same_session.get(f"/api/profiles/{other.pk}/")
        time.sleep(0.3)
        return same_session.patch("/api/profiles/me/", {"bio": "from tab 2"}, format="json")

    slow_read, written = run_in_threads(2, tab)
    read_back = browser.get("/api/profiles/me/", **NO_CACHE)

    assert (slow_read.status_code, written.status_code) == (200, 200)
    assert read_back.json()["version"] == written.json()["version"]


def test_a_cached_read_of_a_token_client_costs_one_database_query():
    """The token's positions come with the query that authenticates it."""
    client = token_client(ProfileUserFactory())
    client.patch("/api/profiles/me/", {"bio": "cached"}, format="json")

    with CaptureQueriesContext(connections["default"]) as queries:
        response = client.get("/api/profiles/me/")

    assert response["X-Cache"] == "hit"
    assert len(queries) == 1
    assert "consistency_sessionposition" in queries[0]["sql"]
