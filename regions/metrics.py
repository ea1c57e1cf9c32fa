"""Prometheus metrics of the regions (the counters work in multiprocess mode; link lag and
open siblings are read from the regions when scraped)."""

from __future__ import annotations

import logging

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

writes_total = Counter(
    "statelab_regions_writes_total", "Writes accepted, per region and type", ["region", "type"]
)
conflicts_detected_total = Counter(
    "statelab_regions_conflicts_detected_total",
    "Keys found holding concurrent versions (by the reconciliation after replication)",
    ["type"],
)
merges_total = Counter(
    "statelab_regions_merges_total",
    "Concurrent versions merged into one (CRDT types) by a write or the reconciliation",
    ["type"],
)
lww_discarded_total = Counter(
    "statelab_regions_lww_discarded_total",
    "Acknowledged lww writes discarded because a concurrent write had a later clock",
)
anti_entropy_repairs_total = Counter(
    "statelab_regions_anti_entropy_repairs_total",
    "Rows copied or corrected by Merkle anti-entropy",
    ["kind"],
)
anti_entropy_runs_total = Counter(
    "statelab_regions_anti_entropy_runs_total", "Anti-entropy rounds run", ["outcome"]
)


class RegionsCollector(Collector):
    """``statelab_regions_link_lag_bytes{link}``, ``statelab_regions_link_up{link}`` (1 when
    streaming), ``statelab_regions_siblings_open{region}`` (mv keys holding siblings)."""

    def describe(self):
        return []

    def collect(self):
        from regions.conf import regions_configured
        from regions.links import links_status
        from regions.selectors import siblings_open

        try:
            if not regions_configured():
                return
            links = links_status()
            open_siblings = siblings_open()
        except Exception:  # a failing collector drops its families, never the whole scrape
            logger.warning("regions metrics: not collected", exc_info=True)
            return
        lag = GaugeMetricFamily(
            "statelab_regions_link_lag_bytes",
            "WAL bytes the subscriber has not confirmed, per replication link",
            labels=["link"],
        )
        up = GaugeMetricFamily(
            "statelab_regions_link_up", "Link streaming (1) or not (0)", labels=["link", "state"]
        )
        for link in links:
            if link.lag_bytes is not None:
                lag.add_metric([link.name], float(link.lag_bytes))
            up.add_metric([link.name, link.state], 1.0 if link.state == "streaming" else 0.0)
        siblings = GaugeMetricFamily(
            "statelab_regions_siblings_open", "mv keys holding siblings", labels=["region"]
        )
        for region, count in open_siblings.items():
            if count is not None:
                siblings.add_metric([region], float(count))
        yield from (lag, up, siblings)
