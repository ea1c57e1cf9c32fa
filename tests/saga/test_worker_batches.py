"""Batches in a real Celery worker process (with beat's sweep and watchdog) on the Redis
broker: a pool process killed at each crash point of the batch path, and a lone transfer that
the batch window does not hold back."""

import pytest

from accounts.models import AccountOperation, AccountsOutbox
from audit.reconciliation import reconciliation_report
from contracts.saga import AccountDebited
from ledger.models import Transfer
from tests.factories import UserFactory
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
def batch_worker(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("batch-worker")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STATELAB_SAGA_STUCK_AFTER_S", "3")
        broker_purge()
        with (
            celery_worker(tmp_path, concurrency=2, name="batches") as worker,
            celery_beat(tmp_path),
        ):
            yield worker


@pytest.fixture
def funded(batch_worker):
    owner = UserFactory()
    source = AccountFactory(owner_id=owner.pk)
    deposit(source, "100.00")
    return owner, source, AccountFactory()


def _transfer(owner, source, destination, amount: str = "10.00") -> Transfer:
    return transfer_requested(owner, source, destination, amount)


@pytest.mark.parametrize(
    "point",
    [
        "accounts_batch_before_commit",
        "after_debit_commit",
        "consumer_batch_before_ack",
        "ledger_batch_before_commit",
    ],
)
def test_a_pool_process_killed_in_the_batch_path_loses_and_repeats_nothing(
    batch_worker, funded, point
):
    """Before the commit: the batch rolls back and its messages come back at once. After it,
    before the replies are published: the sweep publishes them (and the messages that come
    back are dropped by the inbox). After the publish, before the ack: the same, without the
    sweep."""
    owner, source, destination = funded
    crashes_before = batch_worker.children_killed()
    faults_set_everywhere({"crash_points": [point]})
    try:
        transfer = _transfer(owner, source, destination)
        crashed = wait_until(lambda: batch_worker.children_killed() > crashes_before, timeout_s=30)
    finally:
        faults_set_everywhere({"crash_points": []})

    assert crashed, f"no pool process reached {point}"
    assert wait_until(lambda: refreshed(transfer).state == State.COMPLETED, timeout_s=60), (
        refreshed(transfer).state
    )
    operations = AccountOperation.objects.using("accounts").filter(transfer_id=transfer.id)
    assert sorted(operations.values_list("kind", "applied")) == [
        ("credit", True),
        ("debit", True),
    ]
    assert (balance(source), balance(destination)) == (9000, 1000)
    debited = AccountsOutbox.objects.using("accounts").filter(
        task=AccountDebited.name, payload__transfer_id=str(transfer.id)
    )
    assert debited.filter(published_at__isnull=False).exists()
    assert wait_until(lambda: reconciliation_report()["ok"], timeout_s=15)


def test_a_lone_transfer_is_not_held_back_by_the_batch_window(funded):
    """Nothing else in flight: every step's batch is one message, handed over when the window
    (a few milliseconds) ends. A generous bound (a loaded 2-core machine stretches the steps),
    below what a window of two seconds would cost over the five steps; a functional check, not
    a benchmark."""
    owner, source, destination = funded

    transfer = _transfer(owner, source, destination)

    assert wait_until(lambda: refreshed(transfer).state == State.COMPLETED, timeout_s=30)
    done = refreshed(transfer)
    assert (done.completed_at - done.created_at).total_seconds() < 10
