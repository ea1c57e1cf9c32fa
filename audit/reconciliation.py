"""The reconciliation of accounts and ledger (``GET /api/ledger/reconciliation/``, and the
test suites' check). Read only: every read runs in a read-only transaction of its database,
so the auditor cannot change what it audits."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, Sum

from accounts.models import Account, AccountOperation
from core.db import read_only, snapshot
from ledger.models import JournalEntry, Posting, Transfer

State = Transfer.State
MAX_LISTED = 50


def money_in_accounts() -> tuple[dict[int, dict], list[dict], dict[int, int], dict[str, dict]]:
    """Everything the accounts database says, from one snapshot of it: balances, invariant 1
    per currency, what the applied operations add up to per account, and the applied
    operations per transfer.

    Money held by a transfer is a debit applied with neither a credit nor a refund applied:
    the accounts database alone records money leaving and arriving, so invariant 1 read this
    way is exact at every instant, under traffic too."""
    with snapshot("accounts"):
        balances = {
            row["id"]: row
            for row in Account.objects.using("accounts").values("id", "currency", "balance")
        }
        applied = AccountOperation.objects.using("accounts").filter(applied=True)
        settled = applied.filter(kind__in=["credit", "refund"], transfer_id=OuterRef("transfer_id"))
        by_kind = defaultdict(lambda: defaultdict(int))
        for currency, kind, total in (
            applied.values("currency", "kind")
            .annotate(total=Sum("amount"))
            .values_list("currency", "kind", "total")
        ):
            by_kind[currency][kind] = total
        held = dict(
            applied.filter(kind="debit")
            .exclude(Exists(settled))
            .values("currency")
            .annotate(total=Sum("amount"))
            .values_list("currency", "total")
        )
        per_account = list(
            applied.values("account_id", "kind")
            .annotate(total=Sum("amount"))
            .values_list("account_id", "kind", "total")
        )
        per_transfer: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for transfer_id, kind in applied.exclude(kind="deposit").values_list("transfer_id", "kind"):
            per_transfer[str(transfer_id)][kind] += 1
    balance_totals: dict[str, int] = defaultdict(int)
    for row in balances.values():
        balance_totals[row["currency"]] += row["balance"]
    money = []
    for currency in sorted(set(by_kind) | set(balance_totals)):
        deposits = by_kind[currency].get("deposit", 0)
        money.append(
            {
                "currency": currency,
                "balances": balance_totals.get(currency, 0),
                "held_in_transfers": held.get(currency, 0),
                "deposits": deposits,
                "ok": balance_totals.get(currency, 0) + held.get(currency, 0) == deposits,
            }
        )
    sign = {"deposit": 1, "credit": 1, "refund": 1, "debit": -1}
    explained: dict[int, int] = defaultdict(int)
    for account_id, kind, total in per_account:
        explained[account_id] += sign[kind] * total
    return balances, money, explained, per_transfer


def reconciliation_report() -> dict[str, Any]:
    """Invariants 1-3 of architecture section 3, plus "operations explain balances" (no operation
    applied twice).

    Exact under traffic, except the journal: terminal transfers are read from the ledger
    before the accounts snapshot (a transfer becomes terminal only after its operations
    committed), and money comes from that one snapshot. The journal is posted after the
    accounts database changes, so ``journal_matches_balances`` holds when the saga is quiet.
    The ledger's reads are one read-only READ COMMITTED transaction: each sees what was
    committed when it ran, in the order above."""
    expected = {
        State.COMPLETED: ({"debit": 1, "credit": 1, "refund": 0}, 1),
        State.COMPENSATED: ({"debit": 1, "credit": 0, "refund": 1}, 0),
        State.FAILED: ({"debit": 0, "credit": 0, "refund": 0}, 0),
    }
    with read_only("ledger"):
        terminal = list(
            Transfer.objects.using("ledger")
            .filter(state__in=list(expected))
            .values_list("id", "state")
        )
        entries = dict(
            JournalEntry.objects.using("ledger")
            .filter(transfer_id__isnull=False)
            .values("transfer_id")
            .annotate(n=Count("id"))
            .values_list("transfer_id", "n")
        )
        balances, money, explained, operations = money_in_accounts()
        journal = dict(
            Posting.objects.using("ledger")
            .filter(account_id__isnull=False)
            .values("account_id")
            .annotate(total=Sum("amount"))
            .values_list("account_id", "total")
        )
        unbalanced = list(
            Posting.objects.using("ledger")
            .values("entry_id")
            .annotate(total=Sum("amount"))
            .filter(~Q(total=0))
            .values_list("entry_id", flat=True)[:MAX_LISTED]
        )
        in_flight = (
            Transfer.objects.using("ledger").exclude(state__in=list(Transfer.TERMINAL)).count()
        )
    transfers_wrong = []
    for transfer_id, state in terminal:
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
    report = {
        "money_conserved": {"ok": all(row["ok"] for row in money), "currencies": money},
        "transfer_operations": {
            "ok": not transfers_wrong,
            "checked": len(terminal),
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
        "in_flight": in_flight,
    }
    report["ok"] = all(
        section["ok"]
        for name, section in report.items()
        if isinstance(section, dict) and "ok" in section
    )
    return report
