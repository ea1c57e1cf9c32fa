"""Admin is for staff only, and no password or token ever reaches the logs."""

import logging

import pytest
from rest_framework.test import APIClient

from tests.factories import TEST_PASSWORD, StaffFactory, UserFactory


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
