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
