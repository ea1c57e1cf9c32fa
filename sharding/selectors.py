"""Read-side summaries: per-shard load and rows, imbalance, hot keys."""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError

from sharding import store
from sharding.hotkeys import heat_map, key_rate, key_rates, shard_rates
from sharding.placement import bucket_map_current
from sharding.spreading import hot_states


def imbalance_of(values: dict[str, float]) -> float:
    """max/mean over every shard (a shard with no operations counts as 0); 1.0 is even."""
    series = [values.get(alias, 0.0) for alias in settings.SHARD_ALIASES]
    mean = sum(series) / len(series) if series else 0.0
    return max(series) / mean if mean > 0 else 1.0


def shard_rows() -> dict[str, dict]:
    result = {}
    for alias in settings.SHARD_ALIASES:
        try:
            counters, events = store.row_counts(alias)
            result[alias] = {"counter_slots": counters, "events": events, "status": "ok"}
        except DatabaseError:
            result[alias] = {"counter_slots": None, "events": None, "status": "unavailable"}
    return result


def sharding_stats() -> dict:
    rates, totals = shard_rates()
    bucket_map = bucket_map_current()
    stored = shard_rows()
    shards = {
        alias: {
            "operations_total": totals.get(alias, 0),
            "operations_per_second": round(rates.get(alias, 0.0), 3),
            "buckets": len(bucket_map.buckets_of(alias)),
            **stored[alias],
        }
        for alias in settings.SHARD_ALIASES
    }
    hot = []
    for key, state in sorted(hot_states().items()):
        rate = key_rate(key)
        home = bucket_map.shard_for(key)
        hot.append(
            {
                "key": key,
                "rate": round(rate.rate, 3),
                "share": round(rate.share, 4),
                "slots": [home, *state.spread],
                "hot_since": state.since,
            }
        )
    return {
        "map_version": bucket_map.version,
        "shards": shards,
        "imbalance": {
            "operations_per_second": round(imbalance_of(rates), 3),
            "operations_total": round(imbalance_of({k: float(v) for k, v in totals.items()}), 3),
        },
        "hot_keys": hot,
        "heat": heat_map(),
        "top_keys": [
            {"key": rate.key, "rate": round(rate.rate, 3), "share": round(rate.share, 4)}
            for rate in key_rates(10)
        ],
    }
