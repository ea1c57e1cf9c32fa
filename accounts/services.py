"""Writes on the accounts database: accounts, deposits, and the saga's debit/credit/refund.

Each saga step is one transaction on ``accounts`` that records the message in the inbox,
applies (or rejects) the operation, and writes the reply event to the outbox. Whatever the
ledger needs to know about accounts (opened, status changed, deposited) leaves the same way, as
``contracts`` messages written in the transaction that made the change.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta

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
from core.faults import fault_roll, fault_sleep
from core.metrics import step_timer
from core.money import amount_parse, currency_minor_digits
from core.outbox import (
    consumer_crash_point,
    crash_after_commit,
    inbox_accept,
    outbox_message_put,
    outbox_resend,
)

logger = logging.getLogger(__name__)
DB = "accounts"

CONSUMER_DEBIT = "debit"
CONSUMER_CREDIT = "credit"
CONSUMER_REFUND = "refund"
# Each consumer can be killed right after its commit (``consumer_crash_point``).
CRASH_POINTS = tuple(
    consumer_crash_point(consumer)
    for consumer in (CONSUMER_DEBIT, CONSUMER_CREDIT, CONSUMER_REFUND)
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


def deposit_journaled_mark(*, deposit_id: str) -> bool:
    """The ledger acknowledged the deposit's journal entry: the deposit watchdog stops sending
    its event. Idempotent (an acknowledgement can arrive more than once); False when it had
    been marked already."""
    with transaction.atomic(using=DB):
        marked = (
            AccountOperation.objects.using(DB)
            .filter(
                kind=AccountOperation.Kind.DEPOSIT, deposit_id=deposit_id, journaled_at__isnull=True
            )
            .update(journaled_at=timezone.now())
        )
    return bool(marked)


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


def _reply(
    operation: AccountOperation,
    *,
    applied: type[TransferReply],
    refused: type[TransferRefusal],
) -> None:
    transfer_id = str(operation.transfer_id)
    message = (
        applied(transfer_id=transfer_id)
        if operation.applied
        else refused(transfer_id=transfer_id, reason=operation.reason)
    )
    outbox_message_put(using=DB, message=message)


def _existing(transfer_id: uuid.UUID | str, kind: str) -> AccountOperation | None:
    return AccountOperation.objects.using(DB).filter(transfer_id=transfer_id, kind=kind).first()


def _reject_unknown(transfer_id: str, refused: type[TransferRefusal]) -> None:
    """An account that does not exist (deleted in the admin): no operation row can name it,
    and accounts never come back, so every repetition gets the same answer."""
    outbox_message_put(
        using=DB, message=refused(transfer_id=str(transfer_id), reason="account_not_found")
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
        return False
    crash_after_commit(consumer_crash_point(consumer), using=DB)
    return True


def _transfer_operation_apply(
    *,
    kind: str,
    transfer_id: str,
    account_id: int,
    amount: int,
    currency: str,
    refusal: Callable[[Account], str],
    refused: type[TransferRefusal],
) -> AccountOperation | None:
    """The debit or credit of a transfer, once: an existing operation is returned as it is;
    else the account is locked, ``refusal`` decides (empty: apply), and the operation is
    recorded applied or not. None when the account does not exist (already answered)."""
    operation = _existing(transfer_id, kind)
    if operation is not None:
        return operation
    account = accounts_lock(ids=[account_id]).get(account_id)
    if account is None:
        _reject_unknown(transfer_id, refused)
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
    with step_timer(CONSUMER_DEBIT), transaction.atomic(using=DB):
        if not _inbox_accepted(message_id=message_id, consumer=CONSUMER_DEBIT):
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
            refused=DebitRejected,
        )
        if operation is not None:
            _reply(operation, applied=AccountDebited, refused=DebitRejected)


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
    with step_timer(CONSUMER_CREDIT), transaction.atomic(using=DB):
        if not _inbox_accepted(message_id=message_id, consumer=CONSUMER_CREDIT):
            return
        operation = _transfer_operation_apply(
            kind=AccountOperation.Kind.CREDIT,
            transfer_id=transfer_id,
            account_id=account_id,
            amount=amount,
            currency=currency,
            refusal=refusal,
            refused=CreditFailed,
        )
        if operation is not None:
            _reply(operation, applied=AccountCredited, refused=CreditFailed)


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
    with step_timer(CONSUMER_REFUND), transaction.atomic(using=DB):
        if not _inbox_accepted(message_id=message_id, consumer=CONSUMER_REFUND):
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
        outbox_message_put(
            using=DB, message=AccountRefunded(transfer_id=str(operation.transfer_id))
        )
