"""Transfers (the saga's state), their history, the double-entry journal, the ledger's outbox,
inbox and idempotency keys (database alias ``ledger``)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from core.consumers import ParkedMessage
from core.idempotency import IdempotencyKey
from core.outbox import InboxMessage, OutboxMessage
from core.request_id import MAX_LENGTH as MAX_REQUEST_ID_LENGTH
from core.request_id import request_id_or_blank


class Transfer(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        DEBITED = "debited"
        CREDITED = "credited"
        COMPLETED = "completed"
        FAILED = "failed"
        COMPENSATING = "compensating"
        COMPENSATED = "compensated"

    TERMINAL = frozenset({State.COMPLETED, State.FAILED, State.COMPENSATED})
    # The only legal moves (architecture section 3); a database trigger enforces the same table.
    TRANSITIONS = {
        State.PENDING: frozenset({State.DEBITED, State.FAILED}),
        State.DEBITED: frozenset({State.CREDITED, State.COMPENSATING}),
        State.CREDITED: frozenset({State.COMPLETED}),
        State.COMPENSATING: frozenset({State.COMPENSATED}),
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner_id = models.BigIntegerField(db_index=True, help_text="user id of the initiator")
    source_account_id = models.BigIntegerField()
    destination_account_id = models.BigIntegerField()
    amount = models.BigIntegerField(help_text="minor units")
    currency = models.CharField(max_length=3)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    failure_reason = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    driven_at = models.DateTimeField(
        default=timezone.now, help_text="last time a command was sent for the current state"
    )
    redrive_count = models.PositiveIntegerField(default=0)
    notified_at = models.DateTimeField(null=True, blank=True)
    request_id = models.CharField(
        max_length=MAX_REQUEST_ID_LENGTH,
        blank=True,
        default=request_id_or_blank,
        editable=False,
        help_text="the request that created it; its re-drives are sent under it too",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["state", "driven_at"], name="ledger_transfer_state_driven"),
            # The list's cursor pages (newest first).
            models.Index(fields=["created_at"], name="ledger_transfer_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="ledger_amount_positive"),
            models.CheckConstraint(
                condition=~models.Q(source_account_id=models.F("destination_account_id")),
                name="ledger_transfer_two_accounts",
            ),
        ]

    def __str__(self) -> str:
        return f"transfer {self.id} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL


class TransferTransition(models.Model):
    """One row per state change: who (a service, a worker step, the watchdog, a staff user),
    when, and why."""

    transfer = models.ForeignKey(Transfer, on_delete=models.PROTECT, related_name="transitions")
    from_state = models.CharField(max_length=12, blank=True)
    to_state = models.CharField(max_length=12)
    actor = models.CharField(max_length=150)
    reason = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.from_state or '-'} -> {self.to_state}"


class JournalEntry(models.Model):
    """An immutable double-entry journal entry: its postings sum to zero (a deferred database
    trigger checks it at commit; another refuses UPDATE and DELETE)."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit"
        TRANSFER = "transfer"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    transfer_id = models.UUIDField(null=True, blank=True, unique=True)
    deposit_id = models.UUIDField(null=True, blank=True, unique=True)
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "journal entries"

    def __str__(self) -> str:
        return f"entry {self.pk} ({self.kind})"


class Posting(models.Model):
    """One side of an entry. ``account_id`` is an accounts-database id; null is the cash
    account that deposits come from. Positive amounts increase the account's balance."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.account_id or 'cash'} {self.amount:+d} {self.currency}"


class KnownAccount(models.Model):
    """The ledger's read model of one account, fed by the accounts service's events
    (``contracts.accounts``): what a transfer request is checked against, so that the ledger
    never reads the accounts database. Owner and currency never change; ``status`` and
    ``version`` follow the newest event applied (an older one arriving late changes nothing).
    """

    account_id = models.BigIntegerField(primary_key=True, help_text="the accounts database's id")
    owner_id = models.BigIntegerField(db_index=True)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=8)
    version = models.PositiveBigIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["account_id"]

    def __str__(self) -> str:
        return f"account {self.account_id} ({self.currency}, owner {self.owner_id}, {self.status})"


class LedgerOutbox(OutboxMessage):
    class Meta(OutboxMessage.Meta):
        db_table = "ledger_outbox"


class LedgerInbox(InboxMessage):
    class Meta(InboxMessage.Meta):
        db_table = "ledger_inbox"


class TransferIdempotencyKey(IdempotencyKey):
    class Meta(IdempotencyKey.Meta):
        db_table = "ledger_idempotency_key"


class LedgerParkedMessage(ParkedMessage):
    class Meta(ParkedMessage.Meta):
        db_table = "ledger_parked_message"
