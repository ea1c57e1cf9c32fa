"""Sharding settings, read at call time (tests and the benchmark change them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class ShardingConf:
    buckets: int
    slots: int
    spreading: bool
    hot_rate: float
    hot_share: float
    hot_min_total_rate: float
    hot_sustain_s: float
    cool_ratio: float
    cool_sustain_s: float
    half_life_s: float
    tracked_keys: int
    merged_cache_s: float
    key_lease_s: float
    map_check_s: float
    map_max_age_s: float
    map_in_flight_s: float
    shard_timeout_s: float
    prefix: str

    @property
    def decay_lambda(self) -> float:
        return math.log(2) / self.half_life_s


def conf() -> ShardingConf:
    return ShardingConf(**settings.SHARDING)


SPREADING_OFF_SWITCH = "sharding_spreading_off"


def spreading_enabled() -> bool:
    """Spreading is on unless settings turn it off or the fault switch does (the anomaly:
    one celebrity key's writes all on one row of one shard)."""
    from core.faults import fault_value

    return settings.SHARDING["spreading"] and not fault_value(SPREADING_OFF_SWITCH)
