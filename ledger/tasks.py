"""Celery tasks of the ledger side: the saga's event consumers, the notification, and the
periodic relay sweep, watchdog and idempotency-key purge (see CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from core.idempotency import idempotency_keys_purge
from core.outbox import consumer_retry, outbox_relay_all
from ledger import services
from ledger.models import TransferIdempotencyKey

RETRY = consumer_retry()


@shared_task(name="ledger.on_debited", **RETRY)
def on_debited(*, message_id: str, transfer_id: str) -> None:
    services.transfer_on_debited(message_id=message_id, transfer_id=transfer_id)


@shared_task(name="ledger.on_debit_rejected", **RETRY)
def on_debit_rejected(*, message_id: str, transfer_id: str, reason: str) -> None:
    services.transfer_on_debit_rejected(
        message_id=message_id, transfer_id=transfer_id, reason=reason
    )


@shared_task(name="ledger.on_credited", **RETRY)
def on_credited(*, message_id: str, transfer_id: str) -> None:
    services.transfer_on_credited(message_id=message_id, transfer_id=transfer_id)


@shared_task(name="ledger.on_credit_failed", **RETRY)
def on_credit_failed(*, message_id: str, transfer_id: str, reason: str) -> None:
    services.transfer_on_credit_failed(
        message_id=message_id, transfer_id=transfer_id, reason=reason
    )


@shared_task(name="ledger.on_refunded", **consumer_retry(max_retries=None))
def on_refunded(*, message_id: str, transfer_id: str) -> None:
    services.transfer_on_refunded(message_id=message_id, transfer_id=transfer_id)


@shared_task(name="ledger.on_deposited", **consumer_retry(max_retries=None))
def on_deposited(
    *, message_id: str, deposit_id: str, account_id: int, amount: int, currency: str
) -> None:
    services.deposit_on_deposited(
        message_id=message_id,
        deposit_id=deposit_id,
        account_id=account_id,
        amount=amount,
        currency=currency,
    )


@shared_task(
    name="ledger.notify",
    **consumer_retry(max_retries=20, also=(services.NotificationUnavailable,)),
)
def notify(*, message_id: str, transfer_id: str) -> None:
    services.transfer_notify(message_id=message_id, transfer_id=transfer_id)


@shared_task(name="ledger.outbox_sweep")
def outbox_sweep() -> dict[str, int]:
    return outbox_relay_all()


@shared_task(name="ledger.saga_watchdog")
def saga_watchdog() -> int:
    return services.saga_watchdog(stuck_after_s=settings.SAGA_STUCK_AFTER_S)


@shared_task(name="ledger.deposit_watchdog")
def deposit_watchdog() -> int:
    return services.deposit_journal_watchdog(
        stuck_after_s=settings.SAGA_STUCK_AFTER_S, window_s=settings.DEPOSIT_WATCH_WINDOW_S
    )


@shared_task(name="ledger.idempotency_keys_purge")
def idempotency_keys_purge_task() -> int:
    return idempotency_keys_purge(model=TransferIdempotencyKey, using="ledger")
