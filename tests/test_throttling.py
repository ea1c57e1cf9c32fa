"""Rate limits shared through Redis: 429 with Retry-After past the limit, open if Redis is down."""

import pytest
from rest_framework.test import APIClient

from tests.factories import TEST_PASSWORD, UserFactory
from tests.servers import disposable_redis

TOKEN_URL = "/api/auth/token/"


@pytest.fixture
def limited(settings):
    settings.STATELAB_THROTTLE_RATES = {**settings.STATELAB_THROTTLE_RATES, "auth": "3/min"}
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"throttle-test-{id(settings)}"}
    }
    return settings


def _log_in(client: APIClient, username: str):
    return client.post(TOKEN_URL, {"username": username, "password": TEST_PASSWORD}, format="json")


@pytest.mark.django_db
def test_log_ins_past_the_limit_get_a_429_with_retry_after(limited):
    user = UserFactory()
    client = APIClient()

    statuses = [_log_in(client, user.username).status_code for _ in range(4)]
    refused = _log_in(client, user.username)

    assert statuses == [200, 200, 200, 429]
    assert refused.json()["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60


@pytest.mark.django_db
def test_the_limit_counts_attempts_with_wrong_passwords_too(limited):
    client = APIClient()

    statuses = [
        client.post(TOKEN_URL, {"username": "x", "password": "guess"}, format="json").status_code
        for _ in range(4)
    ]

    assert statuses == [400, 400, 400, 429]


@pytest.mark.django_db
def test_log_ins_go_through_when_the_limiter_redis_is_down(limited, tmp_path):
    user = UserFactory()
    with disposable_redis(tmp_path) as (url, process):
        limited.REDIS_URL = url
        process.terminate()
        process.wait(timeout=10)

        statuses = [_log_in(APIClient(), user.username).status_code for _ in range(5)]

    assert statuses == [200] * 5


@pytest.mark.django_db(databases=["default", "ledger", "accounts"])
def test_transfers_past_the_per_user_limit_get_a_429(settings):
    settings.STATELAB_THROTTLE_RATES = {**settings.STATELAB_THROTTLE_RATES, "transfers": "2/min"}
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"throttle-test-{id(settings)}"}
    }
    client = APIClient()
    client.force_authenticate(UserFactory())

    statuses = [client.post("/api/transfers/", {}, format="json").status_code for _ in range(3)]
    listed = client.get("/api/transfers/")

    assert statuses == [400, 400, 429]
    assert listed.status_code == 200


def _wrong_log_in(client: APIClient, forwarded_for: str):
    return client.post(
        TOKEN_URL,
        {"username": "victim", "password": "guess"},
        format="json",
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )


@pytest.fixture
def production_rate(settings):
    settings.STATELAB_THROTTLE_RATES = {**settings.STATELAB_THROTTLE_RATES, "auth": "30/min"}
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"throttle-test-{id(settings)}"}
    }
    return settings


@pytest.mark.django_db
def test_a_fresh_forged_x_forwarded_for_per_attempt_does_not_escape_the_log_in_limit(
    production_rate,
):
    """Issue 13 item 9: no proxy in front (the default), so the header is the client's own
    words; the address is the connection's."""
    client = APIClient()

    statuses = [_wrong_log_in(client, f"203.0.113.{n}").status_code for n in range(45)]

    assert 429 in statuses
    assert statuses.index(429) == 30


@pytest.mark.django_db
def test_behind_one_trusted_proxy_the_address_it_appended_is_the_client(production_rate):
    production_rate.STATELAB_TRUSTED_PROXIES = 1
    client = APIClient()

    forged = [_wrong_log_in(client, f"203.0.113.{n}, 198.51.100.7").status_code for n in range(31)]
    another_client = _wrong_log_in(client, "198.51.100.8")

    assert forged[-1] == 429
    assert another_client.status_code == 400
