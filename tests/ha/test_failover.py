"""Failover, fencing and the modes' guarantees on the real cluster: leaders SIGKILLed and
frozen, standbys stopped. One module, one cluster: every test leaves it settled (one leader,
two standbys streaming) and compares etcd's members after each kill."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.test import APIRequestFactory, force_authenticate

from consistency.context import consistency_context
from consistency.levels import SESSION
from consistency.pool import replica_pool
from consistency.replicas import WalPosition
from consistency.routing import read_decision
from consistency.state import SessionState
from ha.patroni import patroni_client
from ha.services import ha_leader_kill
from ha.views import HaKillLeaderView
from loadtest.ha_workload import (
    History,
    SqlWriteLoop,
    lost_acknowledged_writes,
    sql_final_reads,
)
from tests import cluster
from tests.ha.conftest import etcd_hashes_equal

pytestmark = [pytest.mark.ha, pytest.mark.timeout(600)]

NEW_LEADER_TIMEOUT_S = 45


def new_leader(old: str, timeout_s: float = NEW_LEADER_TIMEOUT_S) -> cluster.Member:
    """Until a member other than ``old`` leads and runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = cluster.leader()
        except Exception:  # the cluster's managers may not answer for a moment
            found = None
        if found is not None and found.name != old and found.state == "running":
            return found
        time.sleep(0.1)
    raise AssertionError(f"no new leader {timeout_s} s after {old} went")


def insert(conninfo: dict, key: str, value: int = 1) -> None:
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute("INSERT INTO ha_writes (key, value) VALUES (%s, %s)", (key, value))


def present(conninfo: dict, key: str) -> bool:
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM ha_writes WHERE key = %s", (key,)).fetchone() is not None


def staff_kill_through_the_api() -> dict:
    request = APIRequestFactory().post("/api/ha/faults/kill-leader")
    force_authenticate(request, user=get_user_model()(username="staff", is_staff=True))
    response = HaKillLeaderView.as_view()(request)
    assert response.status_code == 200, response.data
    return response.data


def test_after_the_leaders_kill_a_standby_leads_on_a_new_timeline_and_etcd_agrees(settled):
    old = settled

    killed = staff_kill_through_the_api()
    leader = new_leader(old.name)
    back = cluster.cluster_settled()

    assert killed["leader"] == old.name
    assert leader.name != old.name
    assert back.timeline == old.timeline + 1
    assert {m.name for m in cluster.standbys()} == {m.name for m in cluster.members()} - {
        leader.name
    }
    assert etcd_hashes_equal()["equal"]


@pytest.mark.django_db(databases=["default", *settings.REPLICA_ALIASES], transaction=True)
def test_a_position_from_before_a_failover_routes_by_the_switch_point(settled):
    """A session position on the old timeline is held by a standby of the new one only up to
    the switch point: beyond it the write may be lost, or live only on an unrewound member."""
    old = settled
    ha_leader_kill()
    new_leader(old.name)
    leader = cluster.cluster_settled()
    switch = next(entry[1] for entry in patroni_client().history() if entry[0] == old.timeline)
    replica_pool.reset()

    decisions = {}
    for label, position in {
        "below": WalPosition(old.timeline, switch - 1),
        "beyond": WalPosition(old.timeline, switch + 1),
        "newer_timeline": WalPosition(leader.timeline + 1, 1),
    }.items():
        state = SessionState(writes={"profile:x": position})
        with consistency_context(SESSION, state=state):
            decisions[label] = read_decision("profile:x").reason

    assert decisions == {"below": "caught_up", "beyond": "behind", "newer_timeline": "behind"}, (
        replica_pool.history,
        replica_pool.states(),
        switch,
    )
    assert etcd_hashes_equal()["equal"]


def test_writes_acknowledged_in_sync_mode_survive_the_leaders_kill(settled, mode, scratch_conninfo):
    mode("sync")
    history = History()
    loop = SqlWriteLoop(scratch_conninfo, history, writers=4, prefix="sync-").start()
    time.sleep(1.5)
    old = cluster.leader()

    ha_leader_kill()
    new_leader(old.name)
    time.sleep(1.5)  # writes go on against the new leader
    loop.stop()
    cluster.cluster_settled()
    sql_final_reads(scratch_conninfo, history, loop.keys)
    acknowledged = [e for e in history.events if e["f"] == "write" and e["type"] == "ok"]

    assert len(acknowledged) > 20
    assert lost_acknowledged_writes(history.events) == []
    assert etcd_hashes_equal()["equal"]


def test_strict_mode_blocks_writes_while_no_standby_runs_and_resumes_with_one(
    settled, mode, scratch_conninfo
):
    mode("strict")
    standbys = [cluster.component(member.name) for member in cluster.standbys()]
    for standby in standbys:
        standby.down()
    outcome: dict[str, object] = {}

    def write() -> None:
        try:
            insert(scratch_conninfo, "strict-1")
            outcome["at"] = time.monotonic()
        except psycopg.Error as error:
            outcome["error"] = error

    writer = threading.Thread(target=write, daemon=True)
    try:
        writer.start()
        writer.join(timeout=4)
        blocked = writer.is_alive()
    finally:
        restarted_at = time.monotonic()
        standbys[0].up()
    writer.join(timeout=60)
    standbys[1].up()

    assert blocked
    assert "error" not in outcome
    assert outcome.get("at", 0) > restarted_at
    assert present(scratch_conninfo, "strict-1")


def _held_connection(conninfo: dict, port: int) -> psycopg.Connection:
    """A connection straight to one member (no multi-host: it stays on that server)."""
    direct = {**conninfo, "host": "127.0.0.1", "port": port, "target_session_attrs": "any"}
    return psycopg.connect(**direct, autocommit=True)


def test_a_frozen_old_leader_acknowledges_no_write_once_another_leads_in_sync_mode(
    settled, mode, scratch_conninfo
):
    """The zombie: the leader frozen (SIGSTOP of Patroni and every Postgres process) while a
    client holds a connection to it; a standby takes over; the old leader comes back and is
    fenced: the write sent to it is not acknowledged, and not kept."""
    mode("sync")
    old = cluster.leader()
    member = cluster.component(old.name)
    held = _held_connection(scratch_conninfo, old.port)
    outcome: dict[str, object] = {}

    def zombie_write() -> None:
        try:
            held.execute("INSERT INTO ha_writes (key, value) VALUES ('zombie', 1)")
            outcome["acknowledged"] = True
        except psycopg.Error as error:
            outcome["error"] = type(error).__name__

    member.pause()
    try:
        leader = new_leader(old.name, timeout_s=60)
        writer = threading.Thread(target=zombie_write, daemon=True)
        writer.start()
        time.sleep(0.5)
    finally:
        member.resume()
    writer.join(timeout=60)
    cluster.cluster_settled()
    held.close()

    assert leader.name != old.name
    assert "acknowledged" not in outcome
    assert not present(scratch_conninfo, "zombie")
    assert etcd_hashes_equal()["equal"]
