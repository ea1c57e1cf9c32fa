"""The ledger's metrics. Counters are per process (merged at scrape in multiprocess mode);
transfers by state are read from the database when scraped. The saga's step histogram and
the inbox's redelivery counter are shared by both services: ``core.metrics``."""

from __future__ import annotations

import logging

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

transitions = Counter(
    "statelab_saga_transitions_total", "Transfer state transitions", ["from_state", "to_state"]
)
compensations = Counter("statelab_saga_compensations_total", "Compensations started")
redrives = Counter("statelab_saga_redrives_total", "Commands re-emitted for stuck sagas", ["by"])
logger = logging.getLogger(__name__)


class TransfersByStateCollector(Collector):
    """``statelab_transfers{state}``: how many transfers are in each state now;
    ``statelab_sagas_stuck``: how many unfinished transfers have stayed in their state longer
    than the watchdog's bound (``SAGA_STUCK_AFTER_S``), re-drives notwithstanding."""

    def describe(self):
        return []

    def collect(self):
        from datetime import timedelta

        from django.conf import settings
        from django.db.models import Count
        from django.utils import timezone

        from ledger.models import Transfer

        family = GaugeMetricFamily("statelab_transfers", "Transfers by state", labels=["state"])
        stuck = GaugeMetricFamily(
            "statelab_sagas_stuck",
            "Unfinished transfers in the same state for longer than the watchdog's bound",
        )
        transfers = Transfer.objects.using("ledger")
        bound = timezone.now() - timedelta(seconds=settings.SAGA_STUCK_AFTER_S)
        try:
            counts = dict(
                transfers.values_list("state").annotate(n=Count("id")).values_list("state", "n")
            )
            stuck_count = (
                transfers.exclude(state__in=list(Transfer.TERMINAL))
                .filter(updated_at__lt=bound)
                .count()
            )
        except Exception:  # a failing collector drops its family, never the whole scrape
            logger.warning("transfers by state: not collected", exc_info=True)
            return
        for state in Transfer.State.values:
            family.add_metric([state], float(counts.get(state, 0)))
        stuck.add_metric([], float(stuck_count))
        yield from (family, stuck)
