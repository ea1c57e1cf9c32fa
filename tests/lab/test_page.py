"""The State Lab page: who sees it, who gets the controls, and its one data endpoint."""

import json
import os
import re
import time

import pytest
from django.conf import settings
from django.test import Client

from loadtest.results import routing_comparison_store, run_folder_create
from tests.factories import TEST_PASSWORD, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

STRATEGY_URL = "/lab/api/strategy-comparison/"


def _config(response) -> dict:
    match = re.search(
        r'<script id="lab-config" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert match, "the page embeds its configuration"
    return json.loads(match.group(1))


def _store_comparison(folder, run: str, figures: dict, age_s: float = 0) -> None:
    path = routing_comparison_store(run_folder_create(folder, run).work, figures)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))


def test_anonymous_visitor_is_sent_to_the_login_form():
    response = Client().get("/lab/")

    assert response.status_code == 302
    assert response["Location"] == "/lab/login/?next=/lab/"


def test_login_form_logs_a_user_in_and_returns_to_the_page():
    user = UserFactory()
    client = Client()

    response = client.post(
        "/lab/login/?next=/lab/", {"username": user.username, "password": TEST_PASSWORD}
    )

    assert response.status_code == 302
    assert response["Location"] == "/lab/"
    assert client.get("/lab/").status_code == 200


def test_login_form_refuses_a_wrong_password():
    user = UserFactory()

    response = Client().post("/lab/login/", {"username": user.username, "password": "wrong"})

    assert response.status_code == 200
    assert "Wrong username or password" in response.content.decode()


def test_non_staff_user_sees_every_panel_but_no_controls():
    client = Client()
    client.force_login(UserFactory())

    response = client.get("/lab/")
    body = response.content.decode()

    assert response.status_code == 200
    for panel in ("panel-saga", "panel-replicas", "panel-shards"):
        assert f'id="{panel}"' in body
    assert 'id="panel-controls"' not in body
    assert "burst-transfers" not in body
    assert 'id="faults"' not in body
    assert _config(response)["staff"] is False


def test_staff_user_sees_the_controls():
    client = Client()
    staff = StaffFactory()
    client.force_login(staff)

    response = client.get("/lab/")
    body = response.content.decode()

    assert 'id="panel-controls"' in body
    for control in ("faults", "burst-transfers", "burst-storm", "burst-pairs", "strategy"):
        assert f'id="{control}"' in body
    config = _config(response)
    assert config["staff"] is True
    assert config["user"] == {"id": staff.pk, "username": staff.username}


def test_page_is_never_cached():
    client = Client()
    client.force_login(UserFactory())

    response = client.get("/lab/")

    assert "no-cache" in response["Cache-Control"]


def test_page_loads_only_its_own_static_files_from_this_origin():
    client = Client()
    client.force_login(StaffFactory())

    body = client.get("/lab/").content.decode()
    references = re.findall(r'(?:src|href)="([^"]+)"', body)

    assert "/static/lab/lab.js" in references
    assert "/static/lab/lab.css" in references
    external = [
        ref
        for ref in references
        if not ref.startswith("data:") and (not ref.startswith("/") or ref.startswith("//"))
    ]
    assert external == []
    for asset in ("/static/lab/lab.js", "/static/lab/lab.css"):
        response = client.get(asset)
        assert response.status_code == 200
        assert b"http://" not in b"".join(response.streaming_content).replace(
            b"http://www.w3.org/2000/svg", b""
        )


@pytest.mark.django_db(
    databases=["default", *settings.REPLICA_ALIASES]
)  # the switches read the replica
def test_the_page_csrf_token_lets_the_staff_browser_change_a_fault_switch():
    client = Client(enforce_csrf_checks=True)
    client.force_login(StaffFactory())
    token = _config(client.get("/lab/"))["csrf"]

    refused = client.patch(
        "/api/faults/", {"saga_notification_down": True}, content_type="application/json"
    )
    accepted = client.patch(
        "/api/faults/",
        {"saga_notification_down": True},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert refused.status_code == 403
    assert accepted.status_code == 200
    switches = {fault["name"]: fault["value"] for fault in accepted.json()["faults"]}
    assert switches["saga_notification_down"] is True


def test_non_staff_browser_cannot_change_fault_switches_even_with_a_csrf_token():
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory())
    token = _config(client.get("/lab/"))["csrf"]

    response = client.patch(
        "/api/faults/",
        {"saga_notification_down": True},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"


def test_strategy_comparison_needs_a_logged_in_user():
    response = Client().get(STRATEGY_URL)

    assert response.status_code in (401, 403)
    assert response["Content-Type"] == "application/problem+json"


def test_strategy_comparison_says_unavailable_before_any_benchmark(settings, tmp_path):
    settings.LAB_BENCH_RESULTS_DIR = tmp_path
    client = Client()
    client.force_login(UserFactory())

    response = client.get(STRATEGY_URL)

    assert response.status_code == 200
    assert response.json() == {
        "available": False,
        "run": None,
        "finished_at": None,
        "strategies": {},
    }


def test_strategy_comparison_returns_the_newest_stored_run(settings, tmp_path):
    settings.LAB_BENCH_RESULTS_DIR = tmp_path
    _store_comparison(tmp_path, "2026-01-01T00-00", {"none": {"stale_read_backs_pct": 90.0}}, 600)
    _store_comparison(
        tmp_path,
        "2026-01-02T00-00",
        {
            "none": {"stale_read_backs_pct": 41.5, "primary_share_pct": 0},
            "lsn": {"stale_read_backs_pct": 0, "primary_share_pct": 12.25},
        },
    )
    client = Client()
    client.force_login(UserFactory())

    body = client.get(STRATEGY_URL).json()

    assert body["available"] is True
    assert body["run"] == "2026-01-02T00-00"
    assert body["strategies"] == {
        "none": {"stale_read_backs_pct": 41.5, "primary_share_pct": 0.0},
        "lsn": {"stale_read_backs_pct": 0.0, "primary_share_pct": 12.25},
    }


def test_strategy_comparison_skips_an_unreadable_run(settings, tmp_path):
    settings.LAB_BENCH_RESULTS_DIR = tmp_path
    _store_comparison(tmp_path, "older", {"lsn": {"stale_read_backs_pct": 0}}, 600)
    broken = routing_comparison_store(run_folder_create(tmp_path, "newer").work, {})
    broken.write_text("{not json")
    client = Client()
    client.force_login(UserFactory())

    body = client.get(STRATEGY_URL).json()

    assert body["run"] == "older"
