"""Balances and the operations that changed them (database alias ``accounts``)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from core.consumers import ParkedMessage
from core.outbox import InboxMessage, OutboxMessage


class Account(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        FROZEN = "frozen"
        CLOSED = "closed"

    owner_id = models.BigIntegerField(db_index=True, help_text="user id (no cross-db key)")
    currency = models.CharField(max_length=3)
    balance = models.BigIntegerField(default=0, help_text="minor units")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    version = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(balance__gte=0), name="accounts_balance_not_negative"
            )
        ]

    def __str__(self) -> str:
        return f"account {self.pk} ({self.currency}, owner {self.owner_id})"


class AccountOperation(models.Model):
    """One row per (transfer, kind): a debit, credit or refund can be recorded once only, so
    it can never be applied twice. Deposits have a deposit id instead of a transfer.

    A rejected operation is recorded too (``applied`` false, balance untouched), so a re-driven
    command answers with the same outcome instead of deciding again."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit"
        DEBIT = "debit"
        CREDIT = "credit"
        REFUND = "refund"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="operations")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    transfer_id = models.UUIDField(null=True, blank=True)
    deposit_id = models.UUIDField(null=True, blank=True, unique=True)
    amount = models.BigIntegerField(help_text="minor units, positive")
    currency = models.CharField(max_length=3)
    applied = models.BooleanField()
    reason = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    journaled_at = models.DateTimeField(
        null=True, blank=True, help_text="deposits: when the ledger acknowledged its entry"
    )

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="accounts_op_deposit_created",
                condition=models.Q(kind="deposit"),
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["transfer_id", "kind"],
                name="accounts_one_operation_per_transfer_kind",
                condition=models.Q(transfer_id__isnull=False),
            ),
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="accounts_op_amount_positive"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="deposit", deposit_id__isnull=False, transfer_id__isnull=True)
                    | (~models.Q(kind="deposit") & models.Q(transfer_id__isnull=False))
                ),
                name="accounts_op_reference",
            ),
        ]

    def __str__(self) -> str:
        state = "applied" if self.applied else f"rejected ({self.reason})"
        return f"{self.kind} {self.amount} {self.currency} on {self.account_id}: {state}"


class AccountsOutbox(OutboxMessage):
    class Meta(OutboxMessage.Meta):
        db_table = "accounts_outbox"


class AccountsInbox(InboxMessage):
    class Meta(InboxMessage.Meta):
        db_table = "accounts_inbox"


class AccountsParkedMessage(ParkedMessage):
    class Meta(ParkedMessage.Meta):
        db_table = "accounts_parked_message"
