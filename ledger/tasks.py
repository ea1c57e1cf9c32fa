"""Celery tasks of the ledger side: consumers of the accounts service's messages (the saga's
replies, deposits, account events; each reads its ``contracts`` message and calls one
service), the notification, and the periodic watchdog and idempotency-key purge (see
CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from contracts.accounts import AccountOpened, AccountStatusChanged, DepositApplied
from contracts.saga import (
    AccountCredited,
    AccountDebited,
    AccountRefunded,
    CreditFailed,
    DebitRejected,
)
from core.idempotency import idempotency_keys_purge
from core.outbox import consumer_retry
from ledger import directory, services
from ledger.models import TransferIdempotencyKey

RETRY = consumer_retry()


@shared_task(name=AccountDebited.name, **RETRY)
def on_debited(*, message_id: str, **payload: Any) -> None:
    event = AccountDebited.from_payload(payload)
    services.transfer_on_debited(message_id=message_id, transfer_id=event.transfer_id)


@shared_task(name=DebitRejected.name, **RETRY)
def on_debit_rejected(*, message_id: str, **payload: Any) -> None:
    event = DebitRejected.from_payload(payload)
    services.transfer_on_debit_rejected(
        message_id=message_id, transfer_id=event.transfer_id, reason=event.reason
    )


@shared_task(name=AccountCredited.name, **RETRY)
def on_credited(*, message_id: str, **payload: Any) -> None:
    event = AccountCredited.from_payload(payload)
    services.transfer_on_credited(message_id=message_id, transfer_id=event.transfer_id)


@shared_task(name=CreditFailed.name, **RETRY)
def on_credit_failed(*, message_id: str, **payload: Any) -> None:
    event = CreditFailed.from_payload(payload)
    services.transfer_on_credit_failed(
        message_id=message_id, transfer_id=event.transfer_id, reason=event.reason
    )


@shared_task(name=AccountRefunded.name, **consumer_retry(max_retries=None))
def on_refunded(*, message_id: str, **payload: Any) -> None:
    event = AccountRefunded.from_payload(payload)
    services.transfer_on_refunded(message_id=message_id, transfer_id=event.transfer_id)


@shared_task(name=DepositApplied.name, **consumer_retry(max_retries=None))
def on_deposited(*, message_id: str, **payload: Any) -> None:
    event = DepositApplied.from_payload(payload)
    services.deposit_on_deposited(
        message_id=message_id,
        deposit_id=event.deposit_id,
        account_id=event.account_id,
        amount=event.amount,
        currency=event.currency,
    )


def _known_account_apply(event: AccountOpened | AccountStatusChanged) -> None:
    directory.known_account_apply(
        account_id=event.account_id,
        owner_id=event.owner_id,
        currency=event.currency,
        status=event.status,
        version=event.version,
    )


@shared_task(name=AccountOpened.name, **consumer_retry(max_retries=None))
def on_account_opened(*, message_id: str, **payload: Any) -> None:
    _known_account_apply(AccountOpened.from_payload(payload))


@shared_task(name=AccountStatusChanged.name, **consumer_retry(max_retries=None))
def on_account_status_changed(*, message_id: str, **payload: Any) -> None:
    _known_account_apply(AccountStatusChanged.from_payload(payload))


@shared_task(
    name=services.COMMAND_NOTIFY,
    **consumer_retry(max_retries=20, also=(services.NotificationUnavailable,)),
)
def notify(*, message_id: str, transfer_id: str) -> None:
    services.transfer_notify(message_id=message_id, transfer_id=transfer_id)


@shared_task(name="ledger.saga_watchdog")
def saga_watchdog() -> int:
    return services.saga_watchdog(stuck_after_s=settings.SAGA_STUCK_AFTER_S)


@shared_task(name="ledger.idempotency_keys_purge")
def idempotency_keys_purge_task() -> int:
    return idempotency_keys_purge(model=TransferIdempotencyKey, using="ledger")
