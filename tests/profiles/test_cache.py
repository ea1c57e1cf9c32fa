"""The write-through cache on the real Redis: version fence, single-flight misses, outages."""

import threading
import uuid

import pytest
import redis
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from consistency.context import consistency_context
from core.redis import guarded_redis_call, is_unavailable, redis_breaker_reset, redis_client
from profiles.cache import profile_cache_get, profile_cache_key, profile_cache_set
from profiles.domain import profile_data
from profiles.metrics import cache_fence_rejections_total, cache_loads_total
from profiles.selectors import profile_read
from profiles.services import profile_update
from tests.profiles.conftest import ROUTED_DATABASES, replicas_caught_up, run_in_threads
from tests.profiles.factories import ProfileUserFactory, profile_of, token_client
from tests.servers import disposable_redis

pytestmark = pytest.mark.django_db(databases=ROUTED_DATABASES, transaction=True)


def _counter(metric, **labels) -> float:
    return (metric.labels(**labels) if labels else metric)._value.get()


def test_a_write_puts_the_new_version_in_the_cache_and_the_next_read_hits():
    user = ProfileUserFactory()
    client = token_client(user)
    client.patch("/api/profiles/me/", {"display_name": "Cached"}, format="json")

    response = client.get("/api/profiles/me/")

    assert response["X-Cache"] == "hit"
    assert response["X-Served-By"] == "cache"
    assert response.json()["display_name"] == "Cached"
    assert profile_cache_get(user_id=user.pk).version == 2


def test_a_miss_is_loaded_from_the_database_and_fills_the_cache():
    user = ProfileUserFactory()
    replicas_caught_up()
    client = token_client(user)

    first = client.get("/api/profiles/me/")
    second = client.get("/api/profiles/me/")

    assert (first["X-Cache"], second["X-Cache"]) == ("miss", "hit")
    assert profile_cache_get(user_id=user.pk).version == 1


def test_strong_and_no_cache_reads_bypass_the_cache():
    client = token_client(ProfileUserFactory())

    strong = client.get("/api/profiles/me/", HTTP_X_CONSISTENCY="strong")
    no_cache = client.get("/api/profiles/me/", HTTP_CACHE_CONTROL="no-cache")

    assert (strong["X-Cache"], no_cache["X-Cache"]) == ("bypass", "bypass")


def test_a_cached_version_older_than_the_sessions_own_write_is_not_served():
    user = ProfileUserFactory()
    client = token_client(user)
    old = profile_data(profile_of(user))
    client.patch("/api/profiles/me/", {"bio": "new"}, format="json")
    # The key expires (or is evicted) and a slow reader refills it with the old version.
    redis_client().delete(profile_cache_key(user.pk))
    profile_cache_set(data=old, source="fill")

    response = client.get("/api/profiles/me/")

    assert response["X-Cache"] == "miss"
    assert response.json()["bio"] == "new"
    assert profile_cache_get(user_id=user.pk).version == 2


def test_an_old_reader_filling_after_a_newer_write_leaves_the_newer_value():
    """Reader loads v1, writer commits v2 and writes it through, reader fills v1: refused."""
    user = ProfileUserFactory()
    loaded, written = threading.Barrier(2), threading.Barrier(2)
    rejected_before = _counter(cache_fence_rejections_total, source="fill")

    def reader() -> bool:
        profile = profile_of(user)
        loaded.wait(timeout=10)
        written.wait(timeout=10)
        return profile_cache_set(data=profile_data(profile), source="fill")

    def writer() -> None:
        loaded.wait(timeout=10)
        profile_update(user_id=user.pk, changes={"bio": "newer"}, actor_id=user.pk)
        written.wait(timeout=10)

    stored, _ = run_in_threads(2, lambda index: (reader, writer)[index]())

    cached = profile_cache_get(user_id=user.pk)
    assert stored is False
    assert (cached.version, cached.data["bio"]) == (2, "newer")
    assert _counter(cache_fence_rejections_total, source="fill") == rejected_before + 1


def test_a_slow_writer_of_an_older_version_does_not_replace_a_newer_one():
    user = ProfileUserFactory()
    first = profile_data(profile_update(user_id=user.pk, changes={"bio": "one"}, actor_id=user.pk))
    profile_update(user_id=user.pk, changes={"bio": "two"}, actor_id=user.pk)

    stored = profile_cache_set(data=first, source="write")

    assert stored is False
    assert profile_cache_get(user_id=user.pk).data["bio"] == "two"


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(versions=st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=12))
def test_whatever_the_order_of_sets_the_cache_ends_at_the_highest_version(versions):
    user_id = uuid.uuid4().int % 10**12 + 10**12
    for version in versions:
        profile_cache_set(data={"user_id": user_id, "version": version}, source="fill")

    assert profile_cache_get(user_id=user_id).version == max(versions)
    redis_client().delete(profile_cache_key(user_id))


def test_many_concurrent_misses_cause_one_database_load():
    user = ProfileUserFactory()
    replicas_caught_up()
    loads_before = _counter(cache_loads_total)
    start = threading.Barrier(12)

    def read(_index: int) -> tuple[int, str]:
        with consistency_context("session"):
            start.wait(timeout=10)
            result = profile_read(user_id=user.pk)
            return result.data["version"], result.cache

    results = run_in_threads(12, read)

    assert {version for version, _ in results} == {1}
    assert _counter(cache_loads_total) - loads_before == 1
    assert [cache for _, cache in results].count("miss") == 1


def _open_this_process_breaker() -> None:
    """A Redis call that fails, as during an outage: this process now skips Redis for a while
    (``REDIS_BREAKER_OPEN_S``) although Redis answers again."""

    def fail(_client):
        raise redis.ConnectionError("outage")

    assert is_unavailable(guarded_redis_call("test_outage", fail))


def test_a_write_made_while_this_process_skips_redis_still_replaces_the_cached_version():
    client = token_client(ProfileUserFactory())
    client.patch("/api/profiles/me/", {"bio": "first"}, format="json")
    assert client.get("/api/profiles/me/")["X-Cache"] == "hit"
    _open_this_process_breaker()

    written = client.patch("/api/profiles/me/", {"bio": "second"}, format="json")
    redis_breaker_reset()  # the next read is served by a process whose breaker is closed
    read = client.get("/api/profiles/me/")

    assert read.json()["version"] == written.json()["version"]
    assert read.json()["bio"] == "second"


@pytest.fixture
def redis_that_stops(settings, tmp_path):
    with disposable_redis(tmp_path) as (url, process):
        settings.REDIS_URL = url
        yield process


def test_with_redis_stopped_reads_and_writes_still_succeed_from_the_database(redis_that_stops):
    user = ProfileUserFactory()
    client = token_client(user)
    client.patch("/api/profiles/me/", {"bio": "before"}, format="json")
    redis_that_stops.terminate()
    redis_that_stops.wait(timeout=10)

    written = client.patch("/api/profiles/me/", {"bio": "during"}, format="json")
    read = client.get("/api/profiles/me/")

    assert written.status_code == 200
    assert read.status_code == 200
    assert read["X-Cache"] == "bypass"
    # The session's positions are not in Redis: routing still knows which database has the
    # write (the primary, or a replica that has replayed it), never the cache.
    assert read["X-Served-By"] in {"primary", *settings.REPLICA_ALIASES}
    assert read.json()["bio"] == "during"
    assert read.json()["version"] == written.json()["version"]


def test_with_redis_stopped_the_outage_is_counted(redis_that_stops):
    from core.redis import redis_unavailable_total

    client = token_client(ProfileUserFactory())
    redis_that_stops.terminate()
    redis_that_stops.wait(timeout=10)
    before = _counter(redis_unavailable_total, operation="profile_get")

    client.get("/api/profiles/me/")

    assert _counter(redis_unavailable_total, operation="profile_get") == before + 1
