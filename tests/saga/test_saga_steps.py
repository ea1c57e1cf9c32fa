"""Every transition of the saga, driven step by step in this process through the same task
functions a worker runs, on the real accounts and ledger databases."""

import pytest
from django.db import IntegrityError, connections, transaction

from accounts.models import AccountOperation
from accounts.services import account_status_set
from audit.reconciliation import reconciliation_report
from core.faults import faults_set
from ledger.models import JournalEntry, Posting, Transfer
from ledger.services import IllegalTransition, transfer_create, transfer_transition
from tests.factories import UserFactory
from tests.saga.conftest import (
    ALL_DATABASES,
    balance,
    deliver,
    deliver_all,
    deposit,
    redeliver,
    refreshed,
    undelivered,
)
from tests.saga.factories import AccountFactory

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)
State = Transfer.State


@pytest.fixture
def alice():
    return UserFactory()


@pytest.fixture
def source(alice):
    account = AccountFactory(owner_id=alice.pk)
    deposit(account, "100.00")
    deliver_all()
    return account


@pytest.fixture
def destination():
    return AccountFactory()


def _transfer(alice, source, destination, amount="30.00") -> Transfer:
    return transfer_create(
        user_id=alice.pk,
        source_id=source.id,
        destination_id=destination.id,
        amount=amount,
        currency="EUR",
    )


def _step() -> str:
    """Deliver the oldest undelivered message; return its task name."""
    using, row = undelivered()[0]
    deliver(using, row)
    return row.task


def _history(transfer: Transfer) -> list[tuple[str, str]]:
    return list(transfer.transitions.values_list("from_state", "to_state"))


def test_a_new_transfer_is_pending_with_a_debit_command_in_the_ledger_outbox(
    alice, source, destination
):
    transfer = _transfer(alice, source, destination)

    assert refreshed(transfer).state == State.PENDING
    assert [row.task for _, row in undelivered()] == ["accounts.debit"]
    assert _history(transfer) == [("", "pending")]


def test_the_debit_moves_pending_to_debited_and_sends_the_credit(alice, source, destination):
    transfer = _transfer(alice, source, destination)

    assert _step() == "accounts.debit"
    assert _step() == "ledger.on_debited"

    assert refreshed(transfer).state == State.DEBITED
    assert balance(source) == 7000
    assert [row.task for _, row in undelivered()] == ["accounts.credit"]


def test_the_credit_moves_debited_through_credited_to_completed_with_one_journal_entry(
    alice, source, destination
):
    transfer = _transfer(alice, source, destination)

    deliver_all()

    transfer = refreshed(transfer)
    assert transfer.state == State.COMPLETED
    assert _history(transfer) == [
        ("", "pending"),
        ("pending", "debited"),
        ("debited", "credited"),
        ("credited", "completed"),
    ]
    assert (balance(source), balance(destination)) == (7000, 3000)
    entry = JournalEntry.objects.using("ledger").get(transfer_id=transfer.id)
    assert sorted(entry.postings.values_list("account_id", "amount")) == sorted(
        [(source.id, -3000), (destination.id, 3000)]
    )
    assert transfer.notified_at is not None


def test_insufficient_funds_moves_pending_to_failed_and_touches_no_balance(
    alice, source, destination
):
    transfer = _transfer(alice, source, destination, amount="100.01")

    deliver_all()

    transfer = refreshed(transfer)
    assert transfer.state == State.FAILED
    assert transfer.failure_reason == "insufficient_funds"
    assert balance(source) == 10000
    assert (
        not AccountOperation.objects.using("accounts")
        .filter(transfer_id=transfer.id, applied=True)
        .exists()
    )


def test_a_frozen_source_fails_the_transfer_before_the_debit(alice, source, destination):
    account_status_set(account_id=source.id, status="frozen")
    transfer = _transfer(alice, source, destination)

    deliver_all()

    assert refreshed(transfer).state == State.FAILED
    assert refreshed(transfer).failure_reason == "account_frozen"


def test_a_failed_credit_compensates_debited_to_compensated_and_refunds_the_source(
    alice, source, destination
):
    faults_set(values={"saga_credit_failure_rate": 1.0}, actor="test")
    transfer = _transfer(alice, source, destination)

    deliver_all()

    transfer = refreshed(transfer)
    assert transfer.state == State.COMPENSATED
    assert _history(transfer)[-3:] == [
        ("pending", "debited"),
        ("debited", "compensating"),
        ("compensating", "compensated"),
    ]
    assert transfer.failure_reason == "credit_fault_injected"
    assert (balance(source), balance(destination)) == (10000, 0)
    assert not JournalEntry.objects.using("ledger").filter(transfer_id=transfer.id).exists()


def test_a_closed_destination_is_compensated(alice, source, destination):
    account_status_set(account_id=destination.id, status="closed")
    transfer = _transfer(alice, source, destination)

    deliver_all()

    assert refreshed(transfer).state == State.COMPENSATED
    assert refreshed(transfer).failure_reason == "account_closed"


def test_the_refund_reaches_a_source_frozen_after_the_debit(alice, source, destination):
    faults_set(values={"saga_credit_failure_rate": 1.0}, actor="test")
    transfer = _transfer(alice, source, destination)
    _step(), _step()
    account_status_set(account_id=source.id, status="frozen")

    deliver_all()

    assert refreshed(transfer).state == State.COMPENSATED
    assert balance(source) == 10000


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (State.PENDING, State.COMPLETED),
        (State.PENDING, State.CREDITED),
        (State.PENDING, State.COMPENSATING),
        (State.DEBITED, State.FAILED),
        (State.DEBITED, State.COMPLETED),
        (State.CREDITED, State.COMPENSATING),
        (State.COMPLETED, State.COMPENSATING),
        (State.FAILED, State.DEBITED),
        (State.COMPENSATED, State.COMPLETED),
    ],
)
def test_an_illegal_transition_is_refused_by_the_service(alice, source, destination, start, target):
    transfer = _transfer(alice, source, destination)
    transfer.state = start

    with pytest.raises(IllegalTransition):
        transfer_transition(transfer=transfer, to_state=target, actor="test")

    assert refreshed(transfer).state == State.PENDING
    assert transfer.transitions.count() == 1


def test_an_illegal_transition_is_refused_by_the_database_too(alice, source, destination):
    transfer = _transfer(alice, source, destination)

    with (
        pytest.raises(IntegrityError, match="illegal transfer transition"),
        transaction.atomic(using="ledger"),
    ):
        Transfer.objects.using("ledger").filter(id=transfer.id).update(state=State.COMPLETED)


def test_the_journal_refuses_updates_and_deletes(alice, source, destination):
    posting = Posting.objects.using("ledger").filter(account_id=source.id).first()

    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(using="ledger"):
        Posting.objects.using("ledger").filter(id=posting.id).update(amount=1)
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(using="ledger"),
        connections["ledger"].cursor() as cursor,
    ):
        cursor.execute("DELETE FROM ledger_journalentry WHERE id = %s", [posting.entry_id])


def test_the_database_refuses_an_unbalanced_journal_entry():
    sid = transaction.savepoint(using="ledger")
    entry = JournalEntry.objects.using("ledger").create(kind="deposit", currency="EUR")
    Posting.objects.using("ledger").create(entry=entry, account_id=None, amount=-5, currency="EUR")
    Posting.objects.using("ledger").create(entry=entry, account_id=1, amount=4, currency="EUR")

    with pytest.raises(IntegrityError, match="unbalanced"):
        _constraints_checked_now()
    transaction.savepoint_rollback(sid, using="ledger")


def _constraints_checked_now() -> None:
    """Run the deferred constraint triggers now, as COMMIT would."""
    with connections["ledger"].cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_a_redelivered_debit_does_nothing(alice, source, destination):
    transfer = _transfer(alice, source, destination)
    using, debit = undelivered()[0]
    deliver(using, debit)

    redeliver(debit)
    redeliver(debit)

    assert balance(source) == 7000
    assert AccountOperation.objects.using("accounts").filter(transfer_id=transfer.id).count() == 1
    assert [row.task for _, row in undelivered()] == ["ledger.on_debited"]


def test_a_redriven_debit_with_a_new_message_id_repeats_the_recorded_outcome(
    alice, source, destination
):
    from ledger.services import saga_redrive

    transfer = _transfer(alice, source, destination)
    _step()
    saga_redrive(transfer_id=transfer.id, actor="test")

    deliver_all()

    assert refreshed(transfer).state == State.COMPLETED
    assert balance(source) == 7000
    assert (
        AccountOperation.objects.using("accounts")
        .filter(transfer_id=transfer.id, kind="debit")
        .count()
        == 1
    )


def test_a_refund_that_arrives_before_its_debit_is_applied_fails_and_leaves_no_trace(
    alice, source, destination
):
    from accounts.models import AccountsInbox
    from accounts.services import RefundWithoutDebit, account_refund

    transfer = _transfer(alice, source, destination)

    with pytest.raises(RefundWithoutDebit):
        account_refund(
            message_id="00000000-0000-0000-0000-000000000001",
            transfer_id=str(transfer.id),
            account_id=source.id,
            amount=3000,
            currency="EUR",
        )

    assert (
        not AccountsInbox.objects.using("accounts")
        .filter(message_id="00000000-0000-0000-0000-000000000001")
        .exists()
    )
    assert balance(source) == 10000


def test_the_refund_task_retries_without_limit_and_the_debit_a_bounded_number_of_times():
    from django.db import OperationalError

    from accounts.services import RefundWithoutDebit
    from accounts.tasks import debit, refund

    assert refund.max_retries is None
    assert {OperationalError, RefundWithoutDebit} <= set(refund.retry_on)
    assert debit.max_retries == 12
    assert RefundWithoutDebit not in debit.retry_on


def test_the_watchdog_redrives_only_sagas_stuck_longer_than_the_bound(alice, source, destination):
    from datetime import timedelta

    from django.utils import timezone

    from ledger.services import saga_watchdog

    stuck = _transfer(alice, source, destination, amount="1.00")
    fresh = _transfer(alice, source, destination, amount="2.00")
    Transfer.objects.using("ledger").filter(id=stuck.id).update(
        driven_at=timezone.now() - timedelta(seconds=60)
    )

    assert saga_watchdog(stuck_after_s=30) == 1

    assert refreshed(stuck).redrive_count == 1
    assert refreshed(fresh).redrive_count == 0
    deliver_all()
    assert refreshed(stuck).state == refreshed(fresh).state == State.COMPLETED
    assert balance(source) == 10000 - 300


def test_the_watchdog_waits_longer_after_each_redrive_of_one_step(alice, source, destination):
    from datetime import timedelta

    from django.utils import timezone

    from ledger.services import saga_watchdog

    now = timezone.now()
    # Both entered their state 100 s ago. One was re-driven after 60 s in it and has waited
    # 40 s since: it waits 60 s this time. The other was re-driven after 30 s and has waited
    # 70 s since: due.
    backing_off = _transfer(alice, source, destination, amount="1.00")
    due = _transfer(alice, source, destination, amount="2.00")
    for transfer, driven_ago in ((backing_off, 40), (due, 70)):
        Transfer.objects.using("ledger").filter(id=transfer.id).update(
            updated_at=now - timedelta(seconds=100),
            driven_at=now - timedelta(seconds=driven_ago),
            redrive_count=1,
        )

    assert saga_watchdog(stuck_after_s=30) == 1

    assert refreshed(backing_off).redrive_count == 1
    assert refreshed(due).redrive_count == 2


def test_a_destination_deleted_after_the_request_is_compensated(alice, source, destination):
    from accounts.models import Account

    transfer = _transfer(alice, source, destination)
    Account.objects.using("accounts").filter(id=destination.id).delete()

    deliver_all()

    assert refreshed(transfer).state == State.COMPENSATED
    assert refreshed(transfer).failure_reason == "account_not_found"
    assert balance(source) == 10000


def test_money_is_conserved_between_the_debit_and_the_ledger_hearing_of_it(
    alice, source, destination
):
    transfer = _transfer(alice, source, destination)
    assert _step() == "accounts.debit"

    money = reconciliation_report()["money_conserved"]["currencies"][0]

    assert refreshed(transfer).state == State.PENDING
    assert money["held_in_transfers"] == 3000
    assert money["ok"]
