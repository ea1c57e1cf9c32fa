"""Reads on the accounts database."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Account
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
