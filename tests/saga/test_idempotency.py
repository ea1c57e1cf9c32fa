"""POST /api/transfers/ and the Idempotency-Key header (IETF draft semantics)."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AccountOperation
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


@contextmanager
def _table_locked(table: str) -> Iterator[None]:
    """A second connection holds ``LOCK TABLE .. IN EXCLUSIVE MODE`` (inserts wait) until the
    block ends: a request stalled in a lock wait, as by a long migration or a stuck session."""
    locker = connections.create_connection("ledger")
    try:
        locker.set_autocommit(False)
        with locker.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        yield
    finally:
        locker.rollback()
        locker.close()


class _Request(threading.Thread):
    """One POST in a thread of its own (its own database connections), so that the test can
    go on while it waits on a lock."""

    def __init__(self, user, body: dict, key: str) -> None:
        super().__init__(daemon=True)
        self.user, self.body, self.key = user, body, key
        self.response = None

    def run(self) -> None:
        client = APIClient()
        client.force_authenticate(self.user)
        try:
            self.response = _post(client, self.body, self.key)
        finally:
            connections.close_all()


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_retry_while_the_first_request_is_stalled_creates_no_second_transfer(
    settings, alice, client, body
):
    """Issue 13 item 1: the first request stalls in a lock wait past what used to be the
    stale window, the retry comes; whatever the timing, one transfer, one debit, the retry
    told 409, and the stored response once the first has committed."""
    # The takeover window of the former scheme, shrunk: should one come back, it fails here.
    settings.IDEMPOTENCY_STALE_IN_PROGRESS_S = 0.5
    settings.OUTBOX_PUBLISH_ON_COMMIT = False
    with _table_locked("ledger_transfer"):
        first = _Request(alice, body, "K")
        first.start()
        time.sleep(1.5)
        retry = _Request(alice, body, "K")
        retry.start()
        retry.join(timeout=3)
    first.join(timeout=30)
    retry.join(timeout=30)
    deliver_all()
    again = _post(client, body, "K")

    assert _transfers() == 1
    assert AccountOperation.objects.using("accounts").filter(kind="debit").count() == 1
    assert first.response.status_code == 202
    assert retry.response.status_code == 409
    assert retry.response.json()["code"] == "idempotency_key_in_progress"
    assert again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.response.json()["id"]


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_request_that_waits_on_a_lock_past_the_lock_timeout_is_a_503_and_frees_its_key(
    settings, alice, client, body
):
    settings.IDEMPOTENCY_LOCK_TIMEOUT_S = 0.5
    settings.OUTBOX_PUBLISH_ON_COMMIT = False
    with _table_locked("ledger_transfer"):
        stalled = _Request(alice, body, "K")
        stalled.start()
        stalled.join(timeout=5)
        assert not stalled.is_alive(), "the request waited on the lock for good"

    retried = _post(client, body, "K")

    assert stalled.response.status_code == 503
    assert stalled.response.json()["code"] == "database_timeout"
    assert retried.status_code == 202
    assert _transfers() == 1
