"""Admin is for staff only, no password or token ever reaches the logs, and /metrics is not
served to anyone under production settings."""

import json
import logging
import subprocess
import sys

import pytest
from rest_framework.test import APIClient

from tests.factories import TEST_PASSWORD, StaffFactory, UserFactory
from tests.test_settings import ROOT, _production_env


@pytest.mark.django_db
def test_a_non_staff_user_is_sent_to_the_admin_login(client):
    client.force_login(UserFactory())

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_an_anonymous_visitor_is_sent_to_the_admin_login(client):
    response = client.get("/admin/core/faultswitch/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_a_superuser_reaches_the_admin_pages(client):
    client.force_login(StaffFactory(is_superuser=True))

    assert client.get("/admin/core/faultswitch/").status_code == 200


@pytest.mark.django_db
def test_neither_password_nor_token_appears_in_the_logs(caplog):
    user = UserFactory()
    client = APIClient()
    client.raise_request_exception = False
    caplog.set_level(logging.DEBUG)

    token = client.post(
        "/api/auth/token/", {"username": user.username, "password": TEST_PASSWORD}, format="json"
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    client.get("/api/auth/whoami/")
    client.get("/api/faults/")
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token-but-secret-looking")
    client.get("/api/auth/whoami/")

    assert caplog.records
    assert TEST_PASSWORD not in caplog.text
    assert token not in caplog.text
    assert "secret-looking" not in caplog.text


METRICS_PROBE = """
import json
from django.test import Client
client = Client(SERVER_NAME="statelab.example.com")
def status(**headers):
    return client.get("/metrics", secure=True, **headers).status_code
print(json.dumps({
    "anonymous": status(),
    "wrong_token": status(HTTP_AUTHORIZATION="Bearer not-the-token"),
    "token": status(HTTP_AUTHORIZATION="Bearer scrape-token-for-tests-0123456789"),
}))
"""


def test_metrics_under_production_settings_need_the_bearer_token():
    """Issue 13 item 9: /metrics was served to anyone under production settings."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", METRICS_PROBE],
        cwd=ROOT,
        env=_production_env(STATELAB_METRICS_TOKEN="scrape-token-for-tests-0123456789"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    statuses = json.loads(result.stdout.strip().splitlines()[-1])
    assert statuses == {"anonymous": 401, "wrong_token": 401, "token": 200}


@pytest.fixture
def metrics_protected(settings):
    settings.METRICS_PUBLIC = False
    settings.METRICS_TOKEN = "scrape-token-for-tests-0123456789"
    settings.METRICS_ALLOWED_NETWORKS = ["10.1.2.0/24"]
    return settings


@pytest.mark.django_db(databases="__all__")
def test_protected_metrics_refuse_an_anonymous_scrape_with_a_problem(metrics_protected, client):
    response = client.get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "metrics_unauthorized"


@pytest.mark.django_db(databases="__all__")
def test_protected_metrics_serve_the_bearer_token_an_allowed_address_and_a_logged_in_user(
    metrics_protected, client
):
    with_token = client.get(
        "/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-for-tests-0123456789"
    )
    from_allowed = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    forged_address = client.get("/metrics", HTTP_X_FORWARDED_FOR="10.1.2.3")
    client.force_login(UserFactory())
    logged_in = client.get("/metrics")

    assert with_token.status_code == from_allowed.status_code == logged_in.status_code == 200
    assert b"statelab_" in with_token.content
    assert forged_address.status_code == 401
