"""The short chaos soak (``make chaos`` runs the long one): the whole service under every kind
of fault but the frozen leader, checked Jepsen style; it must find no violation. The frozen
leader waits out Patroni's ttl (20 s) for its successor: tests/ha/test_failover.py covers it on
its own, and ``make chaos`` runs it with the rest."""

import json
import subprocess
import sys

import pytest
from django.db import connections

from core.redis import redis_clients_reset
from tests.saga.conftest import broker_purge
from tests.servers import free_port
from tests.workers import ROOT, worker_environment

FAULT_KINDS = {
    "kill_worker",
    "terminate_backends",
    "credit_failures",
    "concurrent_bucket_moves",
    "restart_redis",
    "pause_worker",
    "pause_redis",
    "stop_replica",
    "crash_point",
    "pause_replay",
    "kill_leader",
}


@pytest.fixture
def fresh_connections_afterwards():
    """The soak restarts Redis, stops standbys and kills the cluster's leader under this
    process too."""
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
        "30",
        "--hold",
        "2",
        "--settle",
        "120",
        "--port",
        str(free_port()),
        "--out",
        str(tmp_path),
        "--skip",
        "pause_leader",
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
    assert summary["skipped_faults"] == ["pause_leader"]
    assert summary["operations"]["transfer"]["ok"] > 0
    assert summary["observed"]["statelab_inbox_redeliveries_ignored_total"] > 0
