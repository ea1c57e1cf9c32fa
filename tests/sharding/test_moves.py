"""Moving a bucket while writes continue: nothing lost, nothing doubled, checksums equal."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections

from sharding.control.models import BucketMove
from sharding.counters import counter_get, counter_increment
from sharding.events import event_create, events_for_key
from sharding.moves import bucket_checksum
from sharding.placement import bucket_map_current
from sharding.store import rows
from tests.sharding.conftest import ALL_DATABASES
from tests.sharding.factories import keys_in_bucket

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

BUCKET = 77


def test_a_bucket_moved_under_concurrent_writes_loses_and_doubles_nothing(shards):
    keys = keys_in_bucket(BUCKET, 4)
    source = bucket_map_current().shard_of_bucket(BUCKET)
    target = next(alias for alias in settings.SHARD_ALIASES if alias != source)
    increments: Counter = Counter()
    created: dict[str, list[str]] = {key: [] for key in keys}
    errors: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(index: int) -> None:
        number = 0
        try:
            while not stop.is_set():
                key = keys[(index + number) % len(keys)]
                counter_increment(key=key, by=index + 1)
                event = event_create(key=key, ts=datetime.now(UTC), payload={"w": index})
                with lock:
                    increments[key] += index + 1
                    created[key].append(str(event.id))
                number += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    writers = [threading.Thread(target=writer, args=(index,)) for index in range(4)]
    for thread in writers:
        thread.start()
    try:
        time.sleep(0.5)
        call_command("sharding_move_bucket", bucket=BUCKET, to=target, stdout=io.StringIO())
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in writers:
            thread.join(timeout=60)

    move = BucketMove.objects.get(bucket=BUCKET)
    assert errors == []
    assert move.state == "done"
    assert move.source_checksum == move.target_checksum != ""
    assert bucket_map_current(force=True).shard_of_bucket(BUCKET) == target
    for key in keys:
        assert counter_get(key=key, use_cache=False).value == increments[key]
        found = [str(item.id) for item in events_for_key(key=key, limit=500).items]
        assert sorted(found) == sorted(created[key])
    assert sum(len(ids) for ids in created.values()) > 20
    assert rows(
        source,
        "SELECT count(*) FROM sharding_event WHERE bucket = %s AND slot = 0",
        [BUCKET],
    ) == [(0,)]
    target_counts, _root = bucket_checksum(target, BUCKET)
    assert target_counts["sharding_event"] == sum(len(ids) for ids in created.values())


def test_reads_keep_working_through_a_move_and_never_go_back(shards):
    key = keys_in_bucket(BUCKET, 1)[0]
    target = next(
        alias
        for alias in settings.SHARD_ALIASES
        if alias != bucket_map_current().shard_of_bucket(BUCKET)
    )
    seen: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def write_then_read() -> None:
        try:
            while not stop.is_set():
                counter_increment(key=key, by=1)
                event_create(key=key, ts=datetime.now(UTC), payload={})
                seen.append(
                    (
                        counter_get(key=key, use_cache=False).value,
                        len(events_for_key(key=key, limit=1000).items),
                    )
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def reads_reach(count: int) -> None:
        deadline = time.monotonic() + 30
        while len(seen) < count and not errors and time.monotonic() < deadline:
            time.sleep(0.05)

    client = threading.Thread(target=write_then_read)
    client.start()
    try:
        reads_reach(5)
        call_command("sharding_move_bucket", bucket=BUCKET, to=target, stdout=io.StringIO())
        reads_reach(len(seen) + 6)
    finally:
        stop.set()
        client.join(timeout=60)

    assert errors == []
    assert len(seen) > 10
    # Each read saw the client's own write: the n-th read counts n increments and n events.
    assert seen == [(n, n) for n in range(1, len(seen) + 1)]


def test_a_bucket_moved_back_to_its_first_shard_takes_writes_there_again(shards):
    key = keys_in_bucket(BUCKET, 1)[0]
    first = bucket_map_current().shard_of_bucket(BUCKET)
    other = next(alias for alias in settings.SHARD_ALIASES if alias != first)
    counter_increment(key=key, by=3)

    for target in (other, first):
        call_command("sharding_move_bucket", key=key, to=target, stdout=io.StringIO())
    counter_increment(key=key, by=4)

    value = counter_get(key=key, use_cache=False)
    assert (value.value, value.home) == (7, first)
    assert rows(other, "SELECT count(*) FROM sharding_counterslot WHERE key = %s", [key]) == [(0,)]
