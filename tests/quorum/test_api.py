"""The quorum API over HTTP (DRF test client) on real nodes: answers, headers, problems, and
the node switches read back from the processes and the proxy."""

from __future__ import annotations

import base64
import json

import pytest
from rest_framework.test import APIClient

from quorum.conf import conf
from quorum.control import node_get
from quorum.services import causal_context_encode
from tests.factories import StaffFactory, UserFactory
from tests.quorum.conftest import stored_on

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("nodes_restored")]

CONTEXT = "X-Causal-Context"


@pytest.fixture
def client() -> APIClient:
    api = APIClient()
    api.force_authenticate(UserFactory())
    return api


@pytest.fixture
def staff_client() -> APIClient:
    api = APIClient()
    api.force_authenticate(StaffFactory())
    return api


def _nowhere(key: str) -> bool:
    return all(not stored_on(node, key) for node in conf().node_names)


def test_a_write_then_a_read_answer_with_the_keys_placement_and_quorums(client, key_prefix):
    key = f"{key_prefix}-a"

    written = client.put(f"/api/quorum/{key}?w=2", {"value": {"n": 1}}, format="json")
    read = client.get(f"/api/quorum/{key}?r=2")

    preference = conf().ring().preference_list(key, 3)
    assert written.status_code == 200
    assert written.json()["preference_list"] == preference
    assert len(written.json()["acknowledged"]) >= 2
    assert read.status_code == 200
    assert read.json()["value"] == {"n": 1}
    assert set(read.json()["answered"]) <= set(preference)
    assert len(read.json()["answered"]) == 2
    assert read.json()["overlap"] == {"n": 3, "w": 2, "r": 2, "w_plus_r_gt_n": True}
    assert read[CONTEXT]


def test_a_write_with_the_read_context_replaces_the_value(client, key_prefix):
    key = f"{key_prefix}-b"
    client.put(f"/api/quorum/{key}?w=3", {"value": "old"}, format="json")
    context = client.get(f"/api/quorum/{key}?r=3")[CONTEXT]

    client.put(
        f"/api/quorum/{key}?w=3", {"value": "new"}, format="json", HTTP_X_CAUSAL_CONTEXT=context
    )
    read = client.get(f"/api/quorum/{key}?r=3")

    assert read.status_code == 200
    assert [sibling["value"] for sibling in read.json()["siblings"]] == ["new"]


def test_concurrent_writes_answer_300_with_every_sibling(client, key_prefix):
    key = f"{key_prefix}-c"
    client.put(f"/api/quorum/{key}?w=3", {"value": "x"}, format="json")
    client.put(f"/api/quorum/{key}?w=3", {"value": "y"}, format="json")

    read = client.get(f"/api/quorum/{key}?r=3")

    assert read.status_code == 300
    assert sorted(sibling["value"] for sibling in read.json()["siblings"]) == ["x", "y"]
    assert read.json()["value"] is None


def test_a_key_never_written_is_a_404_with_the_nodes_asked(client, key_prefix):
    response = client.get(f"/api/quorum/{key_prefix}-nothing?r=2")

    assert response.status_code == 404
    assert response.json()["code"] == "quorum_key_not_found"
    assert len(response.json()["answered"]) == 2


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("w=4", "quorum_parameter_invalid"),
        ("n=6", "quorum_parameter_invalid"),
        ("n=2&w=3", "quorum_parameter_invalid"),
        ("r=5", "quorum_parameter_invalid"),
        ("w=0", "validation_error"),
        ("n=-1", "validation_error"),
        ("w=two", "validation_error"),
        ("sloppy=perhaps", "validation_error"),
    ],
)
def test_bad_write_parameters_are_a_400_and_write_nothing(client, key_prefix, query, code):
    key = f"{key_prefix}-p"

    response = client.put(f"/api/quorum/{key}?{query}", {"value": 1}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert _nowhere(key)


@pytest.mark.parametrize("query", ["r=4", "n=9", "r=0", "n=2&r=3", "r=", "n="])
def test_bad_read_parameters_are_a_400(client, key_prefix, query):
    response = client.get(f"/api/quorum/{key_prefix}-q?{query}")

    assert response.status_code == 400
    assert response.json()["code"] in {"quorum_parameter_invalid", "validation_error"}


def test_an_oversized_value_is_a_400_and_writes_nothing(client, key_prefix):
    key = f"{key_prefix}-big"
    value = "x" * (conf().max_value_bytes + 1)

    response = client.put(f"/api/quorum/{key}", {"value": value}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "quorum_value_too_large"
    assert _nowhere(key)


def test_a_forged_context_is_a_400_and_writes_nothing(client, key_prefix):
    key = f"{key_prefix}-forged"
    body = base64.urlsafe_b64encode(json.dumps({"n1": 99}).encode()).decode().rstrip("=")

    response = client.put(
        f"/api/quorum/{key}", {"value": 1}, format="json", HTTP_X_CAUSAL_CONTEXT=f"{body}.AAAA"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "quorum_context_invalid"
    assert _nowhere(key)


def test_a_context_issued_for_another_key_is_a_400(client, key_prefix):
    from causal.clocks import VectorClock

    other = causal_context_encode(key=f"{key_prefix}-other", clock=VectorClock.of({"n1": 1}))

    response = client.put(
        f"/api/quorum/{key_prefix}-mine", {"value": 1}, format="json", HTTP_X_CAUSAL_CONTEXT=other
    )

    assert response.status_code == 400
    assert response.json()["code"] == "quorum_context_invalid"


def test_a_key_with_characters_outside_the_alphabet_is_a_400(client):
    response = client.put("/api/quorum/bad%20key", {"value": 1}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "quorum_key_invalid"


def test_a_body_without_value_is_a_400(client, key_prefix):
    response = client.put(f"/api/quorum/{key_prefix}-v", {"val": 1}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_the_node_list_shows_each_node_up_with_its_running_process(client):
    response = client.get("/api/quorum/nodes/")

    assert response.status_code == 200
    assert [node["name"] for node in response.json()] == conf().node_names
    assert {(node["state"], node["process"]) for node in response.json()} == {("up", "running")}


def test_an_unknown_node_is_a_404(staff_client):
    assert staff_client.get("/api/quorum/nodes/n99").json()["code"] == "quorum_node_unknown"
    response = staff_client.put("/api/quorum/nodes/n99", {"state": "down"}, format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "quorum_node_unknown"


def test_only_staff_may_switch_a_node(client):
    response = client.put("/api/quorum/nodes/n2", {"state": "down"}, format="json")

    assert response.status_code == 403
    assert node_get(node="n2").state == "up"


def test_a_slow_node_shows_the_delay_in_force_on_its_route(staff_client):
    response = staff_client.put(
        "/api/quorum/nodes/n2", {"state": "slow", "delay_ms": 40, "jitter_ms": 10}, format="json"
    )

    listed = {node["name"]: node for node in staff_client.get("/api/quorum/nodes/").json()}
    assert response.status_code == 200
    assert (listed["n2"]["state"], listed["n2"]["delay_ms"], listed["n2"]["jitter_ms"]) == (
        "slow",
        40,
        10,
    )
    assert listed["n2"]["route"]["delay_ms"] == 40


def test_a_frozen_node_is_down_with_its_processes_stopped_by_the_kernel(staff_client):
    response = staff_client.put(
        "/api/quorum/nodes/n3", {"state": "down", "how": "freeze"}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["state"], response.json()["how"]) == ("down", "freeze")
    assert response.json()["process"] == "frozen"
    assert response.json()["pid"] is not None


def test_a_stopped_node_comes_back_up(staff_client):
    stopped = staff_client.put("/api/quorum/nodes/n4", {"state": "down"}, format="json").json()

    started = staff_client.put("/api/quorum/nodes/n4", {"state": "up"}, format="json").json()

    assert (stopped["state"], stopped["how"], stopped["process"]) == ("down", "stop", "stopped")
    assert (started["state"], started["process"]) == ("up", "running")


@pytest.mark.parametrize(
    "body",
    [
        {"state": "slow"},
        {"state": "up", "delay_ms": 10},
        {"state": "up", "how": "cut"},
        {"state": "down", "how": "explode"},
        {"state": "sideways"},
        {"state": "slow", "delay_ms": -5},
    ],
)
def test_a_bad_node_switch_is_a_400_and_changes_nothing(staff_client, body):
    response = staff_client.put("/api/quorum/nodes/n5", body, format="json")

    assert response.status_code == 400
    assert node_get(node="n5").state == "up"


@pytest.mark.parametrize("query", ["n=", "n=0", "n=two"])
def test_a_bad_ring_parameter_is_a_400(client, query):
    response = client.get(f"/api/quorum/ring/?{query}")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_the_ring_gives_a_keys_preference_list_and_fallbacks(client, key_prefix):
    key = f"{key_prefix}-ring"

    response = client.get(f"/api/quorum/ring/?key={key}&n=3")

    body = response.json()
    assert response.status_code == 200
    assert body["key"]["preference_list"] == conf().ring().preference_list(key, 3)
    assert sorted(body["key"]["preference_list"] + body["key"]["fallbacks"]) == conf().node_names
    assert len(body["tokens"]) == len(conf().node_names) * conf().vnodes


@pytest.mark.django_db(databases="__all__")
def test_metrics_count_writes_by_quorum_and_show_hints_pending(client, key_prefix):
    client.put(f"/api/quorum/{key_prefix}-m?w=2", {"value": 1}, format="json")

    text = client.get("/metrics").content.decode()

    assert 'statelab_quorum_writes_total{n="3",outcome="ok",sloppy="false",w="2"}' in text
    assert 'statelab_quorum_wait_seconds_count{n="3",op="write",q="2"}' in text
    assert "statelab_quorum_hints_pending" in text
