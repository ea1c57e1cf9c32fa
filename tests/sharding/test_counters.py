"""Sharded counters: exact under concurrency, across promotion to slots and folding back."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from django.conf import settings
from django.db import connections
from hypothesis import HealthCheck, example, given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from core.faults import faults_set
from sharding.control.models import HotKeyEpisode
from sharding.counters import counter_get, counter_increment, counter_merge
from sharding.folding import CRASH_AFTER_TAKE, folds_redrive, key_fold, slot_take
from sharding.hotkeys import Observation
from sharding.keylock import key_lease
from sharding.spreading import hot_states, key_spread
from sharding.store import rows
from tests.sharding.conftest import ALL_DATABASES, sharding_tuning
from tests.workers import ROOT, worker_environment

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

INCREMENT_SCRIPT = """
import json, random, sys, time, django
django.setup()
from sharding.counters import counter_increment
key, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
total = 0
for _ in range(count):
    by = rng.choice([1, 1, 1, 2, 5, -1, -3])
    counter_increment(key=key, by=by)
    total += by
print(json.dumps({"total": total}))
"""


def _observation() -> Observation:
    return Observation(rate=1000.0, share=0.5, over_since=time.time(), hot=False)


def _spread_shards(key: str) -> list[str]:
    return [slot.shard for slot in counter_merge(key=key).slots]


def test_increments_from_threads_and_processes_across_hot_and_cool_transitions_sum_exactly(
    shards,
):
    sharding_tuning(
        shards, hot_rate=100.0, hot_min_total_rate=10.0, hot_sustain_s=0.3, cool_sustain_s=0.3
    )
    key = "celebrity:likes"
    env = worker_environment(SHARDING_REDIS_PREFIX=settings.SHARDING["prefix"])
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", INCREMENT_SCRIPT, key, "400", str(seed)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    totals: list[int] = []
    stop = threading.Event()

    def writer(seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311
        total = 0
        try:
            for _ in range(300):
                by = rng.choice([1, 2, 3, -1, -2])
                counter_increment(key=key, by=by)
                total += by
        finally:
            totals.append(total)
            connections.close_all()

    def transitions() -> None:
        try:
            while not stop.is_set():
                key_spread(key=key, observation=_observation())
                time.sleep(0.15)
                key_fold(key=key, under_since=time.time())
                time.sleep(0.1)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    flipper = threading.Thread(target=transitions)
    try:
        flipper.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        outputs = [process.communicate(timeout=120)[0] for process in processes]
    finally:
        stop.set()
        flipper.join(timeout=60)
        for process in processes:
            if process.poll() is None:
                process.kill()
    totals += [json.loads(output.strip().splitlines()[-1])["total"] for output in outputs]

    expected = sum(totals)
    assert len(totals) == 6
    assert counter_get(key=key, use_cache=False).value == expected
    assert HotKeyEpisode.objects.filter(key=key, cooled_at__isnull=False).count() >= 2
    key_fold(key=key, under_since=time.time())
    folded = counter_merge(key=key)
    assert folded.value == expected
    assert [slot.slot for slot in folded.slots] == [0]


def test_a_hot_keys_slots_sit_on_different_shards(shards):
    key = "celebrity:followers"
    counter_increment(key=key, by=1)

    key_spread(key=key, observation=_observation())

    spread = _spread_shards(key)
    assert len(spread) == shards.SHARDING["slots"]
    assert len(set(spread)) == len(spread)
    assert set(spread) <= set(settings.SHARD_ALIASES)


def test_a_fold_interrupted_after_its_first_step_is_counted_once_then_redriven(shards):
    key = "celebrity:shares"
    key_spread(key=key, observation=_observation())
    spread = hot_states()[key].spread
    rows(
        spread[0],
        "UPDATE sharding_counterslot SET pos = pos + 40, neg = neg + 5 WHERE key = %s AND slot = 1",
        [key],
    )
    with key_lease(key) as lease:
        taken = slot_take(key=key, slot=1, alias=spread[0], fence=lease.fence)

    during = counter_merge(key=key)
    redriven = folds_redrive(min_age_s=0)
    after = counter_merge(key=key)

    assert taken is not None
    assert during.value == 35
    assert during.in_flight == 35
    assert redriven == 1
    assert after.value == 35
    assert after.in_flight == 0
    assert folds_redrive(min_age_s=0) == 0
    assert counter_merge(key=key).value == 35


def test_a_writer_with_a_stale_hot_view_falls_back_to_slot_zero_after_the_fold(shards):
    key = "celebrity:views"
    key_spread(key=key, observation=_observation())
    from sharding import spreading

    stale = dict(spreading.hot_states())
    key_fold(key=key, under_since=time.time())
    spreading._hot_cache = (time.monotonic() + 60, stale)  # this process still sees it hot

    for _ in range(40):
        counter_increment(key=key, by=1)

    merged = counter_merge(key=key)
    assert merged.value == 40
    assert [(slot.slot, slot.pos) for slot in merged.slots] == [(0, 40)]


def test_a_hot_keys_merged_value_is_cached_briefly(shards):
    sharding_tuning(shards, merged_cache_s=30.0)
    key = "celebrity:cached"
    key_spread(key=key, observation=_observation())
    counter_increment(key=key, by=2)
    first = counter_get(key=key)
    counter_increment(key=key, by=3)

    cached = counter_get(key=key)
    fresh = counter_get(key=key, use_cache=False)

    assert (first.value, first.cached) == (2, False)
    assert (cached.value, cached.cached, cached.hot) == (2, True, True)
    assert (fresh.value, fresh.cached) == (5, False)


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(-50, 50).filter(bool)),
        st.tuples(st.just("spread"), st.just(0)),
        st.tuples(st.just("fold"), st.just(0)),
        st.tuples(st.just("interrupt"), st.integers(1, 3)),
        st.tuples(st.just("redrive"), st.just(0)),
    ),
    min_size=1,
    max_size=12,
)


@settings_(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=OPERATIONS)
@example(
    operations=[
        ("spread", 0),
        *[("add", by) for by in (5, 7, 11, 13, -3, 17, 19, 23)],
        ("interrupt", 1),
        ("interrupt", 2),
        ("interrupt", 3),
        ("fold", 0),
        ("add", 1),
    ]
)
def test_the_merged_value_equals_the_sum_after_any_sequence_of_spreads_folds_and_crashes(
    shards, operations
):
    key = f"prop:{uuid.uuid4().hex[:10]}"
    expected = 0
    for operation, argument in operations:
        if operation == "add":
            counter_increment(key=key, by=argument)
            expected += argument
        elif operation == "spread":
            key_spread(key=key, observation=_observation())
        elif operation == "fold":
            key_fold(key=key, under_since=time.time())
        elif operation == "interrupt" and key in hot_states():
            # Step 1 of a fold of one slot, as if its process died right after it.
            with key_lease(key) as lease:
                spread = hot_states()[key].spread
                slot_take(key=key, slot=argument, alias=spread[argument - 1], fence=lease.fence)
        elif operation == "redrive":
            folds_redrive(min_age_s=0)
        assert counter_merge(key=key).value == expected
    key_fold(key=key, under_since=time.time())
    folds_redrive(min_age_s=0)
    final = counter_merge(key=key)
    assert (final.value, final.in_flight) == (expected, 0)


FOLD_SCRIPT = """
import sys, time, django
django.setup()
from sharding.folding import key_fold
key_fold(key=sys.argv[1], under_since=time.time())
"""


def test_a_process_killed_between_the_steps_of_a_fold_loses_and_doubles_nothing(shards):
    key = "celebrity:crash"
    key_spread(key=key, observation=_observation())
    for _ in range(30):
        counter_increment(key=key, by=1)
    rows(
        hot_states()[key].spread[0],
        "UPDATE sharding_counterslot SET pos = pos + 10 WHERE key = %s AND slot = 1",
        [key],
    )
    faults_set(values={"crash_points": [CRASH_AFTER_TAKE]}, actor="test")
    try:
        folder = subprocess.run(
            [sys.executable, "-c", FOLD_SCRIPT, key],
            cwd=ROOT,
            env=worker_environment(SHARDING_REDIS_PREFIX=settings.SHARDING["prefix"]),
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        faults_set(values={"crash_points": []}, actor="test")

    during = counter_merge(key=key)
    redriven = folds_redrive(min_age_s=0)
    after = counter_merge(key=key)

    assert folder.returncode == -signal.SIGKILL
    assert (during.value, during.in_flight > 0) == (40, True)
    assert redriven == 1
    assert (after.value, after.in_flight) == (40, 0)
