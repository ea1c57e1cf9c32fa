"""Reads on the accounts database."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from accounts.models import Account, AccountOperation
from accounts.services import AccountNotFound


def accounts_for_user(*, user) -> QuerySet[Account]:
    accounts = Account.objects.using("accounts").order_by("id")
    return accounts if user.is_staff else accounts.filter(owner_id=user.pk)


def account_get(*, user, account_id: int) -> Account:
    """The account if the caller may see it; another user's account is 404, like a missing one."""
    account = accounts_for_user(user=user).filter(id=account_id).first()
    if account is None:
        raise AccountNotFound(f"no account {account_id}")
    return account


def deposit_ids_between(*, since: datetime, until: datetime) -> list:
    """Ids of the deposits applied in [since, until), oldest first."""
    return list(
        AccountOperation.objects.using("accounts")
        .filter(kind=AccountOperation.Kind.DEPOSIT, created_at__gte=since, created_at__lt=until)
        .order_by("created_at")
        .values_list("deposit_id", flat=True)
    )
