"""Two bucket moves at once: one move per bucket, and a map switch that cannot undo another's.

The deterministic tests hold the bucket map's table lock from a side connection, so that both
moves reach their map switch before either goes on; the timed ones run the moves beside
writers, as an operator (or a rebalance) would.
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections

from core.db import alias_conninfo
from sharding.control.models import BucketMove
from sharding.counters import counter_get, counter_increment
from sharding.errors import BucketMoveRefused
from sharding.events import event_create, events_for_key
from sharding.moves import bucket_move
from sharding.placement import bucket_map_current
from tests.sharding.conftest import ALL_DATABASES, stale_map
from tests.sharding.factories import keys_in_bucket

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

BUCKET, OTHER_BUCKET = 77, 78
MAP_TABLE = "sharding_control_bucketmap"


def _others(source: str) -> list[str]:
    return [alias for alias in settings.SHARD_ALIASES if alias != source]


def _waiting_on_locks(probe: psycopg.Connection) -> int:
    """Backends of this test database that wait for a lock (``probe`` is in autocommit: in a
    transaction, pg_stat_activity would answer from its first snapshot)."""
    return probe.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    ).fetchone()[0]


class MoveThread(threading.Thread):
    """``bucket_move`` in a thread; keeps its record or the exception it raised."""

    def __init__(self, bucket: int, target: str) -> None:
        super().__init__()
        self.bucket, self.target = bucket, target
        self.move: BucketMove | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.move = bucket_move(bucket=self.bucket, target=self.target)
        except BaseException as exc:
            self.error = exc
        finally:
            connections.close_all()


def _until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@contextmanager
def map_switch_held() -> Iterator[None]:
    """The bucket map's table locked against new versions (reads still pass) until the block
    ends: a move that reaches its map switch waits there."""
    with psycopg.connect(alias_conninfo("default")) as side:
        side.execute(f"LOCK TABLE {MAP_TABLE} IN EXCLUSIVE MODE")
        yield
        side.rollback()


def _moves_meeting_at_the_switch(*moves: tuple[int, str]) -> list[MoveThread]:
    """Start the moves one after the other, each once the previous one waits at the map switch
    (or has ended), then let them all go on; returns them finished."""
    threads = [MoveThread(bucket, target) for bucket, target in moves]
    waiting = 0
    with map_switch_held(), psycopg.connect(alias_conninfo("default"), autocommit=True) as probe:
        for thread in threads:
            thread.start()
            waiting += 1
            _until(lambda: _waiting_on_locks(probe) >= waiting or not thread.is_alive())  # noqa: B023
            if not thread.is_alive():
                waiting -= 1
    for thread in threads:
        thread.join(timeout=60)
    return threads


def test_two_moves_of_one_bucket_leave_it_on_one_shard_with_its_old_home_fenced(shards):
    key = keys_in_bucket(BUCKET, 1)[0]
    before = bucket_map_current()
    source = before.shard_of_bucket(BUCKET)
    first, second = _others(source)[:2]
    counter_increment(key=key, by=5)

    threads = _moves_meeting_at_the_switch((BUCKET, first), (BUCKET, second))

    done = [thread for thread in threads if thread.move is not None]
    # A process still on the map before the moves writes to the old home: the fence there must
    # send the write on to the new one.
    with stale_map(before):
        counter_increment(key=key, by=1)
    assert counter_get(key=key, use_cache=False).value == 6
    assert len(done) == 1
    assert bucket_map_current(force=True).shard_of_bucket(BUCKET) == done[0].target
    assert all(isinstance(t.error, BucketMoveRefused) for t in threads if t not in done)
    # Refused at its start (the bucket's move lock), not after copying and fencing.
    assert list(BucketMove.objects.values_list("state", flat=True)) == ["done"]


def test_two_moves_of_different_buckets_both_switch_and_both_stay_readable_and_writable(shards):
    keys = {bucket: keys_in_bucket(bucket, 1)[0] for bucket in (BUCKET, OTHER_BUCKET)}
    before = bucket_map_current()
    targets = {bucket: _others(before.shard_of_bucket(bucket))[0] for bucket in keys}
    for bucket, key in keys.items():
        counter_increment(key=key, by=bucket)

    threads = _moves_meeting_at_the_switch(*targets.items())

    assert [thread.error for thread in threads] == [None, None]
    after = bucket_map_current(force=True)
    assert {bucket: after.shard_of_bucket(bucket) for bucket in keys} == targets
    for bucket, key in keys.items():
        counter_increment(key=key, by=1)
        assert counter_get(key=key, use_cache=False).value == bucket + 1


class Writers:
    """Threads that increment counters and create events on ``keys`` until stopped, keeping
    what was acknowledged."""

    def __init__(self, keys: list[str], threads: int = 4) -> None:
        self.keys = keys
        self.increments: Counter = Counter()
        self.created: dict[str, list[str]] = {key: [] for key in keys}
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def _run(self, index: int) -> None:
        number = 0
        try:
            while not self._stop.is_set():
                key = self.keys[(index + number) % len(self.keys)]
                counter_increment(key=key, by=index + 1)
                self.acknowledge(key, index + 1)
                event = event_create(key=key, ts=datetime.now(UTC), payload={"w": index})
                with self._lock:
                    self.created[key].append(str(event.id))
                number += 1
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            connections.close_all()

    def acknowledge(self, key: str, by: int) -> None:
        with self._lock:
            self.increments[key] += by

    def __enter__(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def _assert_nothing_lost(writers: Writers) -> None:
    assert writers.errors == []
    assert sum(writers.increments.values()) > 0
    for key in writers.keys:
        assert counter_get(key=key, use_cache=False).value == writers.increments[key]
        listed = [str(item.id) for item in events_for_key(key=key, limit=500).items]
        assert sorted(listed) == sorted(writers.created[key])


def _command_move(bucket: int, target: str, outcomes: list) -> None:
    try:
        call_command("sharding_move_bucket", bucket=bucket, to=target, stdout=io.StringIO())
        outcomes.append((target, "done"))
    except BaseException as exc:
        outcomes.append((target, exc))
    finally:
        connections.close_all()


def test_two_moves_of_one_bucket_50_ms_apart_under_writes_lose_nothing(shards):
    keys = keys_in_bucket(BUCKET, 3)
    source = bucket_map_current().shard_of_bucket(BUCKET)
    first, second = _others(source)[:2]
    outcomes: list = []

    with Writers(keys) as writers:
        time.sleep(0.3)
        movers = [
            threading.Thread(target=_command_move, args=(BUCKET, target, outcomes))
            for target in (first, second)
        ]
        movers[0].start()
        time.sleep(0.05)
        movers[1].start()
        for mover in movers:
            mover.join(timeout=60)
        time.sleep(0.3)

    done = [target for target, outcome in outcomes if outcome == "done"]
    assert len(done) >= 1
    assert bucket_map_current(force=True).shard_of_bucket(BUCKET) == done[-1]
    _assert_nothing_lost(writers)


def test_two_moves_of_different_buckets_at_once_under_writes_lose_nothing(shards):
    keys = keys_in_bucket(BUCKET, 2) + keys_in_bucket(OTHER_BUCKET, 2)
    before = bucket_map_current()
    targets = {bucket: _others(before.shard_of_bucket(bucket))[-1] for bucket in (77, 78)}
    outcomes: list = []

    with Writers(keys) as writers:
        time.sleep(0.3)
        movers = [
            threading.Thread(target=_command_move, args=(bucket, target, outcomes))
            for bucket, target in targets.items()
        ]
        for mover in movers:
            mover.start()
        for mover in movers:
            mover.join(timeout=60)
        for key in keys:  # every key still takes writes after both moves
            counter_increment(key=key, by=1)
            writers.acknowledge(key, 1)
        time.sleep(0.3)

    assert [outcome for _target, outcome in outcomes] == ["done", "done"]
    after = bucket_map_current(force=True)
    assert {bucket: after.shard_of_bucket(bucket) for bucket in targets} == targets
    _assert_nothing_lost(writers)
