"""The project's own Prometheus metrics and the ``/metrics`` endpoint.

Under gunicorn or Celery with several processes, ``PROMETHEUS_MULTIPROC_DIR`` is set and every
process writes its samples there; a scrape merges them. State that lives outside the process
(replica lag, fault switches, backlogs) is not copied into gauges by some loop: it is read when
scraped by collectors registered with ``scrape_collector_register``, so it costs requests
nothing and is never older than the scrape.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from core.errors import problem_response
from core.net import address_in, client_address

logger = logging.getLogger(__name__)

faults_crashes_total = Counter(
    "statelab_fault_crashes_total", "Processes killed at an armed crash point", ["point"]
)
inbox_redeliveries_ignored = Counter(
    "statelab_inbox_redeliveries_ignored_total",
    "Messages the inbox had already applied (redeliveries that did nothing)",
    ["consumer"],
)
# Both services of the saga time their steps here, so that one histogram compares them.
saga_step_seconds = Histogram(
    "statelab_saga_step_seconds",
    "Duration of one saga step (one local transaction)",
    ["step"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@contextmanager
def step_timer(step: str) -> Iterator[None]:
    """Observe the block's duration in ``statelab_saga_step_seconds{step}``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        saga_step_seconds.labels(step=step).observe(time.perf_counter() - started)


_scrape_collectors: list[Collector] = []


def scrape_collector_register(collector: Collector) -> None:
    """Add a collector that reads its values when ``/metrics`` is scraped. Its ``describe``
    must return [] so that registering it does not query anything."""
    _scrape_collectors.append(collector)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        REGISTRY.register(collector)


class FaultsCollector(Collector):
    """``statelab_fault_value{switch}`` (flags as 0/1) and ``statelab_fault_crash_point_armed``."""

    def describe(self):
        return []

    def collect(self):
        from core.faults import fault_specs, faults_get

        values = GaugeMetricFamily(
            "statelab_fault_value", "Current value of each fault switch", labels=["switch"]
        )
        armed = GaugeMetricFamily(
            "statelab_fault_crash_point_armed", "Crash point armed (1) or not", labels=["point"]
        )
        try:
            current = faults_get()
        except DatabaseError:
            return
        for name, spec in fault_specs().items():
            if spec.kind == "choices":
                for choice in spec.choices:
                    armed.add_metric([choice], 1.0 if choice in current[name] else 0.0)
            else:
                values.add_metric([name], float(current[name]))
        yield from (values, armed)


class OutboxCollector(Collector):
    """``statelab_outbox_backlog{database}``, ``statelab_outbox_oldest_age_seconds{database}``:
    unpublished rows per registered outbox and how long the oldest has waited."""

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


def scrape_registry() -> CollectorRegistry:
    """Every process's samples merged (multiprocess mode), else this process's registry."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    for collector in _scrape_collectors:
        registry.register(collector)
    return registry


def metrics_access_allowed(request: HttpRequest) -> bool:
    """Public unless ``METRICS_PUBLIC`` is off (production settings): then a scrape needs the
    bearer token ``METRICS_TOKEN``, or a client address in ``METRICS_ALLOWED_NETWORKS``
    (``core.net.client_address``), or a logged-in session (the State Lab page reads /metrics
    from the browser)."""
    if settings.METRICS_PUBLIC:
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if (
        settings.METRICS_TOKEN
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode())
    ):
        return True
    if address_in(client_address(request), settings.METRICS_ALLOWED_NETWORKS):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_access_allowed(request):
        response = problem_response(
            request,
            status_code=401,
            code="metrics_unauthorized",
            title="Unauthorized",
            detail="/metrics needs a bearer token, an allowed address or a logged-in session.",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
