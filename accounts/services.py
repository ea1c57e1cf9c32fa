"""Writes on the accounts database: accounts, deposits, and the saga's debit/credit/refund.

Each saga step is one transaction on ``accounts`` that records the message in the inbox,
applies (or rejects) the operation, and writes the reply event to the outbox. Whatever the
ledger needs to know about accounts (opened, status changed, deposited) leaves the same way, as
``contracts`` messages written in the transaction that made the change.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import metrics
from accounts.models import Account, AccountOperation, AccountsInbox
from contracts.accounts import AccountOpened, AccountStatusChanged, DepositApplied
from contracts.saga import (
    AccountCredited,
    AccountDebited,
    AccountRefunded,
    CreditFailed,
    DebitRejected,
    TransferRefusal,
    TransferReply,
)
from core.errors import DomainError
from core.faults import crash_point, fault_roll, fault_sleep
from core.metrics import step_timer
from core.money import amount_parse, currency_minor_digits
from core.outbox import (
    consumer_crash_point,
    crash_after_commit,
    inbox_accept_many,
    outbox_message_put,
    outbox_messages_put,
    outbox_resend,
)

logger = logging.getLogger(__name__)
DB = "accounts"

CONSUMER_DEBIT = "debit"
CONSUMER_CREDIT = "credit"
CONSUMER_REFUND = "refund"
# Each consumer can be killed right after its batch's commit (``consumer_crash_point``), and
# a batch with its effects written, before its commit (``CRASH_BEFORE_BATCH_COMMIT``).
CRASH_POINTS = (
    *(
        consumer_crash_point(consumer)
        for consumer in (CONSUMER_DEBIT, CONSUMER_CREDIT, CONSUMER_REFUND)
    ),
    "accounts_batch_before_commit",
)


class AccountNotFound(DomainError):
    code = "account_not_found"
    status = 404
    title = "Account not found"


class AccountNotActive(DomainError):
    code = "account_not_active"
    status = 409
    title = "Account is frozen or closed"


class RefundWithoutDebit(RuntimeError):
    """A refund arrived for a transfer whose debit is not (yet) applied: retried."""


def accounts_lock(*, ids: list[int]) -> dict[int, Account]:
    """Lock the given accounts FOR UPDATE in ascending id order.

    Every code path that locks more than one account row must come through here: two
    transactions that lock the same rows in different orders can deadlock, one order cannot."""
    if not transaction.get_connection(DB).in_atomic_block:
        raise RuntimeError("accounts_lock must run inside a transaction on the accounts database")
    locked = Account.objects.using(DB).select_for_update().filter(id__in=sorted(set(ids)))
    return {account.id: account for account in locked.order_by("id")}


def account_create(*, owner_id: int, currency: str) -> Account:
    """Open an account; the ledger hears of it through ``AccountOpened`` (its read model of
    accounts validates transfers)."""
    currency_minor_digits(currency)
    with transaction.atomic(using=DB):
        account = Account.objects.using(DB).create(owner_id=owner_id, currency=currency)
        _announce(account, AccountOpened)
    return account


def _announce(account: Account, event: type[AccountOpened | AccountStatusChanged]) -> None:
    outbox_message_put(
        using=DB,
        message=event(
            account_id=account.id,
            owner_id=account.owner_id,
            currency=account.currency,
            status=account.status,
            version=account.version,
        ),
    )


def account_deposit(
    *, account_id: int, amount: str, deposit_id: uuid.UUID | None = None
) -> AccountOperation:
    """Add money (staff): the balance and the deposit operation change together; the ledger
    posts the journal entry from the cash account when the event arrives."""
    deposit_id = deposit_id or uuid.uuid4()
    with transaction.atomic(using=DB):
        account = accounts_lock(ids=[account_id]).get(account_id)
        if account is None:
            raise AccountNotFound(f"no account {account_id}")
        if account.status != Account.Status.ACTIVE:
            raise AccountNotActive(f"account {account_id} is {account.status}")
        minor = amount_parse(amount, currency=account.currency)
        _balance_change(account, minor)
        operation = AccountOperation.objects.using(DB).create(
            account=account,
            kind=AccountOperation.Kind.DEPOSIT,
            deposit_id=deposit_id,
            amount=minor,
            currency=account.currency,
            applied=True,
        )
        outbox_message_put(
            using=DB,
            message_id=deposit_id,
            message=DepositApplied(
                deposit_id=str(deposit_id),
                account_id=account.id,
                amount=minor,
                currency=account.currency,
            ),
        )
    return operation


def deposits_journaled_mark(*, deposit_ids: list[str]) -> int:
    """The ledger acknowledged these deposits' journal entries: the deposit watchdog stops
    sending their events. Idempotent (an acknowledgement can arrive more than once); returns
    how many were not marked before."""
    with transaction.atomic(using=DB):
        return (
            AccountOperation.objects.using(DB)
            .filter(
                kind=AccountOperation.Kind.DEPOSIT,
                deposit_id__in=deposit_ids,
                journaled_at__isnull=True,
            )
            .update(journaled_at=timezone.now())
        )


def deposit_watchdog(*, stuck_after_s: float, window_s: float, limit: int = 500) -> int:
    """Send again the event of every deposit applied between ``window_s`` and ``stuck_after_s``
    ago that the ledger has not acknowledged (``DepositJournaled``); returns how many.

    The saga's watchdog cannot see these: a deposit has no state in the ledger until its
    event arrives, and a worker killed while holding that event keeps it from the others
    until the broker's visibility timeout (an hour), the journal short by the deposit. The
    event keeps its message id (the deposit's id), so the ledger's inbox posts the entry once
    and answers every copy with an acknowledgement."""
    now = timezone.now()
    missing = list(
        AccountOperation.objects.using(DB)
        .filter(
            kind=AccountOperation.Kind.DEPOSIT,
            journaled_at__isnull=True,
            created_at__gte=now - timedelta(seconds=window_s),
            created_at__lt=now - timedelta(seconds=stuck_after_s),
        )
        .order_by("created_at")
        .values_list("deposit_id", flat=True)[:limit]
    )
    if not missing:
        return 0
    resent = outbox_resend(using=DB, ids=missing)
    metrics.deposit_resends.inc(resent)
    logger.warning("deposit events sent again (no journal acknowledgement): %s", missing)
    return resent


def account_status_set(*, account_id: int, status: str) -> Account:
    with transaction.atomic(using=DB):
        account = accounts_lock(ids=[account_id])[account_id]
        account.status = status
        account.version += 1
        account.updated_at = timezone.now()
        account.save(update_fields=["status", "version", "updated_at"])
        _announce(account, AccountStatusChanged)
    return account


def _balance_change(account: Account, delta: int) -> None:
    account.balance += delta
    account.version += 1
    account.updated_at = timezone.now()
    account.save(update_fields=["balance", "version", "updated_at"])


@dataclass(frozen=True)
class TransferCommand:
    """One saga command of a batch: its message id, the consumer (``debit``, ``credit``,
    ``refund``), the command's fields, and the request id its reply carries on (blank: the
    current one)."""

    message_id: str
    consumer: str
    transfer_id: str
    account_id: int
    amount: int
    currency: str
    request_id: str = ""


_KIND = {
    CONSUMER_DEBIT: AccountOperation.Kind.DEBIT,
    CONSUMER_CREDIT: AccountOperation.Kind.CREDIT,
    CONSUMER_REFUND: AccountOperation.Kind.REFUND,
}
_REPLIES: dict[str, tuple[type[TransferReply], type[TransferRefusal] | None]] = {
    CONSUMER_DEBIT: (AccountDebited, DebitRejected),
    CONSUMER_CREDIT: (AccountCredited, CreditFailed),
    CONSUMER_REFUND: (AccountRefunded, None),
}
CRASH_BEFORE_BATCH_COMMIT = "accounts_batch_before_commit"


def transfer_commands_apply(*, commands: list[TransferCommand]) -> dict[str, Exception]:
    """Apply a batch of debits, credits and refunds in one transaction; returns the message
    ids it could not apply yet (a refund whose debit is not applied), which are left out.

    1. every message id goes into the inbox in one statement; those seen before do nothing;
    2. every account the batch names is locked in id order (``accounts_lock``: with one order
       for every transaction, two batches with opposite transfers cannot deadlock), and only
       then are the operations already recorded read (a concurrent batch holding those locks
       has committed by now);
    3. the commands are decided in order, each against the balances as the earlier ones left
       them: an operation already recorded (a re-driven command, here or in an earlier batch)
       is answered with its outcome again; a debit needs funds; a refund gives back its
       debit's amount;
    4. one statement each for the balances, the operations and the replies (each under its
       command's request id); the replies are published together after commit
       (``core.outbox``)."""
    fault_sleep("saga_step_latency_ms")
    deferred: dict[str, Exception] = {}
    consumers = sorted({command.consumer for command in commands})
    with step_timer("+".join(consumers)), transaction.atomic(using=DB):
        accepted = inbox_accept_many(
            AccountsInbox,
            using=DB,
            messages=[(command.message_id, command.consumer) for command in commands],
        )
        fresh = [command for command in commands if command.message_id in accepted]
        if not fresh:
            return deferred
        transfer_ids = sorted({command.transfer_id for command in fresh})
        locked = accounts_lock(
            ids=[command.account_id for command in fresh]
            + list(
                AccountOperation.objects.using(DB)
                .filter(transfer_id__in=transfer_ids, kind=AccountOperation.Kind.DEBIT)
                .values_list("account_id", flat=True)
            )
        )
        recorded = {
            (str(operation.transfer_id), operation.kind): operation
            for operation in AccountOperation.objects.using(DB).filter(transfer_id__in=transfer_ids)
        }
        changed: dict[int, Account] = {}
        created: list[AccountOperation] = []
        replies: list = []
        reply_request_ids: list[str] = []
        for command in fresh:
            kind = _KIND[command.consumer]
            operation = recorded.get((command.transfer_id, kind))
            if operation is None:
                operation = _operation_decide(command, kind, locked=locked, recorded=recorded)
                if isinstance(operation, Exception):
                    deferred[command.message_id] = operation
                    continue
                if operation is not None:
                    recorded[(command.transfer_id, kind)] = operation
                    created.append(operation)
                    if operation.applied:
                        changed[operation.account_id] = locked[operation.account_id]
            replies.append(_reply_to(command, operation))
            reply_request_ids.append(command.request_id)
        if deferred:
            AccountsInbox.objects.using(DB).filter(message_id__in=list(deferred)).delete()
        now = timezone.now()
        for account in changed.values():
            account.updated_at = now
        Account.objects.using(DB).bulk_update(
            sorted(changed.values(), key=lambda account: account.id),
            ["balance", "version", "updated_at"],
        )
        AccountOperation.objects.using(DB).bulk_create(created)
        for consumer in {command.consumer for command in fresh}:
            crash_after_commit(consumer_crash_point(consumer), using=DB)
        outbox_messages_put(using=DB, messages=replies, request_ids=reply_request_ids)
        crash_point(CRASH_BEFORE_BATCH_COMMIT)
    return deferred


def _operation_decide(
    command: TransferCommand,
    kind: str,
    *,
    locked: dict[int, Account],
    recorded: dict[tuple[str, str], AccountOperation],
) -> AccountOperation | Exception | None:
    """The new operation of one command, its balance change applied to the locked account in
    memory; None for an account that does not exist (refused, no operation can name it);
    ``RefundWithoutDebit`` for a refund that must wait."""
    if kind == AccountOperation.Kind.REFUND:
        debit = recorded.get((command.transfer_id, AccountOperation.Kind.DEBIT))
        if debit is None or not debit.applied:
            return RefundWithoutDebit(f"transfer {command.transfer_id} has no applied debit")
        account = locked[debit.account_id]
        _balance_add(account, debit.amount)
        return AccountOperation(
            account_id=account.id,
            kind=kind,
            transfer_id=command.transfer_id,
            amount=debit.amount,
            currency=debit.currency,
            applied=True,
        )
    account = locked.get(command.account_id)
    if account is None:
        return None
    reason = _rejection(
        account,
        currency=command.currency,
        amount=command.amount,
        need_funds=kind == AccountOperation.Kind.DEBIT,
    )
    if (
        not reason
        and kind == AccountOperation.Kind.CREDIT
        and fault_roll("saga_credit_failure_rate")
    ):
        reason = "credit_fault_injected"
    if not reason:
        _balance_add(
            account, -command.amount if kind == AccountOperation.Kind.DEBIT else command.amount
        )
    return AccountOperation(
        account_id=account.id,
        kind=kind,
        transfer_id=command.transfer_id,
        amount=command.amount,
        currency=command.currency,
        applied=not reason,
        reason=reason,
    )


def _balance_add(account: Account, delta: int) -> None:
    account.balance += delta
    account.version += 1


def _reply_to(command: TransferCommand, operation: AccountOperation | None):
    """The reply to a command: its operation's outcome, or ``account_not_found`` (an account
    that does not exist: deleted in the admin, and accounts never come back)."""
    applied, refused = _REPLIES[command.consumer]
    if operation is None:
        return refused(transfer_id=command.transfer_id, reason="account_not_found")
    if operation.applied:
        return applied(transfer_id=command.transfer_id)
    return refused(transfer_id=command.transfer_id, reason=operation.reason)


def _rejection(account: Account, *, currency: str, amount: int, need_funds: bool) -> str:
    if account.status != Account.Status.ACTIVE:
        return f"account_{account.status}"
    if account.currency != currency:
        return "currency_mismatch"
    if need_funds and account.balance < amount:
        return "insufficient_funds"
    return ""


def _one(consumer: str, **command: Any) -> None:
    deferred = transfer_commands_apply(commands=[TransferCommand(consumer=consumer, **command)])
    if deferred:
        raise next(iter(deferred.values()))


def account_debit(
    *, message_id: str, transfer_id: str, account_id: int, amount: int, currency: str
) -> None:
    """Saga step: take ``amount`` from the source; reply debited or debit_rejected (a batch
    of one: ``transfer_commands_apply``)."""
    _one(
        CONSUMER_DEBIT,
        message_id=message_id,
        transfer_id=transfer_id,
        account_id=account_id,
        amount=amount,
        currency=currency,
    )


def account_credit(
    *, message_id: str, transfer_id: str, account_id: int, amount: int, currency: str
) -> None:
    """Saga step: give ``amount`` to the destination; reply credited or credit_failed.

    The ``saga_credit_failure_rate`` fault rejects the credit as if the destination refused it,
    which sends the saga into compensation."""
    _one(
        CONSUMER_CREDIT,
        message_id=message_id,
        transfer_id=transfer_id,
        account_id=account_id,
        amount=amount,
        currency=currency,
    )


def account_refund(
    *, message_id: str, transfer_id: str, account_id: int, amount: int, currency: str
) -> None:
    """Compensation of an applied debit. Undo steps, in order:

    1. find the transfer's applied debit (none yet: ``RefundWithoutDebit``, nothing recorded,
       so the consumer retries);
    2. put the debited amount back on the source account, whatever its status (the money was
       its own; a frozen or closed account still gets it back);
    3. record the refund operation (unique per transfer, so it happens once);
    4. reply ``refunded`` through the outbox.
    """
    _one(
        CONSUMER_REFUND,
        message_id=message_id,
        transfer_id=transfer_id,
        account_id=account_id,
        amount=amount,
        currency=currency,
    )
