"""The short chaos soak (``make chaos`` runs the long one): the saga, the profiles and the hot
counters under load while workers are killed and paused, backends terminated, credits failed,
buckets moved, Redis restarted, crash points armed and replay paused, checked Jepsen style; it
must find no violation.

The faults of the cluster's members are left to ``make chaos`` here: each waits for Patroni to
settle (tens of seconds), which the suite cannot afford within its budget, and each has its own
tests: the leader's kill and its freeze in tests/ha/test_failover.py, a stopped standby in
tests/profiles/test_replicas_stopped.py and tests/ha, a frozen Redis under writes in
tests/profiles/test_positions.py."""

import json
import subprocess
import sys

import pytest
from django.db import connections

from core.redis import redis_clients_reset
from tests.saga.conftest import broker_purge
from tests.servers import free_port
from tests.workers import ROOT, worker_environment

LEFT_TO_MAKE_CHAOS = ["kill_leader", "pause_leader", "pause_redis", "stop_replica"]
FAULT_KINDS = {
    "kill_worker",
    "terminate_backends",
    "credit_failures",
    "concurrent_bucket_moves",
    "restart_redis",
    "pause_worker",
    "crash_point",
    "pause_replay",
}


@pytest.fixture
def fresh_connections_afterwards():
    """The soak restarts Redis and terminates database backends under this process too."""
    yield
    connections.close_all()
    redis_clients_reset()


@pytest.mark.chaos
@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_short_chaos_soak_finds_no_violation(tmp_path, fresh_connections_afterwards):
    broker_purge()  # what earlier tests left would be applied to this run's rows of the same ids
    command = [
        sys.executable,
        "-m",
        "chaos",
        "--duration",
        "20",
        "--hold",
        "2",
        "--settle",
        "120",
        "--port",
        str(free_port()),
        "--out",
        str(tmp_path),
        *(option for fault in LEFT_TO_MAKE_CHAOS for option in ("--skip", fault)),
    ]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=worker_environment(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    output = result.stdout[-6000:] + result.stderr[-4000:]
    assert result.returncode == 0, output
    summary = json.loads(next(tmp_path.glob("*/summary.json")).read_text())
    assert set(summary["faults"]) == FAULT_KINDS
    assert summary["skipped_faults"] == sorted(LEFT_TO_MAKE_CHAOS)
    assert summary["operations"]["transfer"]["ok"] > 0
    assert summary["observed"]["statelab_inbox_redeliveries_ignored_total"] > 0
