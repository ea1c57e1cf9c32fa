"""The saga's metrics. Counters and histograms are per process (merged at scrape in multiprocess
mode); transfers by state and outbox backlogs are read from the databases when scraped."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

transitions = Counter(
    "statelab_saga_transitions_total", "Transfer state transitions", ["from_state", "to_state"]
)
compensations = Counter("statelab_saga_compensations_total", "Compensations started")
redrives = Counter("statelab_saga_redrives_total", "Commands re-emitted for stuck sagas", ["by"])
deposit_resends = Counter(
    "statelab_deposit_event_resends_total",
    "Deposit events sent again because their journal entry was still missing",
)
inbox_ignored = Counter(
    "statelab_inbox_redeliveries_ignored_total",
    "Messages the inbox had already applied (redeliveries that did nothing)",
    ["consumer"],
)
logger = logging.getLogger(__name__)

step_seconds = Histogram(
    "statelab_saga_step_seconds",
    "Duration of one saga step (one local transaction)",
    ["step"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@contextmanager
def step_timer(step: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        step_seconds.labels(step=step).observe(time.perf_counter() - started)


class TransfersByStateCollector(Collector):
    """``statelab_transfers{state}``: how many transfers are in each state now."""

    def describe(self):
        return []

    def collect(self):
        from django.db.models import Count

        from ledger.models import Transfer

        family = GaugeMetricFamily("statelab_transfers", "Transfers by state", labels=["state"])
        try:
            counts = dict(
                Transfer.objects.using("ledger")
                .values_list("state")
                .annotate(n=Count("id"))
                .values_list("state", "n")
            )
        except Exception:  # a failing collector drops its family, never the whole scrape
            logger.warning("transfers by state: not collected", exc_info=True)
            return
        for state in Transfer.State.values:
            family.add_metric([state], float(counts.get(state, 0)))
        yield family


class OutboxCollector(Collector):
    """``statelab_outbox_backlog{database}``, ``statelab_outbox_oldest_age_seconds{database}``:
    unpublished rows per database and how long the oldest has waited."""

    def describe(self):
        return []

    def collect(self):
        from core.outbox import outbox_backlog, outbox_databases

        backlog = GaugeMetricFamily(
            "statelab_outbox_backlog", "Unpublished outbox rows", labels=["database"]
        )
        age = GaugeMetricFamily(
            "statelab_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row",
            labels=["database"],
        )
        for using in outbox_databases():
            try:
                count, oldest = outbox_backlog(using=using)
            except Exception:  # a failing collector drops its sample, never the whole scrape
                logger.warning("outbox backlog of %s: not collected", using, exc_info=True)
                continue
            backlog.add_metric([using], float(count))
            age.add_metric([using], oldest)
        yield from (backlog, age)
