"""Reads on the ledger database (accounts are known through ``ledger.directory``)."""

from __future__ import annotations

from django.db.models import QuerySet

from ledger.directory import AccountNotFound, known_account_ids_of, known_accounts_get
from ledger.models import JournalEntry, Transfer
from ledger.services import TransferNotFound


def transfers_for_user(*, user) -> QuerySet[Transfer]:
    transfers = Transfer.objects.using("ledger").order_by("-created_at")
    return transfers if user.is_staff else transfers.filter(owner_id=user.pk)


def transfer_get(*, user, transfer_id) -> Transfer:
    transfer = (
        transfers_for_user(user=user).prefetch_related("transitions").filter(id=transfer_id).first()
    )
    if transfer is None:
        raise TransferNotFound(f"no transfer {transfer_id}")
    return transfer


def journal_entries_for_user(*, user, account_id: int | None = None) -> QuerySet[JournalEntry]:
    """Entries touching the user's accounts (staff: every entry), optionally one account's; an
    account that is not the user's (or does not exist) is ``AccountNotFound``, as elsewhere."""
    entries = JournalEntry.objects.using("ledger").prefetch_related("postings").order_by("-id")
    if account_id is not None:
        account = known_accounts_get(ids=[account_id]).get(account_id)
        if account is None or not (user.is_staff or account.owner_id == user.pk):
            owner = "no" if user.is_staff else "you have no"
            raise AccountNotFound(f"{owner} account {account_id}", field="account")
    if not user.is_staff:
        own = known_account_ids_of(owner_id=user.pk)
        entries = entries.filter(postings__account_id__in=own).distinct()
    if account_id is not None:
        entries = entries.filter(postings__account_id=account_id).distinct()
    return entries
