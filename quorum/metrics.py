"""Prometheus metrics of the quorum store (the counters and histograms work in multiprocess
mode); hints pending are read from the nodes when scraped (``HintsCollector``)."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2.5, 5)

writes_total = Counter(
    "statelab_quorum_writes_total",
    "Coordinated writes by N, W, sloppy and outcome (ok | unavailable)",
    ["n", "w", "sloppy", "outcome"],
)
reads_total = Counter(
    "statelab_quorum_reads_total",
    "Coordinated reads by N, R and outcome (ok | siblings | not_found | unavailable)",
    ["n", "r", "outcome"],
)
wait_seconds = Histogram(
    "statelab_quorum_wait_seconds",
    "Time until the W-th acknowledgement (write) or the R-th answer (read)",
    ["op", "n", "q"],
    buckets=LATENCY_BUCKETS,
)
node_seconds = Histogram(
    "statelab_quorum_node_seconds",
    "Answer time of one node to one call (coordinate, store, hint, read, repair)",
    ["node", "op"],
    buckets=LATENCY_BUCKETS,
)
node_failures_total = Counter(
    "statelab_quorum_node_failures_total",
    "Calls to a node that failed, by reason (refused | timeout | error)",
    ["node", "reason"],
)
read_repairs_total = Counter(
    "statelab_quorum_read_repairs_total",
    "Stale replicas a read updated, by node and outcome (ok | failed)",
    ["node", "outcome"],
)
hints_stored_total = Counter(
    "statelab_quorum_hints_stored_total",
    "Versions a sloppy write left on a fallback node for the intended node",
    ["intended"],
)
hints_handed_off_total = Counter(
    "statelab_quorum_hints_handed_off_total",
    "Hinted versions delivered to (and acknowledged by) their intended node",
    ["intended"],
)
checked_reads_total = Counter(
    "statelab_quorum_checked_reads_total",
    "Reads checked against a recorded history (benchmark), by N, W, R and sloppy",
    ["n", "w", "r", "sloppy"],
)
stale_reads_total = Counter(
    "statelab_quorum_stale_reads_total",
    "Checked reads that missed a write acknowledged before they were invoked (benchmark)",
    ["n", "w", "r", "sloppy"],
)


class HintsCollector(Collector):
    """``statelab_quorum_hints_pending{holder, intended}``: hints waiting on each node, read
    from the nodes when scraped (a node that does not answer within a short deadline is left
    out, never the whole scrape)."""

    def describe(self):
        return []

    def collect(self):
        from quorum.handoff import hints_pending

        family = GaugeMetricFamily(
            "statelab_quorum_hints_pending",
            "Hinted versions held by a node for another one, not yet handed off",
            labels=["holder", "intended"],
        )
        try:
            pending = hints_pending(timeout_s=0.5)
        except Exception:  # a failing collector drops its family, never the whole scrape
            logger.warning("quorum hints pending: not collected", exc_info=True)
            return
        for holder, counts in pending.items():
            for intended, count in (counts or {}).items():
                family.add_metric([holder, intended], float(count))
        yield family
