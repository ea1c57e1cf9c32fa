"""Control-plane rows on ``default``: which shard owns each bucket, moves, hot-key episodes."""

from __future__ import annotations

from django.db import models


class BucketMap(models.Model):
    """One immutable version of the bucket -> shard assignment; the highest version is current."""

    version = models.PositiveIntegerField(primary_key=True)
    assignment = models.JSONField(help_text="List indexed by bucket: the owning shard alias.")
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"bucket map v{self.version}"


class BucketMove(models.Model):
    class State(models.TextChoices):
        COPYING = "copying"
        CATCHING_UP = "catching_up"
        FROZEN = "frozen"
        VERIFIED = "verified"
        SWITCHED = "switched"
        DONE = "done"
        FAILED = "failed"

    bucket = models.PositiveSmallIntegerField()
    source = models.CharField(max_length=32)
    target = models.CharField(max_length=32)
    state = models.CharField(max_length=16, choices=State.choices, default=State.COPYING)
    rows_copied = models.JSONField(default=dict)
    source_checksum = models.CharField(max_length=64, blank=True)
    target_checksum = models.CharField(max_length=64, blank=True)
    map_version = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"bucket {self.bucket}: {self.source} -> {self.target} ({self.state})"


class HotKeyEpisode(models.Model):
    """One hot period of a key: when it was detected, spread over which shards, and cooled."""

    key = models.CharField(max_length=128, db_index=True)
    home = models.CharField(max_length=32)
    slots = models.JSONField(help_text="Shard alias of each slot, slot 0 first.")
    rate_at_detect = models.FloatField()
    share_at_detect = models.FloatField()
    detected_at = models.DateTimeField()
    detect_seconds = models.FloatField(help_text="From first over the threshold to spread.")
    cooled_at = models.DateTimeField(null=True, blank=True)
    cool_seconds = models.FloatField(
        null=True, blank=True, help_text="From first under the cool threshold to folded."
    )

    class Meta:
        ordering = ["-detected_at"]

    def __str__(self) -> str:
        return f"{self.key} hot at {self.detected_at:%H:%M:%S}"
