"""Hostile bodies get a 4xx problem document with a stable code, never a 500, and write nothing."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from core.models import FaultSwitch
from tests.factories import StaffFactory

TOKEN_URL = "/api/auth/token/"


@pytest.fixture
def api_client() -> APIClient:
    client = APIClient()
    client.raise_request_exception = False
    return client


@pytest.fixture
def staff_client(api_client) -> APIClient:
    api_client.force_authenticate(StaffFactory())
    return api_client


HOSTILE_BODIES = [
    (b'{"username": "a\\u0000b", "password": "x"}', 400, "nul_character"),
    (b'{"username": "\xff\xfe", "password": "x"}', 400, "invalid_encoding"),
    (b"[" * 5000 + b"]" * 5000, 400, "too_deeply_nested"),
    (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", 400, "too_deeply_nested"),
    (b'{"username": NaN}', 400, "invalid_number"),
    (b'{"username": -Infinity}', 400, "invalid_number"),
    (b'{"username": 9223372036854775808}', 400, "number_out_of_range"),
    (b'{"username": 1' + b"0" * 5000 + b"}", 400, "number_out_of_range"),
    (b'{"username": 1e400}', 400, "number_out_of_range"),
    (b'{"username": "a", ', 400, "malformed_request"),
    (b"", 400, "validation_error"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    HOSTILE_BODIES,
    ids=[
        "nul",
        "invalid-utf8",
        "deep-array",
        "deep-object",
        "nan",
        "infinity",
        "int64-overflow",
        "huge-integer",
        "float-overflow",
        "truncated",
        "empty",
    ],
)
def test_a_hostile_body_is_a_4xx_problem_with_its_code(api_client, body, status, code):
    response = api_client.generic("POST", TOKEN_URL, body, content_type="application/json")

    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


@pytest.mark.django_db
def test_a_body_over_the_size_limit_is_a_413_problem(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = b'{"username": "' + b"a" * 2000 + b'", "password": "x"}'

    response = api_client.generic("POST", TOKEN_URL, body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_wrong_content_type_is_a_415_problem(api_client, content_type):
    response = api_client.generic(
        "POST", TOKEN_URL, b"username=a&password=b", content_type=content_type
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@pytest.mark.django_db
def test_a_hostile_body_writes_no_row(staff_client):
    before = FaultSwitch.objects.count()

    response = staff_client.generic(
        "PATCH", "/api/faults/", b'{"crash_points": ["a\\u0000"]}', content_type="application/json"
    )

    assert response.status_code == 400
    assert FaultSwitch.objects.count() == before


@pytest.mark.django_db
def test_a_username_with_a_unicode_confusable_does_not_log_in_as_the_real_user(api_client):
    get_user_model().objects.create_user("admin", password="the-real-password-1")

    response = api_client.post(
        TOKEN_URL, {"username": "\u0430dmin", "password": "the-real-password-1"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
