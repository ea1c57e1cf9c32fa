"""Rows that live on every shard (``shard_0..shard_N-1``); always read and written with an
explicit alias chosen by the placement (``sharding.placement``), never by the router.

- ``CounterSlot``: one slot of a counter. Slot 0 is on the key's home shard (its bucket's
  shard); slots 1..k-1 of a hot key are on other shards. ``pos``/``neg`` merge like a
  PN-counter; a closed slot (``open`` false) takes no more writes.
- ``KeyPlacement`` (home shard): the shards of a key's open extra slots (``spread``), every
  shard that ever held its extra event slots, and the key's fencing token (``fence``): each
  promotion or fold takes the next one, and its writes apply only while it is the newest.
- ``FoldRecord`` (shard of a folded slot) and ``FoldApplied`` (home shard): the two halves of
  moving a slot's count back into slot 0 without a cross-database transaction.
- ``BucketFence``: on a shard that no longer takes writes for a bucket (being or been moved).
"""

from __future__ import annotations

import uuid

from django.db import models


class CounterSlot(models.Model):
    key = models.CharField(max_length=128)
    slot = models.PositiveSmallIntegerField()
    bucket = models.PositiveSmallIntegerField()
    pos = models.BigIntegerField(default=0)
    neg = models.BigIntegerField(default=0)
    open = models.BooleanField(default=True)
    # A database default: rows are written by raw SQL that names only the columns it sets.
    fence = models.BigIntegerField(
        db_default=0, help_text="Fencing token of the last promotion or fold that wrote the slot."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "slot"], name="sharding_counter_key_slot"),
            models.CheckConstraint(
                condition=models.Q(pos__gte=0, neg__gte=0), name="sharding_counter_pn_nonneg"
            ),
        ]
        indexes = [models.Index(fields=["bucket"], name="sharding_counter_bucket")]

    def __str__(self) -> str:
        return f"{self.key}#{self.slot}"


class KeyPlacement(models.Model):
    key = models.CharField(max_length=128, unique=True)
    bucket = models.PositiveSmallIntegerField(db_index=True)
    spread = models.JSONField(default=list, help_text="Shard of slot i+1, for open extra slots.")
    event_shards = models.JSONField(default=list)
    fence = models.BigIntegerField(
        db_default=0, help_text="The key's newest fencing token (one per promotion or fold)."
    )

    def __str__(self) -> str:
        return self.key


class FoldRecord(models.Model):
    fold_id = models.UUIDField(unique=True, default=uuid.uuid4)
    key = models.CharField(max_length=128, db_index=True)
    slot = models.PositiveSmallIntegerField()
    pos = models.BigIntegerField()
    neg = models.BigIntegerField()
    applied = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"fold {self.key}#{self.slot}"


class FoldApplied(models.Model):
    fold_id = models.UUIDField(unique=True)
    key = models.CharField(max_length=128, db_index=True)
    bucket = models.PositiveSmallIntegerField(db_index=True)
    pos = models.BigIntegerField()
    neg = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"applied {self.fold_id}"


class Event(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    key = models.CharField(max_length=128)
    slot = models.PositiveSmallIntegerField(default=0)
    bucket = models.PositiveSmallIntegerField()
    ts = models.DateTimeField()
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["ts", "id"], name="sharding_event_ts_id"),
            models.Index(fields=["key", "ts", "id"], name="sharding_event_key_ts_id"),
            models.Index(fields=["bucket"], name="sharding_event_bucket"),
        ]

    def __str__(self) -> str:
        return f"{self.key}@{self.ts.isoformat()}"


class BucketFence(models.Model):
    bucket = models.PositiveSmallIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"fence {self.bucket}"
