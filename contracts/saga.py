"""The transfer saga's messages (architecture section 3).

Commands, ledger -> accounts: debit the source, credit the destination, refund the source.
Replies, accounts -> ledger: one per command, success or refusal with a reason. A command is
answered with the outcome already recorded when it comes again (a re-drive), so the ledger may
send one as often as it needs to.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.base import Message


@dataclass(frozen=True)
class TransferStep(Message):
    """A command to move ``amount`` minor units of ``currency`` on one account for a transfer."""

    transfer_id: str
    account_id: int
    amount: int
    currency: str


@dataclass(frozen=True)
class DebitAccount(TransferStep):
    name = "accounts.debit"


@dataclass(frozen=True)
class CreditAccount(TransferStep):
    name = "accounts.credit"


@dataclass(frozen=True)
class RefundAccount(TransferStep):
    """Compensation: give back an applied debit (its amount is taken from the debit)."""

    name = "accounts.refund"


@dataclass(frozen=True)
class TransferReply(Message):
    transfer_id: str


@dataclass(frozen=True)
class TransferRefusal(Message):
    transfer_id: str
    reason: str


@dataclass(frozen=True)
class AccountDebited(TransferReply):
    name = "ledger.on_debited"


@dataclass(frozen=True)
class DebitRejected(TransferRefusal):
    name = "ledger.on_debit_rejected"


@dataclass(frozen=True)
class AccountCredited(TransferReply):
    name = "ledger.on_credited"


@dataclass(frozen=True)
class CreditFailed(TransferRefusal):
    name = "ledger.on_credit_failed"


@dataclass(frozen=True)
class AccountRefunded(TransferReply):
    name = "ledger.on_refunded"
