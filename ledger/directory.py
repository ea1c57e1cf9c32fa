"""The ledger's read model of accounts (``KnownAccount``), fed by the accounts service.

Why a read model, and not validation moved into the debit step: the API answers a transfer to
an unknown account, or from another user's account, with a synchronous 404, and one between
accounts of other currencies with a 400, before any transfer exists (architecture section 6). Moving
those checks into the debit would turn them into 202 followed by a failed transfer: another
API. So the ledger keeps what it needs to decide them (owner, currency, status) in its own
database, from the events accounts writes in the same transaction as each change
(``AccountOpened``, ``AccountStatusChanged``). Funds and status are still decided by the
debit, under the account's row lock: a check here could only be stale.

The lag: an account's event reaches the ledger a moment after the account's creation commits
(the outbox publishes right after commit; a worker applies it). A transfer naming an account
the ledger has not heard of yet waits for it, up to ``LEDGER_ACCOUNT_WAIT_S``, before answering
404; an account the ledger knows answers at once. Tests feed the read model as production does:
the account factory opens accounts through the service and delivers its event to this
consumer.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from core.errors import DomainError
from ledger.models import KnownAccount

DB = "ledger"
POLL_INTERVAL_S = 0.05


class AccountNotFound(DomainError):
    code = "account_not_found"
    status = 404
    title = "Account not found"


def known_account_apply(
    *, account_id: int, owner_id: int, currency: str, status: str, version: int
) -> bool:
    """Record an account's snapshot unless a newer one is recorded already; True if applied.

    One statement (insert, or update when the stored version is older), so concurrent and
    repeated deliveries in any order leave the newest snapshot: no inbox needed."""
    table = connections[DB].ops.quote_name(KnownAccount._meta.db_table)
    with transaction.atomic(using=DB), connections[DB].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (account_id, owner_id, currency, status, version, updated_at) "  # noqa: S608 - table name from the model
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (account_id) DO UPDATE SET "
            "status = EXCLUDED.status, version = EXCLUDED.version, "
            "updated_at = EXCLUDED.updated_at "
            f"WHERE {table}.version < EXCLUDED.version RETURNING account_id",
            [account_id, owner_id, currency, status, version, timezone.now()],
        )
        return cursor.fetchone() is not None


def known_accounts_get(*, ids: list[int], wait_s: float | None = None) -> dict[int, KnownAccount]:
    """The known accounts among ``ids``; for ids not known yet, wait up to ``wait_s`` (default
    ``LEDGER_ACCOUNT_WAIT_S``) for their events to arrive (see the module's docstring)."""
    wanted = set(ids)
    deadline = time.monotonic() + (settings.LEDGER_ACCOUNT_WAIT_S if wait_s is None else wait_s)
    while True:
        known = KnownAccount.objects.using(DB).in_bulk(list(wanted))
        if len(known) == len(wanted) or time.monotonic() >= deadline:
            return known
        time.sleep(POLL_INTERVAL_S)


def known_account_ids_of(*, owner_id: int) -> list[int]:
    accounts = KnownAccount.objects.using(DB).filter(owner_id=owner_id)
    return list(accounts.values_list("account_id", flat=True))
