"""A new bucket map reaches every process within a stated bound, even when Redis cannot carry
its version number: a real gunicorn process keeps serving reads of a moved bucket right."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests
from django.conf import settings
from rest_framework.authtoken.models import Token

from sharding.control.models import BucketMove
from sharding.counters import counter_increment
from sharding.errors import BucketMoveIncomplete
from sharding.events import event_create
from sharding.moves import bucket_move
from sharding.placement import bucket_map_current
from sharding.store import rows
from tests.factories import UserFactory
from tests.lab.browser import WebServer
from tests.servers import free_port
from tests.sharding.conftest import ALL_DATABASES, sharding_tuning
from tests.sharding.factories import keys_in_bucket

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

BUCKET = 77
MAP_MAX_AGE_MS = 1000


@pytest.fixture
def web(shards, tmp_path):
    """gunicorn, one worker process (so the map it caches is the one every read uses)."""
    server = WebServer(
        tmp_path,
        workers=1,
        threads=2,
        SHARDING_REDIS_PREFIX=settings.SHARDING["prefix"],
        SHARDING_MAP_MAX_AGE_MS=str(MAP_MAX_AGE_MS),
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _reader(web: WebServer):
    token = Token.objects.create(user=UserFactory()).key
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"

    def read(key: str) -> tuple[int, set[str], set[str]]:
        """The counter, the key's events and the range's events, as that process serves them."""
        value = session.get(f"{web.base_url}/api/sharding/counters/{key}?fresh=true", timeout=10)
        by_key = session.get(f"{web.base_url}/api/sharding/events/?key={key}", timeout=10)
        by_range = session.get(
            f"{web.base_url}/api/sharding/events/",
            params={"since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"},
            timeout=10,
        )
        for response in (value, by_key, by_range):
            response.raise_for_status()
        return (
            value.json()["value"],
            {item["id"] for item in by_key.json()["results"]},
            {item["id"] for item in by_range.json()["results"]},
        )

    return read


def test_reads_through_a_process_on_the_old_map_stay_right_when_the_version_cannot_be_published(
    web, shards
):
    sharding_tuning(shards, map_max_age_s=MAP_MAX_AGE_MS / 1000)  # as the web process
    key = keys_in_bucket(BUCKET, 1)[0]
    source = bucket_map_current().shard_of_bucket(BUCKET)
    target = next(alias for alias in settings.SHARD_ALIASES if alias != source)
    counter_increment(key=key, by=5)
    events = {
        str(event_create(key=key, ts=datetime(2026, 1, 1, 0, 0, n, tzinfo=UTC), payload={}).id)
        for n in range(3)
    }
    read = _reader(web)
    assert read(key) == (5, events, events)  # that process now holds the map

    redis_url = settings.REDIS_URL
    shards.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: every call fails
    try:
        with pytest.raises(BucketMoveIncomplete):
            bucket_move(bucket=BUCKET, target=target)
    finally:
        shards.REDIS_URL = redis_url
    counter_increment(key=key, by=2)
    events.add(str(event_create(key=key, ts=datetime(2026, 1, 1, 0, 1, tzinfo=UTC), payload={}).id))

    seen = []
    deadline = time.monotonic() + MAP_MAX_AGE_MS / 1000 + 1.5
    while time.monotonic() < deadline:
        seen.append(read(key))
        time.sleep(0.1)

    move = BucketMove.objects.get(bucket=BUCKET)
    assert all(value >= 5 for value, _by_key, _by_range in seen), seen
    assert seen[-1] == (7, events, events)
    assert bucket_map_current(force=True).shard_of_bucket(BUCKET) == target
    # The version never reached Redis: the move stopped before deleting the source's rows.
    assert move.state == "failed"
    assert rows(source, "SELECT count(*) FROM sharding_counterslot WHERE key = %s", [key]) == [(1,)]
