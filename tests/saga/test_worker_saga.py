"""The saga end to end: a real Celery worker process and a real beat process on the Redis
broker, the test databases, and the REST API."""

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AccountsOutbox
from accounts.services import account_deposit
from ledger.models import JournalEntry, Transfer
from tests.factories import StaffFactory, UserFactory
from tests.saga.conftest import (
    ALL_DATABASES,
    balance,
    broker_purge,
    celery_beat,
    deposit,
    faults_set_everywhere,
    refreshed,
    transfer_requested,
    wait_until,
)
from tests.saga.factories import AccountFactory
from tests.workers import celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)]
State = Transfer.State


@pytest.fixture(scope="module")
def saga_processes(tmp_path_factory):
    """One worker and one beat for the module (starting them costs seconds)."""
    tmp_path = tmp_path_factory.mktemp("saga-worker")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STATELAB_SAGA_STUCK_AFTER_S", "3")
        broker_purge()
        with celery_worker(tmp_path, concurrency=2, name="saga") as worker, celery_beat(tmp_path):
            yield worker


@pytest.fixture
def alice():
    return UserFactory()


@pytest.fixture
def accounts(alice, saga_processes):
    source = AccountFactory(owner_id=alice.pk)
    destination = AccountFactory()
    deposit(source, "100.00")
    return source, destination


def _settled(transfer: Transfer, state: str, timeout_s: float = 30) -> Transfer:
    assert wait_until(lambda: refreshed(transfer).state == state, timeout_s=timeout_s), refreshed(
        transfer
    ).state
    return refreshed(transfer)


def _reconciled() -> dict:
    client = APIClient()
    client.force_authenticate(StaffFactory())
    report: dict = {}

    def ok() -> bool:
        report.update(client.get("/api/ledger/reconciliation/").json())
        return report["ok"]

    wait_until(ok, timeout_s=15)
    return report


def test_a_transfer_completes_and_the_journal_explains_both_balances(alice, accounts):
    source, destination = accounts

    transfer = _settled(transfer_requested(alice, source, destination, "40.00"), State.COMPLETED)

    assert (balance(source), balance(destination)) == (6000, 4000)
    assert wait_until(lambda: refreshed(transfer).notified_at is not None, timeout_s=15)
    assert _reconciled()["ok"] is True


def test_a_transfer_whose_credit_fails_is_compensated_and_the_source_gets_its_money_back(
    alice, accounts
):
    source, destination = accounts
    faults_set_everywhere({"saga_credit_failure_rate": 1.0})

    transfer = _settled(transfer_requested(alice, source, destination, "40.00"), State.COMPENSATED)

    assert [step.to_state for step in transfer.transitions.all()] == [
        "pending",
        "debited",
        "compensating",
        "compensated",
    ]
    assert (balance(source), balance(destination)) == (10000, 0)
    assert _reconciled()["ok"] is True


def test_a_transfer_beyond_the_balance_fails_and_moves_no_money(alice, accounts):
    source, destination = accounts

    transfer = _settled(transfer_requested(alice, source, destination, "100.01"), State.FAILED)

    assert transfer.failure_reason == "insufficient_funds"
    assert (balance(source), balance(destination)) == (10000, 0)
    assert _reconciled()["ok"] is True


def test_with_the_notification_service_down_the_money_still_moves_and_the_notice_follows(
    alice, accounts
):
    source, destination = accounts
    faults_set_everywhere({"saga_notification_down": True})

    transfer = _settled(transfer_requested(alice, source, destination, "25.00"), State.COMPLETED)

    assert (balance(source), balance(destination)) == (7500, 2500)
    assert not wait_until(lambda: refreshed(transfer).notified_at is not None, timeout_s=2)
    faults_set_everywhere({"saga_notification_down": False})
    assert wait_until(lambda: refreshed(transfer).notified_at is not None, timeout_s=30)
    assert _reconciled()["ok"] is True


def test_a_deposit_event_that_died_with_its_worker_is_sent_again_and_journaled(
    settings, saga_processes
):
    account = AccountFactory()
    settings.OUTBOX_PUBLISH_ON_COMMIT = False
    with transaction.atomic(using="accounts"):
        operation = account_deposit(account_id=account.id, amount="40.00")
        # Taken from the broker by a worker that was then SIGKILLed: published, never applied.
        AccountsOutbox.objects.using("accounts").filter(id=operation.deposit_id).update(
            published_at=timezone.now(), publish_count=1
        )

    assert wait_until(
        lambda: (
            JournalEntry.objects.using("ledger").filter(deposit_id=operation.deposit_id).exists()
        ),
        timeout_s=30,
    )
    assert _reconciled()["ok"] is True


def test_a_deposit_journaled_by_a_worker_killed_before_its_ack_is_journaled_once(
    saga_processes,
):
    account = AccountFactory()
    worker = saga_processes
    crashes_before = worker.children_killed()
    faults_set_everywhere({"crash_points": ["after_deposit_journal_commit"]})
    try:
        operation = account_deposit(account_id=account.id, amount="40.00")
        crashed = wait_until(lambda: worker.children_killed() > crashes_before, timeout_s=20)
    finally:
        faults_set_everywhere({"crash_points": []})

    assert crashed, "the worker never reached the crash point"
    entries = JournalEntry.objects.using("ledger").filter(deposit_id=operation.deposit_id)
    assert entries.count() == 1
    assert _reconciled()["ok"] is True
