"""The project's own Prometheus metrics and the ``/metrics`` endpoint.

Under gunicorn or Celery with several processes, ``PROMETHEUS_MULTIPROC_DIR`` is set and every
process writes its samples there; a scrape merges them. State that lives outside the process
(replica lag, fault switches, backlogs) is not copied into gauges by some loop: it is read when
scraped by collectors registered with ``scrape_collector_register``, so it costs requests
nothing and is never older than the scrape.
"""

from __future__ import annotations

import os

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

faults_crashes_total = Counter(
    "statelab_fault_crashes_total", "Processes killed at an armed crash point", ["point"]
)

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


def scrape_registry() -> CollectorRegistry:
    """Every process's samples merged (multiprocess mode), else this process's registry."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    for collector in _scrape_collectors:
        registry.register(collector)
    return registry


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
