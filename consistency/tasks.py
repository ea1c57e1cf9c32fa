from celery import shared_task
from django.conf import settings

from consistency.store import positions_purge


@shared_task(name="consistency.positions_purge")
def positions_purge_task() -> int:
    """Drop the positions no session has raised for ``CONSISTENCY_POSITIONS_TTL_S``."""
    return positions_purge(older_than_s=settings.CONSISTENCY_POSITIONS_TTL_S)
