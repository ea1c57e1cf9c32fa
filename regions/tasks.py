import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="regions.anti_entropy", ignore_result=True)
def anti_entropy_task() -> dict | None:
    """Beat: recover lost links, Merkle anti-entropy, reconciliation; nothing when the regions
    are not configured (the embedded regions are an optional group). Safe to run twice."""
    from regions.conf import regions_configured
    from regions.convergence import anti_entropy_now

    if not regions_configured():
        return None
    return anti_entropy_now().as_dict()


@shared_task(name="regions.after_heal", ignore_result=True)
def after_heal_task() -> dict:
    """After a heal: the convergence clock, then anti-entropy (regions.convergence)."""
    from regions.convergence import after_heal

    return after_heal()
