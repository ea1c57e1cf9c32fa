"""Reads on the ledger database, and the reconciliation of ledger and accounts."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from accounts.models import Account, AccountOperation
from ledger.models import JournalEntry, Posting, Transfer
from ledger.services import TransferNotFound

State = Transfer.State
# Money that has left the source but is not (yet) on the destination or back on the source.
HELD_STATES = (State.DEBITED, State.CREDITED, State.COMPENSATING)
MAX_LISTED = 50


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
    entries = JournalEntry.objects.using("ledger").prefetch_related("postings").order_by("-id")
    if not user.is_staff:
        own = list(
            Account.objects.using("accounts").filter(owner_id=user.pk).values_list("id", flat=True)
        )
        if account_id is not None and account_id not in own:
            return entries.none()
        entries = entries.filter(postings__account_id__in=own).distinct()
    if account_id is not None:
        entries = entries.filter(postings__account_id=account_id).distinct()
    return entries


def reconciliation_report() -> dict[str, Any]:
    """Invariants 1-3 of DESIGN section 3, plus "operations explain balances" (no operation
    applied twice). Exact when the saga is quiet; under traffic the two databases are read at
    slightly different moments, so an in-flight step can show as a transient difference."""
    balances = {
        row["id"]: row
        for row in Account.objects.using("accounts").values("id", "currency", "balance")
    }
    applied = AccountOperation.objects.using("accounts").filter(applied=True)
    deposits = {
        row["currency"]: row["total"]
        for row in applied.filter(kind="deposit").values("currency").annotate(total=Sum("amount"))
    }
    held = {
        row["currency"]: row["total"]
        for row in Transfer.objects.using("ledger")
        .filter(state__in=HELD_STATES)
        .values("currency")
        .annotate(total=Sum("amount"))
    }
    balance_totals: dict[str, int] = defaultdict(int)
    for row in balances.values():
        balance_totals[row["currency"]] += row["balance"]
    money = []
    for currency in sorted(set(deposits) | set(balance_totals) | set(held)):
        left = balance_totals.get(currency, 0) + (held.get(currency) or 0)
        money.append(
            {
                "currency": currency,
                "balances": balance_totals.get(currency, 0),
                "held_in_transfers": held.get(currency) or 0,
                "deposits": deposits.get(currency) or 0,
                "ok": left == (deposits.get(currency) or 0),
            }
        )

    operations: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for transfer_id, kind in applied.exclude(kind="deposit").values_list("transfer_id", "kind"):
        operations[str(transfer_id)][kind] += 1
    entries = dict(
        JournalEntry.objects.using("ledger")
        .filter(transfer_id__isnull=False)
        .values("transfer_id")
        .annotate(n=Count("id"))
        .values_list("transfer_id", "n")
    )
    expected = {
        State.COMPLETED: ({"debit": 1, "credit": 1, "refund": 0}, 1),
        State.COMPENSATED: ({"debit": 1, "credit": 0, "refund": 1}, 0),
        State.FAILED: ({"debit": 0, "credit": 0, "refund": 0}, 0),
    }
    transfers_wrong = []
    terminal = Transfer.objects.using("ledger").filter(state__in=list(expected))
    for transfer_id, state in terminal.values_list("id", "state").iterator():
        want_ops, want_entries = expected[state]
        got_ops = {kind: operations[str(transfer_id)].get(kind, 0) for kind in want_ops}
        got_entries = entries.get(transfer_id, 0)
        if got_ops != want_ops or got_entries != want_entries:
            transfers_wrong.append(
                {
                    "transfer": str(transfer_id),
                    "state": state,
                    "operations": got_ops,
                    "entries": got_entries,
                }
            )

    journal = dict(
        Posting.objects.using("ledger")
        .filter(account_id__isnull=False)
        .values("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    explained: dict[int, int] = defaultdict(int)
    sign = {"deposit": 1, "credit": 1, "refund": 1, "debit": -1}
    for account_id, kind, total in (
        applied.values("account_id", "kind")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "kind", "total")
    ):
        explained[account_id] += sign[kind] * total
    journal_wrong, operations_wrong = [], []
    for account_id, row in sorted(balances.items()):
        if journal.get(account_id, 0) != row["balance"]:
            journal_wrong.append(
                {
                    "account": account_id,
                    "balance": row["balance"],
                    "journal": journal.get(account_id, 0),
                }
            )
        if explained.get(account_id, 0) != row["balance"]:
            operations_wrong.append(
                {
                    "account": account_id,
                    "balance": row["balance"],
                    "operations": explained.get(account_id, 0),
                }
            )
    unbalanced = list(
        Posting.objects.using("ledger")
        .values("entry_id")
        .annotate(total=Sum("amount"))
        .filter(~Q(total=0))
        .values_list("entry_id", flat=True)[:MAX_LISTED]
    )
    report = {
        "money_conserved": {"ok": all(row["ok"] for row in money), "currencies": money},
        "transfer_operations": {
            "ok": not transfers_wrong,
            "checked": terminal.count(),
            "differing": transfers_wrong[:MAX_LISTED],
        },
        "journal_matches_balances": {
            "ok": not journal_wrong and not unbalanced,
            "differing_accounts": journal_wrong[:MAX_LISTED],
            "unbalanced_entries": unbalanced,
        },
        "operations_explain_balances": {
            "ok": not operations_wrong,
            "differing_accounts": operations_wrong[:MAX_LISTED],
        },
        "in_flight": Transfer.objects.using("ledger")
        .exclude(state__in=list(Transfer.TERMINAL))
        .count(),
    }
    report["ok"] = all(
        section["ok"]
        for name, section in report.items()
        if isinstance(section, dict) and "ok" in section
    )
    return report
