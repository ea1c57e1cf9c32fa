"""Liveness, readiness, metrics, API docs, token auth."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import TEST_PASSWORD, UserFactory
from tests.servers import disposable_redis

ALL = "__all__"


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def test_healthz_answers_without_touching_any_database(api_client):
    response = api_client.get("/healthz")  # no django_db mark: a query would raise

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(databases=ALL)
def test_readyz_lists_every_database_alias_redis_and_the_broker(api_client, settings):
    response = api_client.get("/readyz")

    checks = response.json()["checks"]
    assert response.status_code == 200
    assert {f"database:{alias}" for alias in settings.DATABASES} <= set(checks)
    assert {"redis", "celery_broker"} <= set(checks)
    assert all(check["ok"] for check in checks.values())


@pytest.mark.django_db(databases=ALL)
def test_readyz_reports_the_replica_replay_position_and_lag(api_client):
    replica = api_client.get("/readyz").json()["checks"]["database:replica_1"]

    assert replica["replay_lsn"].count("/") == 1
    assert replica["lag_bytes"] >= 0
    assert replica["lag_seconds"] >= 0


@pytest.mark.django_db(databases=ALL)
def test_readyz_is_503_naming_redis_when_redis_is_stopped(api_client, settings, tmp_path):
    with disposable_redis(tmp_path) as (url, process):
        settings.REDIS_URL = url
        assert api_client.get("/readyz").status_code == 200
        process.terminate()
        process.wait(timeout=10)

        response = api_client.get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert body["code"] == "dependency_down"
    assert body["down"] == ["redis"]
    assert "redis" in body["detail"]


@pytest.mark.django_db(databases=ALL)
def test_metrics_expose_requests_database_aliases_and_replica_lag(api_client):
    api_client.get("/readyz")

    text = api_client.get("/metrics").content.decode()

    assert "django_http_requests_total_by_method_total" in text
    assert 'django_db_execute_total{alias="accounts",vendor="postgresql"}' in text
    assert 'statelab_replica_lag_bytes{replica="replica_1"}' in text
    assert 'statelab_replica_up{replica="replica_1"} 1.0' in text


def test_the_openapi_schema_is_served(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert response.json()["info"]["title"] == "statelab API"
    assert "/api/auth/token/" in response.json()["paths"]


def test_swagger_ui_is_served_without_a_cdn(api_client):
    response = api_client.get("/api/docs/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "swagger-ui" in page
    assert "cdn.jsdelivr" not in page
    assert "unpkg.com" not in page


@pytest.mark.django_db
def test_a_user_gets_a_token_for_valid_credentials_and_can_use_it(api_client):
    user = UserFactory()

    token = api_client.post(
        reverse("auth-token"), {"username": user.username, "password": TEST_PASSWORD}, format="json"
    ).json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert api_client.get("/api/auth/whoami/").json()["username"] == user.username


@pytest.mark.django_db
def test_admin_login_page_is_served(client):
    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert b"Django administration" in response.content or b"statelab" in response.content


@pytest.mark.django_db
def test_staff_can_log_in_to_the_admin(client):
    staff = UserFactory(username="staffer", is_staff=True, is_superuser=True)
    client.force_login(staff)

    assert client.get("/admin/").status_code == 200
