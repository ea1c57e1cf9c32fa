"""Fault switches: staff-only, validated, shared through the database, visible in metrics."""

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from core.faults import FaultSpec, fault_register, fault_specs, fault_value
from tests.factories import StaffFactory, UserFactory


@pytest.fixture(autouse=True)
def example_switches():
    before = fault_specs()
    fault_register(FaultSpec("example_failure_rate", "probability", 0.0, "test switch"))
    fault_register(FaultSpec("example_down", "flag", False, "test switch"))
    yield
    for name in ("example_failure_rate", "example_down"):
        if name not in before:
            from core import faults

            faults._registry.pop(name, None)


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db(
    databases=["default", *settings.REPLICA_ALIASES]
)  # the replica delay is read there
def test_staff_sets_a_switch_and_every_reader_sees_it():
    response = _client(StaffFactory()).patch(
        "/api/faults/", {"example_failure_rate": 0.25}, format="json"
    )

    listed = {fault["name"]: fault["value"] for fault in response.json()["faults"]}
    assert response.status_code == 200
    assert listed["example_failure_rate"] == 0.25
    assert fault_value("example_failure_rate") == 0.25


@pytest.mark.django_db(databases=["default", *settings.REPLICA_ALIASES], transaction=True)
def test_put_resets_omitted_switches_to_their_defaults():
    """PUT also resets switches with side effects (the replica's apply delay): a real standby
    outside a test transaction."""
    staff = _client(StaffFactory())
    staff.patch("/api/faults/", {"example_down": True, "example_failure_rate": 0.5}, format="json")

    staff.put("/api/faults/", {"example_down": True}, format="json")

    assert fault_value("example_down") is True
    assert fault_value("example_failure_rate") == 0.0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [{"example_failure_rate": 1.5}, {"example_failure_rate": "high"}, {"example_down": 1}],
    ids=["out-of-range", "not-a-number", "not-a-bool"],
)
def test_an_invalid_value_is_a_400_and_changes_nothing(body):
    response = _client(StaffFactory()).patch("/api/faults/", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "fault_value_invalid"
    assert fault_value("example_failure_rate") == 0.0
    assert fault_value("example_down") is False


@pytest.mark.django_db
def test_an_unknown_switch_is_a_400_listing_the_known_ones():
    response = _client(StaffFactory()).patch("/api/faults/", {"no_such": 1}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "fault_unknown"
    assert "example_down" in response.json()["allowed"]


@pytest.mark.django_db
def test_a_non_staff_user_cannot_read_or_change_switches():
    client = _client(UserFactory())

    assert client.get("/api/faults/").status_code == 403
    assert client.patch("/api/faults/", {"example_down": True}, format="json").status_code == 403
    assert fault_value("example_down") is False


@pytest.mark.django_db(databases=["default", *settings.REPLICA_ALIASES])
def test_switch_values_are_exported_as_metrics():
    _client(StaffFactory()).patch("/api/faults/", {"example_failure_rate": 0.2}, format="json")

    text = APIClient().get("/metrics").content.decode()

    assert 'statelab_fault_value{switch="example_failure_rate"} 0.2' in text


REPLICA = "replica_1"


def _replica_component_restart(alias: str) -> None:
    """Stop the cluster member that a replica alias reaches (its Patroni and Postgres really
    end) and start it again. The one place that knows the stack's API for that."""
    from tests import cluster

    member = cluster.component(cluster.member_behind(alias))
    member.down()
    member.up()
    cluster.cluster_settled()


def _replica_apply_delay_ms() -> int:
    from django.db import connections

    with connections[REPLICA].cursor() as cursor:
        cursor.execute(
            "SELECT setting::int FROM pg_settings WHERE name = 'recovery_min_apply_delay'"
        )
        return cursor.fetchone()[0]


def _replayed_within(seconds: float) -> bool:
    """Write on the primary; True when the replica has replayed it within ``seconds``."""
    from django.db import connections

    from consistency.replicas import primary_wal_lsn, wait_for_replay

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT txid_current()")  # a transaction of its own: a commit record
    return wait_for_replay(REPLICA, primary_wal_lsn(), timeout_s=seconds)


@pytest.fixture
def replica_restartable():
    from django.db import connections

    from devstack import config as devstack_config

    if devstack_config.postgres_given():
        pytest.skip("Postgres is given by DATABASE_URL: its replica is not this project's to stop")
    yield
    connections[REPLICA].close()
    _client(StaffFactory()).patch("/api/faults/", {"replica_delay_ms": 0}, format="json")


@pytest.mark.replication
@pytest.mark.django_db(databases=["default", *settings.REPLICA_ALIASES], transaction=True)
def test_after_a_replica_restart_the_delay_switch_shows_what_is_in_force_and_reapplies(
    replica_restartable,
):
    from django.db import connections

    staff = _client(StaffFactory())
    staff.patch("/api/faults/", {"replica_delay_ms": 1500}, format="json")
    assert _replica_apply_delay_ms() == 1500
    connections[REPLICA].close()
    _replica_component_restart(REPLICA)

    listed = {fault["name"]: fault["value"] for fault in staff.get("/api/faults/").json()["faults"]}
    in_force = _replica_apply_delay_ms()
    staff.patch("/api/faults/", {"replica_delay_ms": 1500}, format="json")

    assert listed["replica_delay_ms"] == in_force
    assert _replica_apply_delay_ms() == 1500
    assert not _replayed_within(0.5)
