"""``/api/ha/``: the cluster's status and mode for staff, switchover, and the readiness
report naming the members."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests import cluster

pytestmark = [pytest.mark.ha, pytest.mark.django_db]


def _client(*, staff: bool) -> APIClient:
    client = APIClient()
    user = get_user_model().objects.create(username=f"ha-{staff}", is_staff=staff)
    client.force_authenticate(user)
    return client


def test_staff_see_the_mode_the_leader_and_every_member_with_role_timeline_and_lag():
    leader = cluster.cluster_settled()

    body = _client(staff=True).get("/api/ha/").json()

    assert body["mode"] == "async"
    assert body["leader"] == leader.name
    assert {m["name"]: m["role"] for m in body["members"]} == {
        m.name: m.role for m in cluster.members()
    }
    assert all(m["timeline"] == leader.timeline for m in body["members"])
    assert all(isinstance(m["lag_bytes"], int) for m in body["members"])
    assert len([m for m in body["etcd"] if m["ok"]]) == 3


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/ha/"),
        ("patch", "/api/ha/"),
        ("post", "/api/ha/switchover"),
        ("post", "/api/ha/faults/kill-leader"),
    ],
)
def test_the_cluster_endpoints_are_for_staff_only(method, path):
    response = getattr(_client(staff=False), method)(path, {}, format="json")

    assert response.status_code == 403


@pytest.mark.parametrize(
    "body",
    [{"mode": "eventually"}, {"mode": "quorum", "sync_node_count": 3}, {}, {"mode": None}],
)
def test_an_unknown_mode_answers_400_and_changes_nothing(body):
    client = _client(staff=True)

    response = client.patch("/api/ha/", body, format="json")

    assert response.status_code == 400
    assert client.get("/api/ha/").json()["mode"] == "async"


def test_a_mode_set_is_in_force_when_the_answer_comes(settled):
    client = _client(staff=True)
    try:
        quorum = client.patch("/api/ha/", {"mode": "quorum"}, format="json").json()
        sync_apply = client.patch("/api/ha/", {"mode": "sync_apply"}, format="json").json()
    finally:
        back = client.patch("/api/ha/", {"mode": "async"}, format="json").json()

    assert (quorum["mode"], sync_apply["mode"], back["mode"]) == ("quorum", "sync_apply", "async")
    assert sync_apply["synchronous_commit"] == "remote_apply"
    assert any(m["synchronous"] for m in sync_apply["members"])


def test_a_switchover_hands_the_lead_to_the_named_standby(settled):
    candidate = cluster.standbys()[0].name

    response = _client(staff=True).post(
        "/api/ha/switchover", {"candidate": candidate}, format="json"
    )
    after = cluster.cluster_settled()

    assert response.status_code == 200
    assert after.name == candidate


@pytest.mark.django_db(databases="__all__")
def test_readyz_names_the_members_their_roles_and_the_timeline():
    leader = cluster.cluster_settled()

    checks = _client(staff=False).get("/readyz").json()["checks"]

    assert checks["ha:cluster"]["leader"] == leader.name
    assert checks["ha:cluster"]["timeline"] == leader.timeline
    assert {m["name"] for m in checks["ha:cluster"]["members"]} == {
        m.name for m in cluster.members()
    }
    assert checks["etcd"]["ok"]
