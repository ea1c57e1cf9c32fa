"""The app's metrics: lost position saves, and the scrape-time collectors (replica lag as
probed, rotation as routing sees it)."""

from __future__ import annotations

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from consistency.pool import replica_pool
from consistency.replicas import replica_positions

position_saves_failed_total = Counter(
    "statelab_consistency_position_saves_failed_total",
    "Session positions not saved: a write's WAL position after its commit (its version floor "
    "was saved with the write), or the versions a request's reads saw",
)


class ReplicaLagCollector(Collector):
    """``statelab_replica_up``, ``statelab_replica_lag_bytes``, ``statelab_replica_lag_seconds``
    per replica alias, probed when scraped."""

    def describe(self):
        return []

    def collect(self):
        up = GaugeMetricFamily(
            "statelab_replica_up", "Replica reachable (1) or not", labels=["replica"]
        )
        lag_bytes = GaugeMetricFamily(
            "statelab_replica_lag_bytes", "WAL bytes not yet replayed", labels=["replica"]
        )
        lag_seconds = GaugeMetricFamily(
            "statelab_replica_lag_seconds",
            "Age of the last replayed transaction while behind",
            labels=["replica"],
        )
        for alias, position in replica_positions().items():
            up.add_metric([alias], 1.0 if position.up else 0.0)
            if position.lag_bytes is not None:
                lag_bytes.add_metric([alias], float(position.lag_bytes))
            if position.lag_seconds is not None:
                lag_seconds.add_metric([alias], position.lag_seconds)
        yield from (up, lag_bytes, lag_seconds)


class ReplicaRotationCollector(Collector):
    """``statelab_replica_in_rotation`` and ``statelab_replica_staleness_seconds`` as this
    process's consistency routing sees them (read when scraped)."""

    def describe(self):
        return []

    def collect(self):
        in_rotation = GaugeMetricFamily(
            "statelab_replica_in_rotation",
            "Replica taken by consistency routing (1) or out of rotation (0)",
            labels=["replica"],
        )
        staleness = GaugeMetricFamily(
            "statelab_replica_staleness_seconds",
            "How long ago the primary was at the position the replica has replayed",
            labels=["replica"],
        )
        try:
            states = replica_pool.states()
        except Exception:
            return
        for alias, state in states.items():
            in_rotation.add_metric([alias], 1.0 if state.in_rotation else 0.0)
            if state.up and state.staleness_s != float("inf"):
                staleness.add_metric([alias], state.staleness_s)
        yield from (in_rotation, staleness)
