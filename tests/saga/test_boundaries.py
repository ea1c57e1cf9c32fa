"""What crosses between accounts and ledger: typed messages only. The ledger validates
transfers against its own read model of accounts, fed by accounts' events; accounts watches
its deposits until the ledger acknowledges their journal entries."""

import threading
import time
from dataclasses import fields
from datetime import timedelta

import pytest
from celery import current_app
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AccountOperation, AccountsOutbox
from accounts.services import account_create, deposit_watchdog
from contracts import accounts as account_messages
from contracts import saga as saga_messages
from contracts.base import Message, MessageMalformed
from contracts.saga import DebitAccount
from ledger.directory import known_account_apply
from ledger.models import JournalEntry, KnownAccount, Transfer
from ledger.services import transfer_create
from tests.factories import UserFactory
from tests.saga.conftest import (
    ALL_DATABASES,
    account_announcement_deliver,
    deliver_all,
    deposit,
    redeliver,
)
from tests.saga.factories import AccountFactory

MESSAGE_TYPES = [
    value
    for module in (saga_messages, account_messages)
    for value in vars(module).values()
    if isinstance(value, type) and issubclass(value, Message) and "name" in vars(value)
]


def test_every_message_type_has_its_own_name_and_a_consumer_task():
    import accounts.tasks  # noqa: F401 - registers the consumers
    import ledger.tasks  # noqa: F401

    names = [message.name for message in MESSAGE_TYPES]

    assert len(MESSAGE_TYPES) >= 12
    assert len(set(names)) == len(names)
    assert set(names) <= set(current_app.tasks)


def test_a_message_survives_its_payload_and_refuses_one_missing_a_field():
    command = DebitAccount(transfer_id="t-1", account_id=7, amount=1200, currency="EUR")
    payload = command.to_payload()

    assert DebitAccount.from_payload({**payload, "message_id": "m-1"}) == command
    assert {field.name for field in fields(DebitAccount)} == set(payload)
    with pytest.raises(MessageMalformed, match="amount"):
        DebitAccount.from_payload({key: payload[key] for key in payload if key != "amount"})


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_creating_a_transfer_reads_nothing_from_the_accounts_database():
    user = UserFactory()
    source, destination = AccountFactory(owner_id=user.pk), AccountFactory()

    with CaptureQueriesContext(connections["accounts"]) as accounts_queries:
        transfer_create(
            user_id=user.pk,
            source_id=source.id,
            destination_id=destination.id,
            amount="1.00",
            currency="EUR",
        )

    assert accounts_queries.captured_queries == []
    assert Transfer.objects.using("ledger").count() == 1


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_account_events_arriving_in_any_order_leave_the_newest_snapshot():
    snapshot = {"account_id": 41, "owner_id": 3, "currency": "EUR"}

    assert known_account_apply(**snapshot, status="frozen", version=2)
    assert not known_account_apply(**snapshot, status="active", version=0)
    assert not known_account_apply(**snapshot, status="frozen", version=2)

    known = KnownAccount.objects.using("ledger").get(account_id=41)
    assert (known.status, known.version) == ("frozen", 2)


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_status_change_reaches_the_ledgers_read_model():
    from accounts.services import account_status_set

    account = AccountFactory()
    account_status_set(account_id=account.id, status="frozen")
    deliver_all()

    assert KnownAccount.objects.using("ledger").get(account_id=account.id).status == "frozen"


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_transfer_to_an_account_whose_event_is_still_on_its_way_waits_for_it(settings):
    """The lag between an account's creation and its event reaching the ledger: the request
    waits (up to LEDGER_ACCOUNT_WAIT_S) instead of answering 404 for an account that exists."""
    settings.OUTBOX_PUBLISH_ON_COMMIT = False
    settings.LEDGER_ACCOUNT_WAIT_S = 10
    user = UserFactory()
    source = AccountFactory(owner_id=user.pk)
    late = account_create(owner_id=UserFactory().pk, currency="EUR")

    def deliver_late() -> None:
        time.sleep(0.5)
        try:
            account_announcement_deliver(late)
        finally:
            connections.close_all()

    courier = threading.Thread(target=deliver_late)
    client = APIClient()
    client.force_authenticate(user)
    courier.start()
    response = client.post(
        "/api/transfers/",
        {"source": source.id, "destination": late.id, "amount": "1.00", "currency": "EUR"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="late-account",
    )
    courier.join()

    assert response.status_code == 202, response.json()
    assert Transfer.objects.using("ledger").get().destination_account_id == late.id


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_an_account_the_ledger_never_hears_of_is_a_404_once_the_wait_is_over(settings):
    settings.LEDGER_ACCOUNT_WAIT_S = 0.3
    user = UserFactory()
    source = AccountFactory(owner_id=user.pk)
    unannounced = account_create(owner_id=user.pk, currency="EUR")
    client = APIClient()
    client.force_authenticate(user)

    response = client.post(
        "/api/transfers/",
        {"source": source.id, "destination": unannounced.id, "amount": "1.00", "currency": "EUR"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="never-announced",
    )

    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"
    assert not Transfer.objects.using("ledger").exists()


def _lost_deposit(account) -> AccountOperation:
    """A deposit whose event a worker took from the broker and died with, a minute ago."""
    deposit(account, "40.00")
    operation = AccountOperation.objects.using("accounts").get(account=account, kind="deposit")
    AccountsOutbox.objects.using("accounts").filter(id=operation.deposit_id).update(
        published_at=timezone.now()
    )
    AccountOperation.objects.using("accounts").filter(id=operation.id).update(
        created_at=timezone.now() - timedelta(seconds=60)
    )
    return operation


def _resent_copy_delivered(operation: AccountOperation) -> None:
    """The broker hands the resent event (same message id) to a worker."""
    redeliver(AccountsOutbox.objects.using("accounts").get(id=operation.deposit_id))
    deliver_all()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_accounts_resend_a_deposit_the_ledger_has_not_acknowledged_until_it_does():
    operation = _lost_deposit(AccountFactory())

    resent = deposit_watchdog(stuck_after_s=30, window_s=3600)
    _resent_copy_delivered(operation)

    assert resent == 1
    assert JournalEntry.objects.using("ledger").filter(deposit_id=operation.deposit_id).exists()
    operation.refresh_from_db()
    assert operation.journaled_at is not None
    assert deposit_watchdog(stuck_after_s=30, window_s=3600) == 0


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_deposit_sent_again_after_its_entry_is_acknowledged_again_and_posted_once():
    operation = _lost_deposit(AccountFactory())
    deposit_watchdog(stuck_after_s=30, window_s=3600)
    _resent_copy_delivered(operation)
    AccountOperation.objects.using("accounts").filter(id=operation.id).update(journaled_at=None)

    assert deposit_watchdog(stuck_after_s=30, window_s=3600) == 1
    _resent_copy_delivered(operation)

    assert JournalEntry.objects.using("ledger").filter(deposit_id=operation.deposit_id).count() == 1
    operation.refresh_from_db()
    assert operation.journaled_at is not None
