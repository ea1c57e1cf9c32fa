"""Prometheus metrics of the sharding app (the counters work in multiprocess mode)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

operations_total = Counter(
    "statelab_sharding_operations_total", "Operations served per shard", ["shard", "operation"]
)
hot_detect_seconds = Histogram(
    "statelab_sharding_hot_detect_seconds",
    "Time from a key first going over the hot threshold to its writes being spread",
    buckets=(0.5, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 20, 60),
)
hot_cool_seconds = Histogram(
    "statelab_sharding_hot_cool_seconds",
    "Time from a hot key first going under the cool threshold to its slots being folded",
    buckets=(0.5, 1, 2, 3, 4, 5, 7.5, 10, 20, 60),
)
fold_amount_total = Counter(
    "statelab_sharding_folded_total", "Counts moved from extra slots back into slot 0", ["shard"]
)
partial_reads_total = Counter(
    "statelab_sharding_partial_reads_total", "Scatter-gather reads missing a shard", ["shard"]
)


class ShardingCollector(Collector):
    """``statelab_sharding_shard_rate`` (decayed ops/s per shard), ``..._imbalance`` (max/mean of
    those) and ``..._hot_keys``, read from Redis when scraped."""

    def describe(self):
        return []

    def collect(self):
        from sharding.hotkeys import hot_states, shard_rates

        rates, _totals = shard_rates()
        rate = GaugeMetricFamily(
            "statelab_sharding_shard_rate", "Decayed operations/s per shard", labels=["shard"]
        )
        for alias, value in rates.items():
            rate.add_metric([alias], value)
        imbalance = GaugeMetricFamily(
            "statelab_sharding_imbalance", "Max/mean of the per-shard operation rates"
        )
        from sharding.selectors import imbalance_of

        imbalance.add_metric([], imbalance_of(rates))
        hot = GaugeMetricFamily("statelab_sharding_hot_keys", "Keys spread over slots now")
        hot.add_metric([], float(len(hot_states())))
        yield from (rate, imbalance, hot)
