"""Every error response has one format: RFC 9457 problem details with a stable code."""

import pytest
from django.urls import path
from rest_framework.test import APIClient

from config import urls as project_urls

PROBLEM = "application/problem+json"


def _explode(request):
    raise RuntimeError("boom")


urlpatterns = [path("explode", _explode), *project_urls.urlpatterns]
handler500 = project_urls.handler500


@pytest.fixture
def api_client() -> APIClient:
    client = APIClient()
    client.raise_request_exception = False
    return client


def _assert_problem(response, status: int, code: str) -> dict:
    body = response.json()
    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert body["title"]
    assert body["detail"]
    return body


def test_an_unknown_path_is_a_404_problem(api_client):
    _assert_problem(api_client.get("/no/such/path"), 404, "not_found")


def test_a_wrong_method_on_a_plain_django_view_is_a_405_problem(api_client):
    response = api_client.post("/healthz")

    _assert_problem(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET"


def test_a_wrong_method_on_an_api_view_is_a_405_problem(api_client):
    _assert_problem(api_client.get("/api/auth/token/"), 405, "method_not_allowed")


def test_an_unhandled_exception_is_a_500_problem_without_internals(api_client, settings):
    settings.ROOT_URLCONF = __name__

    body = _assert_problem(api_client.get("/explode"), 500, "server_error")

    assert "boom" not in str(body)


@pytest.mark.django_db
def test_a_validation_error_is_a_400_problem_listing_fields(api_client):
    body = _assert_problem(
        api_client.post("/api/auth/token/", {}, format="json"), 400, "validation_error"
    )

    assert set(body["errors"]) == {"username", "password"}


def test_malformed_json_is_a_400_problem(api_client):
    response = api_client.post("/api/auth/token/", "{not json", content_type="application/json")

    _assert_problem(response, 400, "malformed_request")


def test_an_unsupported_content_type_is_a_415_problem(api_client):
    response = api_client.post("/api/auth/token/", "a=b", content_type="text/plain")

    _assert_problem(response, 415, "unsupported_media_type")


def test_an_unauthenticated_api_call_is_a_401_problem_with_a_challenge(api_client):
    response = api_client.get("/api/auth/whoami/")

    _assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
