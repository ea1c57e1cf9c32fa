"""The transfer saga's orchestration (database alias ``ledger``).

Every step is one transaction on ``ledger``: it records the incoming message in the inbox,
moves the transfer through a legal transition (with a history row), and writes the next command
to the outbox. Commands and events travel only as outbox rows -> relay -> Celery tasks.

    pending --debit--> debited --credit--> credited --journal--> completed --notify
       \\--debit_rejected--> failed
                           debited --credit_failed--> compensating --refund--> compensated
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from contracts.accounts import DepositJournaled
from contracts.saga import CreditAccount, DebitAccount, RefundAccount, TransferStep
from core.errors import DomainError
from core.faults import fault_sleep, fault_value
from core.metrics import inbox_redeliveries_ignored, step_timer
from core.money import amount_parse, currency_minor_digits
from core.outbox import (
    consumer_crash_point,
    crash_after_commit,
    inbox_accept,
    outbox_message_put,
    outbox_put,
)
from core.request_id import request_id_bound
from ledger import metrics
from ledger.directory import AccountNotFound, known_accounts_get
from ledger.models import JournalEntry, LedgerInbox, Posting, Transfer, TransferTransition

logger = logging.getLogger(__name__)
DB = "ledger"
State = Transfer.State

# The notification is the ledger's own message: it never leaves the ledger.
COMMAND_NOTIFY = "ledger.notify"

CONSUMER_NOTIFY = "notify"
CONSUMER_DEPOSITED = "on_deposited"
CRASH_AFTER_TRANSITION = "after_ledger_transition_commit"
CRASH_AFTER_NOTIFY = consumer_crash_point(CONSUMER_NOTIFY)
CRASH_AFTER_DEPOSIT_JOURNAL = "after_deposit_journal_commit"
CRASH_POINTS = (CRASH_AFTER_TRANSITION, CRASH_AFTER_NOTIFY, CRASH_AFTER_DEPOSIT_JOURNAL)


class IllegalTransition(DomainError):
    code = "illegal_transition"
    status = 409
    title = "Illegal transfer state transition"


class TransferNotFound(DomainError):
    code = "transfer_not_found"
    status = 404
    title = "Transfer not found"


class SameAccount(DomainError):
    code = "same_account"
    title = "Source and destination are the same account"


class CurrencyMismatch(DomainError):
    code = "currency_mismatch"
    title = "Currency does not match the accounts"


class NotificationUnavailable(RuntimeError):
    """The notification service is down (fault ``saga_notification_down``): retried."""


def transfer_transition(*, transfer: Transfer, to_state: str, actor: str, reason: str = "") -> None:
    """Move a locked transfer to ``to_state`` and record who, when and why.

    Only the moves in ``Transfer.TRANSITIONS`` are possible; the database trigger
    ``ledger_transfer_transition_guard`` refuses any other, should code ever try."""
    allowed = Transfer.TRANSITIONS.get(transfer.state, frozenset())
    if to_state not in allowed:
        raise IllegalTransition(
            f"transfer {transfer.id} cannot go from {transfer.state} to {to_state}",
            from_state=transfer.state,
            to_state=to_state,
        )
    now = timezone.now()
    TransferTransition.objects.using(DB).create(
        transfer=transfer,
        from_state=transfer.state,
        to_state=to_state,
        actor=actor,
        reason=reason[:200],
        at=now,
    )
    metrics.transitions.labels(from_state=transfer.state, to_state=to_state).inc()
    transfer.state = to_state
    transfer.updated_at = now
    transfer.driven_at = now
    fields = ["state", "updated_at", "driven_at"]
    if to_state in Transfer.TERMINAL:
        transfer.completed_at = now
        fields.append("completed_at")
    if to_state in (State.FAILED, State.COMPENSATING):
        transfer.failure_reason = reason[:64]
        fields.append("failure_reason")
    transfer.save(using=DB, update_fields=fields)


def _command(transfer: Transfer, command: type[TransferStep]) -> None:
    account_id = (
        transfer.destination_account_id if command is CreditAccount else transfer.source_account_id
    )
    outbox_message_put(
        using=DB,
        message=command(
            transfer_id=str(transfer.id),
            account_id=account_id,
            amount=transfer.amount,
            currency=transfer.currency,
        ),
    )


def transfer_create(
    *, user_id: int, source_id: Any, destination_id: Any, amount: Any, currency: Any
) -> Transfer:
    """Validate the request against the ledger's read model of accounts (``ledger.directory``:
    never the accounts database), then create the transfer in ``pending`` with its debit
    command, in one ledger transaction.

    Funds and account status are not decided here: the debit step decides them under a row
    lock, so a check here could only be stale."""
    currency_minor_digits(currency)
    minor = amount_parse(amount, currency=currency)
    if source_id == destination_id:
        raise SameAccount("source and destination must be different accounts")
    ids = [source_id, destination_id]
    accounts = known_accounts_get(ids=ids, wait_s=0)
    foreign_source = source_id in accounts and accounts[source_id].owner_id != user_id
    if len(accounts) < len(ids) and not foreign_source:
        # One may have been opened a moment ago, its event still on the way (ledger.directory).
        accounts = known_accounts_get(ids=ids)
    source = accounts.get(source_id)
    if source is None or source.owner_id != user_id:
        raise AccountNotFound(f"you have no account {source_id}", field="source")
    destination = accounts.get(destination_id)
    if destination is None:
        raise AccountNotFound(f"no account {destination_id}", field="destination")
    if source.currency != currency or destination.currency != currency:
        raise CurrencyMismatch(
            f"both accounts must hold {currency}",
            source_currency=source.currency,
            destination_currency=destination.currency,
        )
    with transaction.atomic(using=DB):
        transfer = Transfer.objects.using(DB).create(
            owner_id=user_id,
            source_account_id=source.account_id,
            destination_account_id=destination.account_id,
            amount=minor,
            currency=currency,
        )
        TransferTransition.objects.using(DB).create(
            transfer=transfer, to_state=State.PENDING, actor=f"user:{user_id}", reason="requested"
        )
        _command(transfer, DebitAccount)
    return transfer


def _on_event(
    *, message_id: str, transfer_id: str, consumer: str, expected: str
) -> Transfer | None:
    """Inside a ledger transaction: the inbox check and the locked transfer, or None when the
    message was seen before or does not fit the transfer's state (a stale duplicate)."""
    if not inbox_accept(LedgerInbox, using=DB, message_id=message_id, consumer=consumer):
        return None
    transfer = Transfer.objects.using(DB).select_for_update().get(id=transfer_id)
    if transfer.state != expected:
        inbox_redeliveries_ignored.labels(consumer=consumer).inc()
        logger.info("%s for %s in state %s: ignored", consumer, transfer_id, transfer.state)
        return None
    crash_after_commit(CRASH_AFTER_TRANSITION, using=DB)
    return transfer


def transfer_on_debited(*, message_id: str, transfer_id: str) -> None:
    fault_sleep("saga_step_latency_ms")
    with step_timer("on_debited"), transaction.atomic(using=DB):
        transfer = _on_event(
            message_id=message_id,
            transfer_id=transfer_id,
            consumer="on_debited",
            expected=State.PENDING,
        )
        if transfer is None:
            return
        transfer_transition(
            transfer=transfer, to_state=State.DEBITED, actor="saga", reason="source debited"
        )
        _command(transfer, CreditAccount)


def transfer_on_debit_rejected(*, message_id: str, transfer_id: str, reason: str) -> None:
    with step_timer("on_debit_rejected"), transaction.atomic(using=DB):
        transfer = _on_event(
            message_id=message_id,
            transfer_id=transfer_id,
            consumer="on_debit_rejected",
            expected=State.PENDING,
        )
        if transfer is None:
            return
        transfer_transition(transfer=transfer, to_state=State.FAILED, actor="saga", reason=reason)


def transfer_on_credited(*, message_id: str, transfer_id: str) -> None:
    """credited, then the journal entry and completed in the same transaction: the entry
    exists if and only if the transfer is completed."""
    fault_sleep("saga_step_latency_ms")
    with step_timer("on_credited"), transaction.atomic(using=DB):
        transfer = _on_event(
            message_id=message_id,
            transfer_id=transfer_id,
            consumer="on_credited",
            expected=State.DEBITED,
        )
        if transfer is None:
            return
        transfer_transition(
            transfer=transfer, to_state=State.CREDITED, actor="saga", reason="destination credited"
        )
        journal_entry_post(
            kind=JournalEntry.Kind.TRANSFER,
            currency=transfer.currency,
            postings=[
                (transfer.source_account_id, -transfer.amount),
                (transfer.destination_account_id, transfer.amount),
            ],
            transfer_id=transfer.id,
            description=f"transfer {transfer.id}",
        )
        transfer_transition(
            transfer=transfer, to_state=State.COMPLETED, actor="saga", reason="journal entry posted"
        )
        outbox_put(using=DB, task=COMMAND_NOTIFY, kwargs={"transfer_id": str(transfer.id)})


def transfer_on_credit_failed(*, message_id: str, transfer_id: str, reason: str) -> None:
    with step_timer("on_credit_failed"), transaction.atomic(using=DB):
        transfer = _on_event(
            message_id=message_id,
            transfer_id=transfer_id,
            consumer="on_credit_failed",
            expected=State.DEBITED,
        )
        if transfer is None:
            return
        transfer_transition(
            transfer=transfer, to_state=State.COMPENSATING, actor="saga", reason=reason
        )
        metrics.compensations.inc()
        _command(transfer, RefundAccount)


def transfer_on_refunded(*, message_id: str, transfer_id: str) -> None:
    with step_timer("on_refunded"), transaction.atomic(using=DB):
        transfer = _on_event(
            message_id=message_id,
            transfer_id=transfer_id,
            consumer="on_refunded",
            expected=State.COMPENSATING,
        )
        if transfer is None:
            return
        transfer_transition(
            transfer=transfer, to_state=State.COMPENSATED, actor="saga", reason="source refunded"
        )


def transfer_notify(*, message_id: str, transfer_id: str) -> None:
    """Tell the owner (a stand-in notification service). Runs after ``completed``, moves no
    money; while the service is down it raises and the task retries with backoff."""
    if fault_value("saga_notification_down"):
        raise NotificationUnavailable("notification service is down")
    with step_timer(CONSUMER_NOTIFY), transaction.atomic(using=DB):
        if not inbox_accept(LedgerInbox, using=DB, message_id=message_id, consumer=CONSUMER_NOTIFY):
            return
        crash_after_commit(CRASH_AFTER_NOTIFY, using=DB)
        Transfer.objects.using(DB).filter(id=transfer_id, notified_at__isnull=True).update(
            notified_at=timezone.now()
        )


def journal_entry_post(
    *,
    kind: str,
    currency: str,
    postings: list[tuple[int | None, int]],
    transfer_id: uuid.UUID | None = None,
    deposit_id: uuid.UUID | None = None,
    description: str = "",
) -> JournalEntry:
    """Post one balanced entry (postings: (account id or None for cash, signed amount))."""
    if sum(amount for _, amount in postings) != 0 or len(postings) < 2:
        raise ValueError("a journal entry needs at least two postings summing to zero")
    with transaction.atomic(using=DB):
        entry = JournalEntry.objects.using(DB).create(
            kind=kind,
            currency=currency,
            transfer_id=transfer_id,
            deposit_id=deposit_id,
            description=description,
        )
        Posting.objects.using(DB).bulk_create(
            Posting(entry=entry, account_id=account_id, amount=amount, currency=currency)
            for account_id, amount in postings
        )
    return entry


def deposit_on_deposited(
    *, message_id: str, deposit_id: str, account_id: int, amount: int, currency: str
) -> None:
    """The journal side of a deposit: cash -> account, once per deposit; every copy of the
    event (the deposit watchdog resends unacknowledged ones) is answered ``DepositJournaled``.
    """
    with transaction.atomic(using=DB):
        if inbox_accept(LedgerInbox, using=DB, message_id=message_id, consumer=CONSUMER_DEPOSITED):
            crash_after_commit(CRASH_AFTER_DEPOSIT_JOURNAL, using=DB)
            if not JournalEntry.objects.using(DB).filter(deposit_id=deposit_id).exists():
                journal_entry_post(
                    kind=JournalEntry.Kind.DEPOSIT,
                    currency=currency,
                    postings=[(None, -amount), (account_id, amount)],
                    deposit_id=uuid.UUID(deposit_id),
                    description=f"deposit {deposit_id}",
                )
        outbox_message_put(using=DB, message=DepositJournaled(deposit_id=str(deposit_id)))


_REDRIVE_COMMANDS: dict[str, type[TransferStep]] = {
    State.PENDING: DebitAccount,
    State.DEBITED: CreditAccount,
    State.COMPENSATING: RefundAccount,
}


def saga_redrive(*, transfer_id: uuid.UUID | str, actor: str) -> bool:
    """Re-emit the command the transfer's current state waits for (a completed but unnotified
    transfer gets its notification again), under the id of the request that created the
    transfer. Safe at any time: the accounts side answers a repeated command with the outcome
    it already recorded. False when nothing is pending."""
    with transaction.atomic(using=DB):
        transfer = Transfer.objects.using(DB).select_for_update().filter(id=transfer_id).first()
        if transfer is None:
            raise TransferNotFound(f"no transfer {transfer_id}")
        with request_id_bound(transfer.request_id):
            if transfer.state in _REDRIVE_COMMANDS:
                _command(transfer, _REDRIVE_COMMANDS[transfer.state])
            elif transfer.state == State.COMPLETED and transfer.notified_at is None:
                outbox_put(using=DB, task=COMMAND_NOTIFY, kwargs={"transfer_id": str(transfer.id)})
            else:
                return False
        transfer.driven_at = timezone.now()
        transfer.redrive_count += 1
        transfer.save(using=DB, update_fields=["driven_at", "redrive_count"])
    metrics.redrives.labels(by=actor.split(":", 1)[0]).inc()
    return True


REDRIVE_BACKOFF_CAP = 4


def saga_watchdog(*, stuck_after_s: float, limit: int = 500) -> int:
    """Re-drive every saga that has waited too long for its next step: ``stuck_after_s`` after
    the step's command, then as long again as it had already waited in that state when last
    re-driven (doubling, capped at ``REDRIVE_BACKOFF_CAP`` x ``stuck_after_s``).

    The backoff matters under a backlog: a command still queued is not lost, and re-driving it
    every ``stuck_after_s`` piles duplicates onto the queue that made it late (a chaos run
    with a long queue saw more re-drives than transfers and never caught up)."""
    now = timezone.now()
    bound = timedelta(seconds=stuck_after_s)
    waited_before = ExpressionWrapper(
        F("driven_at") - F("updated_at"), output_field=DurationField()
    )
    stuck = (
        Transfer.objects.using(DB)
        .filter(driven_at__lt=now - bound)
        .filter(
            Q(state__in=list(_REDRIVE_COMMANDS))
            | Q(state=State.COMPLETED, notified_at__isnull=True)
        )
        .alias(
            due_after=Greatest(
                Value(bound), Least(waited_before, Value(bound * REDRIVE_BACKOFF_CAP))
            )
        )
        .filter(
            driven_at__lt=ExpressionWrapper(
                Value(now) - F("due_after"), output_field=DateTimeField()
            )
        )
    )
    redriven = 0
    for transfer_id in stuck.order_by("driven_at").values_list("id", flat=True)[:limit]:
        redriven += saga_redrive(transfer_id=transfer_id, actor="watchdog")
    return redriven
