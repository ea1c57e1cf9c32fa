"""Prometheus metrics counted as things happen (they work in multiprocess mode); what is read
when scraped is ``sharding.collector``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
