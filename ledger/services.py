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
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from contracts.accounts import DepositJournaled
from contracts.base import Message
from contracts.saga import CreditAccount, DebitAccount, RefundAccount, TransferStep
from core.errors import DomainError
from core.faults import crash_point, fault_sleep, fault_value
from core.metrics import inbox_redeliveries_ignored, step_timer
from core.money import amount_parse, currency_minor_digits
from core.outbox import (
    consumer_crash_point,
    crash_after_commit,
    inbox_accept,
    inbox_accept_many,
    outbox_message_put,
    outbox_messages_put,
)
from core.request_id import request_id_bound, request_id_or_blank
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
CRASH_POINTS = (
    CRASH_AFTER_TRANSITION,
    CRASH_AFTER_NOTIFY,
    CRASH_AFTER_DEPOSIT_JOURNAL,
    "ledger_batch_before_commit",
)


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
    step = _transition_record(transfer=transfer, to_state=to_state, actor=actor, reason=reason)
    step.save(using=DB)
    transfer.save(using=DB, update_fields=_TRANSFER_FIELDS)


# What a transition may change on a transfer (one update statement for a batch's transfers).
_TRANSFER_FIELDS = ["state", "updated_at", "driven_at", "completed_at", "failure_reason"]


def _transition_record(
    *, transfer: Transfer, to_state: str, actor: str, reason: str = ""
) -> TransferTransition:
    """A legal move applied to the transfer in memory, and its history row (unsaved)."""
    allowed = Transfer.TRANSITIONS.get(transfer.state, frozenset())
    if to_state not in allowed:
        raise IllegalTransition(
            f"transfer {transfer.id} cannot go from {transfer.state} to {to_state}",
            from_state=transfer.state,
            to_state=to_state,
        )
    now = timezone.now()
    step = TransferTransition(
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
    if to_state in Transfer.TERMINAL:
        transfer.completed_at = now
    if to_state in (State.FAILED, State.COMPENSATING):
        transfer.failure_reason = reason[:64]
    return step


def _command_message(transfer: Transfer, command: type[TransferStep]) -> TransferStep:
    account_id = (
        transfer.destination_account_id if command is CreditAccount else transfer.source_account_id
    )
    return command(
        transfer_id=str(transfer.id),
        account_id=account_id,
        amount=transfer.amount,
        currency=transfer.currency,
    )


def _command(transfer: Transfer, command: type[TransferStep]) -> None:
    outbox_message_put(using=DB, message=_command_message(transfer, command))


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


@dataclass(frozen=True)
class NotifyOwner(Message):
    """The ledger's own command to notify a transfer's owner (it never leaves the ledger)."""

    name = COMMAND_NOTIFY

    transfer_id: str


@dataclass(frozen=True)
class TransferEvent:
    """One reply of the accounts service in a batch: its message id, its consumer (the
    ``on_*`` name) and transfer, the refusal's reason if it is one, and the request id it
    carries (blank: the transfer's)."""

    message_id: str
    consumer: str
    transfer_id: str
    reason: str = ""
    request_id: str = ""


# consumer -> (the state its reply is for, the step that follows)
_STEPS: dict[str, tuple[str, str]] = {
    "on_debited": (State.PENDING, "source debited"),
    "on_debit_rejected": (State.PENDING, ""),
    "on_credited": (State.DEBITED, "destination credited"),
    "on_credit_failed": (State.DEBITED, ""),
    "on_refunded": (State.COMPENSATING, "source refunded"),
}
CONSUMERS = tuple(_STEPS)
CRASH_BEFORE_BATCH_COMMIT = "ledger_batch_before_commit"


def transfer_events_apply(*, events: list[TransferEvent]) -> None:
    """Apply a batch of the accounts service's replies in one ledger transaction.

    1. every message id goes into the inbox in one statement; those seen before do nothing;
    2. the batch's transfers are locked in id order (two batches never deadlock on them);
    3. each event moves its transfer if the transfer is still in the state the event answers
       (else it is a stale duplicate, ignored), with its history row, and writes what follows:
       the credit command, the journal entry with ``completed`` and the notification, the
       refund command, under the event's request id;
    4. one statement each for the history, the transfers' new states (two for completed ones:
       the database's guard sees ``debited -> credited -> completed``), the journal entries,
       their postings and the outgoing commands, published together after commit.

    A transfer the ledger does not know raises ``TransferNotFound``: the batch is applied
    again item by item and that message is parked (``core.consumers``)."""
    if {event.consumer for event in events} & {"on_debited", "on_credited"}:
        fault_sleep("saga_step_latency_ms")
    consumers = "+".join(sorted({event.consumer for event in events}))
    with step_timer(consumers), transaction.atomic(using=DB):
        accepted = inbox_accept_many(
            LedgerInbox, using=DB, messages=[(event.message_id, event.consumer) for event in events]
        )
        fresh = [event for event in events if event.message_id in accepted]
        if not fresh:
            return
        ids = sorted({event.transfer_id for event in fresh})
        transfers = {
            str(transfer.id): transfer
            for transfer in Transfer.objects.using(DB)
            .select_for_update()
            .filter(id__in=ids)
            .order_by("id")
        }
        unknown = sorted(set(ids) - set(transfers))
        if unknown:
            raise TransferNotFound(f"no transfer {', '.join(unknown)}")
        crash_after_commit(CRASH_AFTER_TRANSITION, using=DB)
        batch = _Batch()
        for event in fresh:
            transfer = transfers[event.transfer_id]
            expected, _ = _STEPS[event.consumer]
            with request_id_bound(event.request_id or transfer.request_id):
                if transfer.state != expected:
                    inbox_redeliveries_ignored.labels(consumer=event.consumer).inc()
                    logger.info(
                        "%s for %s in state %s: ignored",
                        event.consumer,
                        transfer.id,
                        transfer.state,
                    )
                    continue
                _event_apply(event, transfer, batch)
        batch.write()
        crash_point(CRASH_BEFORE_BATCH_COMMIT)


@dataclass
class _Batch:
    """What a batch of events writes, gathered so that each kind is one statement."""

    history: list[TransferTransition] = field(default_factory=list)
    moved: dict[str, Transfer] = field(default_factory=dict)
    credited: list[str] = field(default_factory=list)
    entries: list[tuple[Transfer, JournalEntry]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)

    def send(self, message: Message) -> None:
        """Write ``message`` under the request id current now (its event's)."""
        self.messages.append(message)
        self.request_ids.append(request_id_or_blank())

    def move(self, transfer: Transfer, to_state: str, reason: str) -> None:
        self.history.append(
            _transition_record(transfer=transfer, to_state=to_state, actor="saga", reason=reason)
        )
        self.moved[str(transfer.id)] = transfer

    def write(self) -> None:
        if self.credited:
            Transfer.objects.using(DB).filter(id__in=self.credited).update(state=State.CREDITED)
        Transfer.objects.using(DB).bulk_update(
            sorted(self.moved.values(), key=lambda transfer: str(transfer.id)), _TRANSFER_FIELDS
        )
        TransferTransition.objects.using(DB).bulk_create(self.history)
        JournalEntry.objects.using(DB).bulk_create(entry for _, entry in self.entries)
        Posting.objects.using(DB).bulk_create(
            Posting(entry=entry, account_id=account_id, amount=amount, currency=entry.currency)
            for transfer, entry in self.entries
            for account_id, amount in (
                (transfer.source_account_id, -transfer.amount),
                (transfer.destination_account_id, transfer.amount),
            )
        )
        outbox_messages_put(using=DB, messages=self.messages, request_ids=self.request_ids)


def _event_apply(event: TransferEvent, transfer: Transfer, batch: _Batch) -> None:
    _, reason = _STEPS[event.consumer]
    if event.consumer == "on_debited":
        batch.move(transfer, State.DEBITED, reason)
        batch.send(_command_message(transfer, CreditAccount))
    elif event.consumer == "on_debit_rejected":
        batch.move(transfer, State.FAILED, event.reason)
    elif event.consumer == "on_credited":
        # credited, then the journal entry and completed in the same transaction: the entry
        # exists if and only if the transfer is completed.
        batch.move(transfer, State.CREDITED, reason)
        batch.credited.append(str(transfer.id))
        batch.entries.append(
            (
                transfer,
                JournalEntry(
                    kind=JournalEntry.Kind.TRANSFER,
                    currency=transfer.currency,
                    transfer_id=transfer.id,
                    description=f"transfer {transfer.id}",
                ),
            )
        )
        batch.move(transfer, State.COMPLETED, "journal entry posted")
        batch.send(NotifyOwner(transfer_id=str(transfer.id)))
    elif event.consumer == "on_credit_failed":
        batch.move(transfer, State.COMPENSATING, event.reason)
        metrics.compensations.inc()
        batch.send(_command_message(transfer, RefundAccount))
    else:
        batch.move(transfer, State.COMPENSATED, reason)


def _one(consumer: str, *, message_id: str, transfer_id: str, reason: str = "") -> None:
    transfer_events_apply(
        events=[
            TransferEvent(
                message_id=message_id,
                consumer=consumer,
                transfer_id=str(transfer_id),
                reason=reason,
            )
        ]
    )


def transfer_on_debited(*, message_id: str, transfer_id: str) -> None:
    _one("on_debited", message_id=message_id, transfer_id=transfer_id)


def transfer_on_debit_rejected(*, message_id: str, transfer_id: str, reason: str) -> None:
    _one("on_debit_rejected", message_id=message_id, transfer_id=transfer_id, reason=reason)


def transfer_on_credited(*, message_id: str, transfer_id: str) -> None:
    _one("on_credited", message_id=message_id, transfer_id=transfer_id)


def transfer_on_credit_failed(*, message_id: str, transfer_id: str, reason: str) -> None:
    _one("on_credit_failed", message_id=message_id, transfer_id=transfer_id, reason=reason)


def transfer_on_refunded(*, message_id: str, transfer_id: str) -> None:
    _one("on_refunded", message_id=message_id, transfer_id=transfer_id)


def transfers_notify(*, notices: list[tuple[str, str]]) -> None:
    """Tell the owners (a stand-in notification service), a batch of (message id, transfer
    id) at a time. Runs after ``completed``, moves no money; while the service is down it
    raises and the consumer retries with backoff."""
    if fault_value("saga_notification_down"):
        raise NotificationUnavailable("notification service is down")
    with step_timer(CONSUMER_NOTIFY), transaction.atomic(using=DB):
        accepted = inbox_accept_many(
            LedgerInbox,
            using=DB,
            messages=[(message_id, CONSUMER_NOTIFY) for message_id, _ in notices],
        )
        if not accepted:
            return
        crash_after_commit(CRASH_AFTER_NOTIFY, using=DB)
        Transfer.objects.using(DB).filter(
            id__in=[transfer_id for message_id, transfer_id in notices if message_id in accepted],
            notified_at__isnull=True,
        ).update(notified_at=timezone.now())


def transfer_notify(*, message_id: str, transfer_id: str) -> None:
    transfers_notify(notices=[(message_id, transfer_id)])


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
                outbox_message_put(using=DB, message=NotifyOwner(transfer_id=str(transfer.id)))
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
