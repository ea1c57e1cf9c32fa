"""The streaming replica component, on the package's core stack."""

import shutil
from collections.abc import Iterator
from dataclasses import replace

import pytest

from devstack.components import StreamingReplica
from devstack.errors import StackError
from devstack.process import pid_alive
from devstack.stack import Stack
from tests.devstack.conftest import quiet, wait_replica_caught_up

pytestmark = pytest.mark.stack


def _apply_delay(replica: StreamingReplica) -> str:
    with replica.connect() as conn:
        (delay,) = conn.execute("SHOW recovery_min_apply_delay").fetchone()
    return delay


def _replica(stack: Stack) -> StreamingReplica:
    component = stack.component("replica_1")
    assert isinstance(component, StreamingReplica)
    return component


@pytest.fixture
def delayed(running: Stack) -> Iterator[Stack]:
    """The same stack directory and ports, configured with a 250 ms apply delay (as
    ``python -m devstack up --replica-delay-ms 250``); back to the package's 0 ms after."""
    yield Stack(replace(running.config, replica_delay_ms=250), honor_given_urls=False, echo=quiet)
    _replica(running).up()


def test_up_with_another_apply_delay_changes_it_on_the_running_replica(running, delayed):
    before = _replica(running).pid()

    _replica(delayed).up()

    assert _apply_delay(_replica(delayed)) == "250ms"
    assert _replica(delayed).pid() == before


def test_up_drops_an_apply_delay_set_by_alter_system(running):
    replica = _replica(running)
    with replica.connect(autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET recovery_min_apply_delay = '900ms'")
        conn.execute("SELECT pg_reload_conf()")

    replica.up()

    assert _apply_delay(replica) == "0"


def test_down_stops_the_replica_and_leaves_the_primary_running(running):
    replica, primary = _replica(running), running.component("primary")
    pid = replica.pid()

    replica.down()

    assert not pid_alive(pid)
    assert primary.status()["running"] is True


def test_a_stopped_replica_reports_no_replay_position(running):
    replica = _replica(running)
    replica.down()

    status = replica.status()

    assert status["running"] is False
    assert (status["replay_lsn"], status["lag_bytes"], status["apply_delay"]) == (None,) * 3


def test_up_after_down_streams_again(running):
    replica = _replica(running)
    replica.down()

    replica.up()

    wait_replica_caught_up(running)
    assert replica.status()["lag_bytes"] is not None


def test_up_recreates_a_deleted_replica_from_the_primary(running):
    replica = _replica(running)
    replica.down()
    shutil.rmtree(replica.data_dir)

    replica.up()

    wait_replica_caught_up(running)
    assert replica.status()["running"] is True


def test_up_with_the_primary_stopped_fails_naming_the_primary(running):
    replica, primary = _replica(running), running.component("primary")
    primary.down()

    with pytest.raises(StackError, match="needs primary running") as failure:
        replica.up()

    assert failure.value.component == "replica_1"
