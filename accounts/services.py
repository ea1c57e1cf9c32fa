"""Writes on the accounts database: accounts, deposits, and the saga's debit/credit/refund.

Each saga step is one transaction on ``accounts`` that records the message in the inbox,
applies (or rejects) the operation, and writes the reply event to the outbox.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, AccountOperation, AccountsInbox
from core.errors import DomainError
from core.faults import fault_roll, fault_sleep
from core.money import amount_parse, currency_minor_digits
from core.outbox import crash_after_commit, inbox_accept, outbox_put, outbox_resend
from ledger import metrics

logger = logging.getLogger(__name__)
DB = "accounts"

EVENT_DEBITED = "ledger.on_debited"
EVENT_DEBIT_REJECTED = "ledger.on_debit_rejected"
EVENT_CREDITED = "ledger.on_credited"
EVENT_CREDIT_FAILED = "ledger.on_credit_failed"
EVENT_REFUNDED = "ledger.on_refunded"
EVENT_DEPOSITED = "ledger.on_deposited"


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
    currency_minor_digits(currency)
    with transaction.atomic(using=DB):
        return Account.objects.using(DB).create(owner_id=owner_id, currency=currency)


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
        outbox_put(
            using=DB,
            task=EVENT_DEPOSITED,
            message_id=deposit_id,
            kwargs={
                "deposit_id": str(deposit_id),
                "account_id": account.id,
                "amount": minor,
                "currency": account.currency,
            },
        )
    return operation


def deposit_events_resend(*, deposit_ids: list[uuid.UUID]) -> int:
    """Send the ``deposited`` events of these deposits again (a deposit's event carries the
    deposit's id as its message id); the ledger's inbox posts each journal entry once."""
    return outbox_resend(using=DB, ids=deposit_ids)


def account_status_set(*, account_id: int, status: str) -> Account:
    with transaction.atomic(using=DB):
        account = accounts_lock(ids=[account_id])[account_id]
        account.status = status
        account.version += 1
        account.updated_at = timezone.now()
        account.save(update_fields=["status", "version", "updated_at"])
    return account


def _balance_change(account: Account, delta: int) -> None:
    account.balance += delta
    account.version += 1
    account.updated_at = timezone.now()
    account.save(update_fields=["balance", "version", "updated_at"])


def _reply(operation: AccountOperation, *, ok_event: str, failed_event: str) -> None:
    kwargs: dict[str, Any] = {"transfer_id": str(operation.transfer_id)}
    if not operation.applied:
        kwargs["reason"] = operation.reason
    outbox_put(using=DB, task=ok_event if operation.applied else failed_event, kwargs=kwargs)


def _existing(transfer_id: uuid.UUID | str, kind: str) -> AccountOperation | None:
    return AccountOperation.objects.using(DB).filter(transfer_id=transfer_id, kind=kind).first()


def _reject_unknown(transfer_id: str, event: str) -> None:
    """An account that does not exist (deleted in the admin): no operation row can name it,
    and accounts never come back, so every repetition gets the same answer."""
    outbox_put(
        using=DB,
        task=event,
        kwargs={"transfer_id": str(transfer_id), "reason": "account_not_found"},
    )


def _rejection(account: Account, *, currency: str, amount: int, need_funds: bool) -> str:
    if account.status != Account.Status.ACTIVE:
        return f"account_{account.status}"
    if account.currency != currency:
        return "currency_mismatch"
    if need_funds and account.balance < amount:
        return "insufficient_funds"
    return ""


def _inbox_accepted(*, message_id: str, consumer: str) -> bool:
    """Inside an accounts transaction: record the message in the inbox, or say it was seen."""
    if not inbox_accept(AccountsInbox, using=DB, message_id=message_id, consumer=consumer):
        metrics.inbox_ignored.labels(consumer=consumer).inc()
        return False
    crash_after_commit(f"after_{consumer}_commit", using=DB)
    return True


def _transfer_operation_apply(
    *,
    kind: str,
    transfer_id: str,
    account_id: int,
    amount: int,
    currency: str,
    refusal: Callable[[Account], str],
) -> AccountOperation | None:
    """The debit or credit of a transfer, once: an existing operation is returned as it is;
    else the account is locked, ``refusal`` decides (empty: apply), and the operation is
    recorded applied or not. None when the account does not exist (already answered)."""
    operation = _existing(transfer_id, kind)
    if operation is not None:
        return operation
    account = accounts_lock(ids=[account_id]).get(account_id)
    if account is None:
        failed = (
            EVENT_DEBIT_REJECTED if kind == AccountOperation.Kind.DEBIT else EVENT_CREDIT_FAILED
        )
        _reject_unknown(transfer_id, failed)
        return None
    reason = refusal(account)
    if not reason:
        _balance_change(account, -amount if kind == AccountOperation.Kind.DEBIT else amount)
    return AccountOperation.objects.using(DB).create(
        account_id=account_id,
        kind=kind,
        transfer_id=transfer_id,
        amount=amount,
        currency=currency,
        applied=not reason,
        reason=reason,
    )


def account_debit(
    *, message_id: str, transfer_id: str, account_id: int, amount: int, currency: str
) -> None:
    """Saga step: take ``amount`` from the source; reply debited or debit_rejected."""
    fault_sleep("saga_step_latency_ms")
    with metrics.step_timer("debit"), transaction.atomic(using=DB):
        if not _inbox_accepted(message_id=message_id, consumer="debit"):
            return
        operation = _transfer_operation_apply(
            kind=AccountOperation.Kind.DEBIT,
            transfer_id=transfer_id,
            account_id=account_id,
            amount=amount,
            currency=currency,
            refusal=lambda account: _rejection(
                account, currency=currency, amount=amount, need_funds=True
            ),
        )
        if operation is not None:
            _reply(operation, ok_event=EVENT_DEBITED, failed_event=EVENT_DEBIT_REJECTED)


def account_credit(
    *, message_id: str, transfer_id: str, account_id: int, amount: int, currency: str
) -> None:
    """Saga step: give ``amount`` to the destination; reply credited or credit_failed.

    The ``saga_credit_failure_rate`` fault rejects the credit as if the destination refused it,
    which sends the saga into compensation."""

    def refusal(account: Account) -> str:
        reason = _rejection(account, currency=currency, amount=amount, need_funds=False)
        if not reason and fault_roll("saga_credit_failure_rate"):
            return "credit_fault_injected"
        return reason

    fault_sleep("saga_step_latency_ms")
    with metrics.step_timer("credit"), transaction.atomic(using=DB):
        if not _inbox_accepted(message_id=message_id, consumer="credit"):
            return
        operation = _transfer_operation_apply(
            kind=AccountOperation.Kind.CREDIT,
            transfer_id=transfer_id,
            account_id=account_id,
            amount=amount,
            currency=currency,
            refusal=refusal,
        )
        if operation is not None:
            _reply(operation, ok_event=EVENT_CREDITED, failed_event=EVENT_CREDIT_FAILED)


def account_refund(
    *, message_id: str, transfer_id: str, account_id: int, amount: int, currency: str
) -> None:
    """Compensation of an applied debit. Undo steps, in order:

    1. find the transfer's applied debit (none yet: raise, so the task retries);
    2. put the debited amount back on the source account, whatever its status (the money was
       its own; a frozen or closed account still gets it back);
    3. record the refund operation (unique per transfer, so it happens once);
    4. reply ``refunded`` through the outbox.
    """
    with metrics.step_timer("refund"), transaction.atomic(using=DB):
        if not _inbox_accepted(message_id=message_id, consumer="refund"):
            return
        operation = _existing(transfer_id, AccountOperation.Kind.REFUND)
        if operation is None:
            debit = _existing(transfer_id, AccountOperation.Kind.DEBIT)
            if debit is None or not debit.applied:
                raise RefundWithoutDebit(f"transfer {transfer_id} has no applied debit to refund")
            account = accounts_lock(ids=[debit.account_id])[debit.account_id]
            _balance_change(account, debit.amount)
            operation = AccountOperation.objects.using(DB).create(
                account=account,
                kind=AccountOperation.Kind.REFUND,
                transfer_id=transfer_id,
                amount=debit.amount,
                currency=debit.currency,
                applied=True,
            )
        _reply(operation, ok_event=EVENT_REFUNDED, failed_event=EVENT_REFUNDED)
