"""What accounts tell the ledger about accounts and deposits, and the ledger's answer.

Account events carry the account's whole public snapshot (owner, currency, status) with its
``version``: whichever order they arrive in, the newest version wins, so the ledger's read
model of accounts converges on the accounts database's state.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.base import Message


@dataclass(frozen=True)
class AccountSnapshot(Message):
    account_id: int
    owner_id: int
    currency: str
    status: str
    version: int


@dataclass(frozen=True)
class AccountOpened(AccountSnapshot):
    name = "ledger.on_account_opened"


@dataclass(frozen=True)
class AccountStatusChanged(AccountSnapshot):
    """Frozen, closed or active again."""

    name = "ledger.on_account_status_changed"


@dataclass(frozen=True)
class DepositApplied(Message):
    """Money came in from outside (staff): the ledger posts cash -> account. Its message id is
    the deposit's id, so a resent copy is recognised by the ledger's inbox."""

    name = "ledger.on_deposited"

    deposit_id: str
    account_id: int
    amount: int
    currency: str


@dataclass(frozen=True)
class DepositJournaled(Message):
    """The ledger holds the deposit's journal entry: accounts stops watching the deposit."""

    name = "accounts.on_deposit_journaled"

    deposit_id: str
