"""Celery tasks of the accounts side: thin wrappers that take ids and call one service.

Transient errors (a lost connection, a deadlock victim, a serialization failure) retry with
capped exponential backoff and jitter; a refund (compensation) retries until it succeeds."""

from __future__ import annotations

from celery import shared_task

from accounts import services
from core.outbox import consumer_retry


@shared_task(name="accounts.debit", **consumer_retry())
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


@shared_task(name="accounts.credit", **consumer_retry())
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
    **consumer_retry(max_retries=None, also=(services.RefundWithoutDebit,)),
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
