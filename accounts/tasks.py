"""Celery tasks of the accounts side: batching consumers (``core.consumers``) of the ledger's
commands and acknowledgements, each reading its ``contracts`` messages and calling one
service for the whole batch; the beat's deposit watchdog (see CELERY_BEAT_SCHEDULE).

Transient errors (a lost connection, a deadlock victim, a serialization failure) are retried
with capped exponential backoff and jitter; a refund (compensation) is retried until it
succeeds; any other failure parks the message (``accounts.models.AccountsParkedMessage``)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from accounts import services
from accounts.models import AccountsParkedMessage
from contracts.accounts import DepositJournaled
from contracts.saga import CreditAccount, DebitAccount, RefundAccount, TransferStep
from core.consumers import ConsumerSide, Deferred, Delivery, batch_consumer
from core.outbox import outbox_publishing_deferred


def _commands(deliveries: list[Delivery], command: type[TransferStep], consumer: str) -> Deferred:
    steps = [(delivery, command.from_payload(delivery.payload)) for delivery in deliveries]
    with outbox_publishing_deferred():
        return services.transfer_commands_apply(
            commands=[
                services.TransferCommand(
                    message_id=delivery.message_id,
                    consumer=consumer,
                    transfer_id=step.transfer_id,
                    account_id=step.account_id,
                    amount=step.amount,
                    currency=step.currency,
                    request_id=delivery.request_id,
                )
                for delivery, step in steps
            ]
        )


CONSUMER: ConsumerSide = {"using": "accounts", "parked_model": AccountsParkedMessage}


@batch_consumer(name=DebitAccount.name, consumer=services.CONSUMER_DEBIT, **CONSUMER)
def debit(deliveries: list[Delivery]) -> Deferred:
    return _commands(deliveries, DebitAccount, services.CONSUMER_DEBIT)


@batch_consumer(name=CreditAccount.name, consumer=services.CONSUMER_CREDIT, **CONSUMER)
def credit(deliveries: list[Delivery]) -> Deferred:
    return _commands(deliveries, CreditAccount, services.CONSUMER_CREDIT)


@batch_consumer(
    name=RefundAccount.name,
    consumer=services.CONSUMER_REFUND,
    retry_on=(services.RefundWithoutDebit,),
    max_retries=None,
    **CONSUMER,
)
def refund(deliveries: list[Delivery]) -> Deferred:
    return _commands(deliveries, RefundAccount, services.CONSUMER_REFUND)


@batch_consumer(
    name=DepositJournaled.name, consumer="on_deposit_journaled", max_retries=None, **CONSUMER
)
def on_deposit_journaled(deliveries: list[Delivery]) -> None:
    services.deposits_journaled_mark(
        deposit_ids=[
            DepositJournaled.from_payload(delivery.payload).deposit_id for delivery in deliveries
        ]
    )


@shared_task(name="accounts.deposit_watchdog")
def deposit_watchdog() -> int:
    return services.deposit_watchdog(
        stuck_after_s=settings.SAGA_STUCK_AFTER_S, window_s=settings.DEPOSIT_WATCH_WINDOW_S
    )
