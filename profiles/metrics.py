from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class ReplicaRotationCollector(Collector):
    """``statelab_replica_in_rotation`` and ``statelab_replica_staleness_seconds`` as this
    process's consistency routing sees them (read when scraped)."""

    def describe(self):
        return []

    def collect(self):
        from core.consistency import replica_pool

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
