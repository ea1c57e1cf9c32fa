"""Celery tasks of the ledger side: batching consumers (``core.consumers``) of the accounts
service's messages (the saga's replies, deposits, account events; each reads its
``contracts`` messages and calls one service for the batch), the notification, and the
periodic watchdog and idempotency-key purge (see CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

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
from core.consumers import ConsumerSide, Delivery, batch_consumer
from core.idempotency import idempotency_keys_purge
from core.outbox import outbox_publishing_deferred
from core.request_id import request_id_bound
from ledger import directory, services
from ledger.models import LedgerParkedMessage, TransferIdempotencyKey

CONSUMER: ConsumerSide = {"using": "ledger", "parked_model": LedgerParkedMessage}


def _events(
    deliveries: list[Delivery], reply: type[TransferReply | TransferRefusal], consumer: str
) -> None:
    events = []
    for delivery in deliveries:
        message = reply.from_payload(delivery.payload)
        events.append(
            services.TransferEvent(
                message_id=delivery.message_id,
                consumer=consumer,
                transfer_id=message.transfer_id,
                reason=getattr(message, "reason", ""),
                request_id=delivery.request_id,
            )
        )
    with outbox_publishing_deferred():
        services.transfer_events_apply(events=events)


@batch_consumer(name=AccountDebited.name, consumer="on_debited", **CONSUMER)
def on_debited(deliveries: list[Delivery]) -> None:
    _events(deliveries, AccountDebited, "on_debited")


@batch_consumer(name=DebitRejected.name, consumer="on_debit_rejected", **CONSUMER)
def on_debit_rejected(deliveries: list[Delivery]) -> None:
    _events(deliveries, DebitRejected, "on_debit_rejected")


@batch_consumer(name=AccountCredited.name, consumer="on_credited", **CONSUMER)
def on_credited(deliveries: list[Delivery]) -> None:
    _events(deliveries, AccountCredited, "on_credited")


@batch_consumer(name=CreditFailed.name, consumer="on_credit_failed", **CONSUMER)
def on_credit_failed(deliveries: list[Delivery]) -> None:
    _events(deliveries, CreditFailed, "on_credit_failed")


@batch_consumer(name=AccountRefunded.name, consumer="on_refunded", max_retries=None, **CONSUMER)
def on_refunded(deliveries: list[Delivery]) -> None:
    _events(deliveries, AccountRefunded, "on_refunded")


@batch_consumer(
    name=DepositApplied.name, consumer=services.CONSUMER_DEPOSITED, max_retries=None, **CONSUMER
)
def on_deposited(deliveries: list[Delivery]) -> None:
    """Deposits are few: each in its own transaction (the inbox keeps a retried batch's
    applied ones from applying twice)."""
    with outbox_publishing_deferred():
        for delivery in deliveries:
            event = DepositApplied.from_payload(delivery.payload)
            with request_id_bound(delivery.request_id):
                services.deposit_on_deposited(
                    message_id=delivery.message_id,
                    deposit_id=event.deposit_id,
                    account_id=event.account_id,
                    amount=event.amount,
                    currency=event.currency,
                )


def _known_accounts_apply(
    deliveries: list[Delivery], event: type[AccountOpened | AccountStatusChanged]
) -> None:
    """Each snapshot in its own statement: the newest version wins, whatever the order."""
    for delivery in deliveries:
        snapshot = event.from_payload(delivery.payload)
        with request_id_bound(delivery.request_id):
            directory.known_account_apply(
                account_id=snapshot.account_id,
                owner_id=snapshot.owner_id,
                currency=snapshot.currency,
                status=snapshot.status,
                version=snapshot.version,
            )


@batch_consumer(name=AccountOpened.name, consumer="on_account_opened", max_retries=None, **CONSUMER)
def on_account_opened(deliveries: list[Delivery]) -> None:
    _known_accounts_apply(deliveries, AccountOpened)


@batch_consumer(
    name=AccountStatusChanged.name,
    consumer="on_account_status_changed",
    max_retries=None,
    **CONSUMER,
)
def on_account_status_changed(deliveries: list[Delivery]) -> None:
    _known_accounts_apply(deliveries, AccountStatusChanged)


@batch_consumer(
    name=services.COMMAND_NOTIFY,
    consumer=services.CONSUMER_NOTIFY,
    retry_on=(services.NotificationUnavailable,),
    max_retries=20,
    **CONSUMER,
)
def notify(deliveries: list[Delivery]) -> None:
    services.transfers_notify(
        notices=[
            (delivery.message_id, services.NotifyOwner.from_payload(delivery.payload).transfer_id)
            for delivery in deliveries
        ]
    )


@shared_task(name="ledger.saga_watchdog")
def saga_watchdog() -> int:
    return services.saga_watchdog(stuck_after_s=settings.SAGA_STUCK_AFTER_S)


@shared_task(name="ledger.idempotency_keys_purge")
def idempotency_keys_purge_task() -> int:
    return idempotency_keys_purge(model=TransferIdempotencyKey, using="ledger")
