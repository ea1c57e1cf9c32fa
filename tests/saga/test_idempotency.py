"""POST /api/transfers/ and the Idempotency-Key header (IETF draft semantics)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from ledger.models import Transfer, TransferIdempotencyKey
from tests.factories import UserFactory
from tests.saga.conftest import ALL_DATABASES, deliver_all, deposit
from tests.saga.factories import AccountFactory

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


@pytest.fixture
def alice():
    return UserFactory()


@pytest.fixture
def client(alice):
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def body(alice):
    source = AccountFactory(owner_id=alice.pk)
    deposit(source, "50.00")
    deliver_all()
    return {
        "source": source.id,
        "destination": AccountFactory().id,
        "amount": "5.00",
        "currency": "EUR",
    }


def _post(client, body, key):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post("/api/transfers/", body, format="json", **headers)


def _transfers() -> int:
    return Transfer.objects.using("ledger").count()


def test_a_missing_key_is_a_400(client, body):
    response = _post(client, body, None)

    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_missing"
    assert _transfers() == 0


@pytest.mark.parametrize("key", ["", "   ", "k" * 256, "tab\there"])
def test_a_malformed_key_is_a_400(client, body, key):
    response = _post(client, body, key)

    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"


def test_the_same_key_and_body_replays_the_stored_response_without_a_second_transfer(client, body):
    first = _post(client, body, "abc")
    deliver_all()

    again = _post(client, body, "abc")

    assert again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert _transfers() == 1


def test_the_same_key_with_another_body_is_a_422(client, body):
    _post(client, body, "abc")

    response = _post(client, {**body, "amount": "6.00"}, "abc")

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert _transfers() == 1


def test_the_same_key_while_the_first_request_runs_is_a_409(alice, client, body):
    from core.idempotency import request_fingerprint

    TransferIdempotencyKey.objects.using("ledger").create(
        user_id=alice.pk,
        key="abc",
        fingerprint=request_fingerprint(method="POST", path="/api/transfers/", body=body),
        expires_at=timezone.now() + timedelta(days=1),
    )

    response = _post(client, body, "abc")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_progress"
    assert _transfers() == 0


def test_keys_are_scoped_per_user(client, body):
    _post(client, body, "shared-key")
    bob = UserFactory()
    bob_source = AccountFactory(owner_id=bob.pk)
    deposit(bob_source, "9.00")
    bobs_client = APIClient()
    bobs_client.force_authenticate(bob)

    response = _post(bobs_client, {**body, "source": bob_source.id}, "shared-key")

    assert response.status_code == 202
    assert _transfers() == 2


def test_a_key_is_kept_at_least_24_hours(client, body):
    _post(client, body, "abc")

    key = TransferIdempotencyKey.objects.using("ledger").get(key="abc")

    assert key.expires_at - key.created_at >= timedelta(hours=24)


def test_an_expired_key_can_be_used_again(client, body):
    _post(client, body, "abc")
    TransferIdempotencyKey.objects.using("ledger").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = _post(client, {**body, "amount": "7.00"}, "abc")

    assert response.status_code == 202
    assert _transfers() == 2


def test_a_refused_request_releases_its_key(client, body):
    refused = _post(client, {**body, "amount": "0"}, "abc")

    accepted = _post(client, {**body, "amount": "0"}, "abc")

    assert refused.status_code == accepted.status_code == 400
    assert not TransferIdempotencyKey.objects.using("ledger").exists()


def test_expired_keys_are_purged():
    from core.idempotency import idempotency_keys_purge

    TransferIdempotencyKey.objects.using("ledger").create(
        user_id=1, key="old", fingerprint="f", expires_at=timezone.now() - timedelta(seconds=1)
    )
    TransferIdempotencyKey.objects.using("ledger").create(
        user_id=1, key="new", fingerprint="f", expires_at=timezone.now() + timedelta(days=1)
    )

    assert idempotency_keys_purge(model=TransferIdempotencyKey, using="ledger") == 1
    assert list(TransferIdempotencyKey.objects.using("ledger").values_list("key", flat=True)) == [
        "new"
    ]
