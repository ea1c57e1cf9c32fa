"""Celery tasks of the shared mechanisms (see CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from core.outbox import outbox_relay_all


@shared_task(name="core.outbox_sweep")
def outbox_sweep() -> dict[str, int]:
    """Publish what a crash left unpublished, in every registered outbox."""
    return outbox_relay_all()
