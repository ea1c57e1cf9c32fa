"""Celery tasks of the accounts side: thin wrappers that read a ``contracts`` message and call
one service; the beat's deposit watchdog (see CELERY_BEAT_SCHEDULE).

Transient errors (a lost connection, a deadlock victim, a serialization failure) retry with
capped exponential backoff and jitter; a refund (compensation) retries until it succeeds."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from accounts import services
from contracts.accounts import DepositJournaled
from contracts.saga import CreditAccount, DebitAccount, RefundAccount
from core.outbox import consumer_retry


@shared_task(name=DebitAccount.name, **consumer_retry())
def debit(*, message_id: str, **payload: Any) -> None:
    command = DebitAccount.from_payload(payload)
    services.account_debit(
        message_id=message_id,
        transfer_id=command.transfer_id,
        account_id=command.account_id,
        amount=command.amount,
        currency=command.currency,
    )


@shared_task(name=CreditAccount.name, **consumer_retry())
def credit(*, message_id: str, **payload: Any) -> None:
    command = CreditAccount.from_payload(payload)
    services.account_credit(
        message_id=message_id,
        transfer_id=command.transfer_id,
        account_id=command.account_id,
        amount=command.amount,
        currency=command.currency,
    )


@shared_task(
    name=RefundAccount.name,
    **consumer_retry(max_retries=None, also=(services.RefundWithoutDebit,)),
)
def refund(*, message_id: str, **payload: Any) -> None:
    command = RefundAccount.from_payload(payload)
    services.account_refund(
        message_id=message_id,
        transfer_id=command.transfer_id,
        account_id=command.account_id,
        amount=command.amount,
        currency=command.currency,
    )


@shared_task(name=DepositJournaled.name, **consumer_retry(max_retries=None))
def on_deposit_journaled(*, message_id: str, **payload: Any) -> None:
    services.deposit_journaled_mark(deposit_id=DepositJournaled.from_payload(payload).deposit_id)


@shared_task(name="accounts.deposit_watchdog")
def deposit_watchdog() -> int:
    return services.deposit_watchdog(
        stuck_after_s=settings.SAGA_STUCK_AFTER_S, window_s=settings.DEPOSIT_WATCH_WINDOW_S
    )
