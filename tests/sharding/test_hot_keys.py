"""Hot-key detection and adaptive spreading under a Zipf-like workload; promotion and folding
run in a real Celery worker with its beat, as in production, never in the writing process."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.db import connections

from core.faults import faults_set
from loadtest.workload import workload_run
from loadtest.zipf import ZipfKeys
from sharding.conf import SPREADING_OFF_SWITCH
from sharding.control.models import HotKeyEpisode
from sharding.counters import counter_get, counter_increment, counter_merge
from sharding.hotkeys import Observation, hot_key_record
from sharding.selectors import sharding_stats
from sharding.spreading import hot_cache_clear, hot_states, key_spread, slot_pick
from tests.sharding.conftest import ALL_DATABASES, sharding_tuning

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

CELEBRITY = "celebrity"


def _zipf() -> ZipfKeys:
    return ZipfKeys(
        keys=2000, exponent=1.0, celebrity=CELEBRITY, celebrity_share=0.3, prefix="user:"
    )


def _tune_for_tests(settings) -> None:
    sharding_tuning(
        settings,
        hot_rate=10_000.0,  # detection by share of traffic here, not by absolute rate
        hot_share=0.2,
        hot_min_total_rate=20.0,
        hot_sustain_s=1.0,
        cool_sustain_s=1.0,
        half_life_s=1.0,
    )


def _spreading_switched_off(off: bool) -> None:
    faults_set(values={SPREADING_OFF_SWITCH: off}, actor="test")


@pytest.mark.worker
def test_a_celebrity_key_at_30_percent_becomes_hot_in_seconds_and_imbalance_falls(
    shards, maintenance_worker
):
    _tune_for_tests(shards)
    _spreading_switched_off(True)
    maintenance_worker()
    try:
        naive = workload_run(keys=_zipf(), threads=4, seconds=3.0, seed=1)
    finally:
        _spreading_switched_off(False)
    started = time.monotonic()
    detected_after = None
    probe_stop = threading.Event()

    def probe() -> None:
        nonlocal detected_after
        while not probe_stop.is_set() and detected_after is None:
            if CELEBRITY in hot_states():
                detected_after = time.monotonic() - started
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        spread = workload_run(keys=_zipf(), threads=4, seconds=9.0, seed=2, record_after=5.0)
    finally:
        probe_stop.set()
        prober.join()

    slots = counter_merge(key=CELEBRITY).slots
    episode = HotKeyEpisode.objects.get(key=CELEBRITY)
    assert naive.errors == spread.errors == 0
    assert detected_after is not None
    assert detected_after < 5.0
    assert episode.detect_seconds < 4.0
    assert len({slot.shard for slot in slots}) == len(slots) == 4
    assert naive.imbalance > 1.6
    assert spread.imbalance < naive.imbalance - 0.35
    assert spread.imbalance < 1.35
    stats = sharding_stats()
    assert [hot["key"] for hot in stats["hot_keys"]] == [CELEBRITY]
    assert len(stats["hot_keys"][0]["slots"]) == 4


@pytest.mark.worker
def test_a_hot_key_that_cools_is_folded_back_into_one_slot_exactly(shards, maintenance_worker):
    _tune_for_tests(shards)
    maintenance_worker()
    hot_keys = ZipfKeys(
        keys=200, exponent=1.0, celebrity=CELEBRITY, celebrity_share=0.5, prefix="u:"
    )
    hot_phase = workload_run(keys=hot_keys, threads=3, seconds=3.5, seed=3)
    assert CELEBRITY in hot_states()
    before = counter_get(key=CELEBRITY, use_cache=False).value

    cool_keys = ZipfKeys(
        keys=200, exponent=1.0, celebrity=CELEBRITY, celebrity_share=0.0, prefix="u:"
    )
    cooled_after = None
    started = time.monotonic()
    while time.monotonic() - started < 10 and cooled_after is None:
        workload_run(keys=cool_keys, threads=2, seconds=0.5, seed=4)
        if CELEBRITY not in hot_states():
            cooled_after = time.monotonic() - started

    # The worker leaves the hot set first, then folds: wait for the fold to end (bounded).
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline and HotKeyEpisode.objects.get(key=CELEBRITY).cooled_at is None
    ):
        time.sleep(0.1)
    merged = counter_merge(key=CELEBRITY)
    episode = HotKeyEpisode.objects.get(key=CELEBRITY)
    assert hot_phase.errors == 0
    assert cooled_after is not None
    assert merged.value == before
    assert [slot.slot for slot in merged.slots] == [0]
    assert episode.cool_seconds is not None
    assert episode.cool_seconds < 4.0
    counter_increment(key=CELEBRITY, by=1)
    assert counter_get(key=CELEBRITY, use_cache=False).value == before + 1
    connections.close_all()


def test_a_hot_keys_writes_go_mostly_to_its_slots_on_less_loaded_shards(shards):
    key_spread(key="star", observation=Observation(1e3, 0.5, over_since=time.time(), hot=False))
    state = hot_states()["star"]
    busy = state.spread[0]
    for number in range(200):
        hot_key_record(key=f"tail-{number}", shard=busy)
    hot_cache_clear()

    picks = Counter(slot_pick(key="star", state=state) for _ in range(1600))

    # Slot 1 (on the busy shard) wins only the draws that pick it twice: about 1 in 16.
    assert picks[1] < 200
    assert min(picks[slot] for slot in (0, 2, 3)) > 350
