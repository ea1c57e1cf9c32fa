"""What the sharding app exposes on /metrics at scrape time (from Redis and the shards)."""

from __future__ import annotations

import logging

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sharding.hotkeys import key_rate, shard_rates
from sharding.selectors import imbalance_of, shard_rows
from sharding.spreading import hot_states

logger = logging.getLogger(__name__)


class ShardingCollector(Collector):
    """Read when scraped: from Redis ``statelab_sharding_shard_rate`` (decayed ops/s per shard),
    ``..._imbalance`` (max/mean of those), ``..._hot_keys`` and, per hot key (a bounded set),
    ``..._hot_key_rate`` and ``..._hot_key_slots``; from each shard ``..._rows`` by kind."""

    def describe(self):
        return []

    def collect(self):
        rates, _totals = shard_rates()
        rate = GaugeMetricFamily(
            "statelab_sharding_shard_rate", "Decayed operations/s per shard", labels=["shard"]
        )
        for alias, value in rates.items():
            rate.add_metric([alias], value)
        imbalance = GaugeMetricFamily(
            "statelab_sharding_imbalance", "Max/mean of the per-shard operation rates"
        )
        imbalance.add_metric([], imbalance_of(rates))
        states = hot_states()
        hot = GaugeMetricFamily("statelab_sharding_hot_keys", "Keys spread over slots now")
        hot.add_metric([], float(len(states)))
        key_rate_family = GaugeMetricFamily(
            "statelab_sharding_hot_key_rate", "Decayed operations/s of a hot key", labels=["key"]
        )
        slots = GaugeMetricFamily(
            "statelab_sharding_hot_key_slots",
            "Slots a hot key's writes are spread over (its home slot included)",
            labels=["key"],
        )
        for key, state in states.items():
            key_rate_family.add_metric([key], key_rate(key).rate)
            slots.add_metric([key], float(1 + len(state.spread)))
        yield from (rate, imbalance, hot, key_rate_family, slots)
        stored = GaugeMetricFamily(
            "statelab_sharding_rows", "Rows stored per shard", labels=["shard", "kind"]
        )
        try:
            counted = shard_rows()
        except Exception:  # a failing collector drops its family, never the whole scrape
            logger.warning("rows per shard: not collected", exc_info=True)
            return
        for alias, counts in counted.items():
            for kind in ("counter_slots", "events"):
                if counts[kind] is not None:
                    stored.add_metric([alias, kind], float(counts[kind]))
        yield stored
