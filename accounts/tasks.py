"""Celery tasks of the accounts side: thin wrappers that take ids and call one service.

Transient errors (a lost connection, a deadlock victim, a serialization failure) retry with
capped exponential backoff and jitter; a refund (compensation) retries until it succeeds."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from accounts import services

TRANSIENT = (OperationalError, InterfaceError)
RETRY = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 1,
    "retry_backoff_max": settings.STATELAB_TASK_MAX_COUNTDOWN_S,
    "retry_jitter": True,
}


@shared_task(name="accounts.debit", max_retries=12, **RETRY)
def debit(
    *, message_id: str, transfer_id: str, account_id: int, amount: int, currency: str
) -> None:
    services.account_debit(
        message_id=message_id,
        transfer_id=transfer_id,
        account_id=account_id,
        amount=amount,
        currency=currency,
    )


@shared_task(name="accounts.credit", max_retries=12, **RETRY)
def credit(
    *, message_id: str, transfer_id: str, account_id: int, amount: int, currency: str
) -> None:
    services.account_credit(
        message_id=message_id,
        transfer_id=transfer_id,
        account_id=account_id,
        amount=amount,
        currency=currency,
    )


@shared_task(
    name="accounts.refund",
    max_retries=None,
    autoretry_for=(*TRANSIENT, services.RefundWithoutDebit),
    retry_backoff=1,
    retry_backoff_max=settings.STATELAB_TASK_MAX_COUNTDOWN_S,
    retry_jitter=True,
)
def refund(
    *, message_id: str, transfer_id: str, account_id: int, amount: int, currency: str
) -> None:
    services.account_refund(
        message_id=message_id,
        transfer_id=transfer_id,
        account_id=account_id,
        amount=amount,
        currency=currency,
    )
