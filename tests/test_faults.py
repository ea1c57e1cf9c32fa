"""Fault switches: staff-only, validated, shared through the database, visible in metrics."""

import pytest
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


@pytest.mark.django_db
def test_staff_sets_a_switch_and_every_reader_sees_it():
    response = _client(StaffFactory()).patch(
        "/api/faults/", {"example_failure_rate": 0.25}, format="json"
    )

    listed = {fault["name"]: fault["value"] for fault in response.json()["faults"]}
    assert response.status_code == 200
    assert listed["example_failure_rate"] == 0.25
    assert fault_value("example_failure_rate") == 0.25


@pytest.mark.django_db(databases=["default", "replica_1"], transaction=True)
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


@pytest.mark.django_db(databases=["default", "replica_1"])
def test_switch_values_are_exported_as_metrics():
    _client(StaffFactory()).patch("/api/faults/", {"example_failure_rate": 0.2}, format="json")

    text = APIClient().get("/metrics").content.decode()

    assert 'statelab_fault_value{switch="example_failure_rate"} 0.2' in text
