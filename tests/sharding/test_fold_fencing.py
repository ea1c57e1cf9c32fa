"""A fold that outlives its lease, and fold bookkeeping purged while a fold is unfinished: the
counter still equals the acknowledged increments."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest
from django.db import connections

from core.faults import faults_set
from sharding.counters import counter_get, counter_increment, counter_merge
from sharding.folding import CRASH_AFTER_APPLY, FOLD_PAUSE_SWITCH, folds_redrive, key_fold
from sharding.hotkeys import Observation
from sharding.maintenance import job_run
from sharding.placement import bucket_map_current
from sharding.spreading import hot_states, key_spread
from sharding.store import rows
from tests.servers import free_port
from tests.sharding.conftest import ALL_DATABASES, sharding_environment, sharding_tuning
from tests.workers import ROOT, worker_environment

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

LEASE_S = 0.5


def _observation() -> Observation:
    return Observation(rate=1000.0, share=0.5, over_since=time.time(), hot=False)


class Incrementer(threading.Thread):
    """Increments ``key`` by 1 until stopped; counts what was acknowledged."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key, self.acknowledged, self.errors = key, 0, []
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                counter_increment(key=self.key, by=1)
                self.acknowledged += 1
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            connections.close_all()


def _until(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_fold_slowed_past_its_lease_while_the_key_heats_up_again_hides_no_count(shards):
    sharding_tuning(shards, key_lease_s=LEASE_S)
    key = "celebrity:relapse"
    key_spread(key=key, observation=_observation())
    writer = Incrementer(key)
    folder = threading.Thread(
        target=lambda: (key_fold(key=key, under_since=time.time()), connections.close_all())
    )
    writer.start()
    try:
        time.sleep(0.3)
        faults_set(values={FOLD_PAUSE_SWITCH: 2000}, actor="test")
        folder.start()
        _until(lambda: key not in hot_states())  # the fold is under way
        time.sleep(LEASE_S + 0.2)  # its lease runs out; the key is hot again
        assert key_spread(key=key, observation=_observation())
        time.sleep(0.5)  # writes land on the new spread's slots
        folder.join(timeout=60)
        time.sleep(0.3)
    finally:
        writer.stop.set()
        writer.join(timeout=60)
        faults_set(values={FOLD_PAUSE_SWITCH: 0}, actor="test")

    assert writer.errors == []
    assert counter_get(key=key, use_cache=False).value == writer.acknowledged
    key_fold(key=key, under_since=time.time())
    assert counter_merge(key=key).value == writer.acknowledged


FOLD_SCRIPT = """
import sys, time, django
django.setup()
from sharding.folding import key_fold
key_fold(key=sys.argv[1], under_since=time.time())
"""


def test_fold_bookkeeping_purged_while_a_slot_shard_is_unreachable_is_not_applied_twice(shards):
    key = "celebrity:lost"
    key_spread(key=key, observation=_observation())
    slot_shard = hot_states()[key].spread[0]
    home = bucket_map_current().shard_for(key)
    for _ in range(10):
        counter_increment(key=key, by=1)
    rows(
        slot_shard,
        "UPDATE sharding_counterslot SET pos = pos + 30 WHERE key = %s AND slot = 1",
        [key],
    )
    expected = counter_merge(key=key).value
    # The fold dies after adding the amount to slot 0, before marking its record applied.
    faults_set(values={"crash_points": [CRASH_AFTER_APPLY]}, actor="test")
    try:
        folder = subprocess.run(
            [sys.executable, "-c", FOLD_SCRIPT, key],
            cwd=ROOT,
            env=worker_environment(**sharding_environment(shards)),
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        faults_set(values={"crash_points": []}, actor="test")
    assert folder.returncode == -signal.SIGKILL
    # Hours later, the slot's shard unreachable all along: the purge runs.
    rows(home, "UPDATE sharding_foldapplied SET created_at = now() - interval '3 hours'")
    connection = connections[slot_shard]
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(free_port())  # nothing listens there
    try:
        job_run("purge")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port

    folds_redrive(min_age_s=0)

    assert counter_merge(key=key).value == expected
    assert counter_get(key=key, use_cache=False).value == expected
