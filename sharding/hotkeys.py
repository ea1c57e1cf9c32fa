"""Hot-key detection: decayed per-key rates in bounded memory, shared through Redis.

One Lua script per operation (one round trip) keeps, atomically:
- a Space-Saving summary of at most ``tracked_keys`` keys (a sorted set): a new key evicts the
  smallest and inherits its count, so a heavy hitter is never under-counted;
- forward-decayed counts: a weight ``w`` at time ``t`` adds ``w * exp(lambda (t - L))`` for a
  landmark ``L`` (renormalised every 30 s), so ``score * exp(-lambda (now - L)) * lambda`` is a
  rate in operations/s with half-life ``half_life_s``; the same for the total and per shard;
- when each key first went over the hot threshold (``above``), cleared as soon as it is under;
- the same decayed rate and a plain total per (serving shard, bucket range): the heat map.

This module only measures. Recording an operation is the one thing on the request path; what
the measures lead to runs in ``sharding.maintenance`` (Celery beat): a key that has been over
the threshold (a rate, or a share of the total with a minimum total rate) for
``hot_sustain_s`` is a promotion candidate (``promotion_candidates``), and a hot key whose rate
and share stay under ``cool_ratio`` times the thresholds for ``cool_sustain_s`` is demoted
(``cool_candidate``; hysteresis: between the two bands nothing changes). Which keys are hot,
and over which shards, is the spreading's state (``sharding.spreading``).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings

from core.redis import redis_client
from sharding.conf import conf
from sharding.placement import bucket_of
from sharding.redis_keys import cooling_since_key, detection_keys

HEAT_RANGES = 16

RECORD_LUA = """
local z, meta, shards, shard_totals = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local above, hot, heat, heat_totals = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local member, shard = ARGV[1], ARGV[2]
local w, now, lam, cap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local hot_rate, hot_share, min_total = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local cell = shard .. '|' .. ARGV[10]
local landmark = tonumber(redis.call('HGET', meta, 'landmark'))
if not landmark then
  landmark = now
  redis.call('HSET', meta, 'landmark', now)
elseif now - landmark > 30 then
  local f = math.exp(-lam * (now - landmark))
  local all = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
  for i = 1, #all, 2 do redis.call('ZADD', z, tonumber(all[i + 1]) * f, all[i]) end
  local per_shard = redis.call('HGETALL', shards)
  for i = 1, #per_shard, 2 do
    redis.call('HSET', shards, per_shard[i], tonumber(per_shard[i + 1]) * f)
  end
  local per_cell = redis.call('HGETALL', heat)
  for i = 1, #per_cell, 2 do
    redis.call('HSET', heat, per_cell[i], tonumber(per_cell[i + 1]) * f)
  end
  redis.call('HSET', meta, 'total', tonumber(redis.call('HGET', meta, 'total') or 0) * f)
  landmark = now
  redis.call('HSET', meta, 'landmark', now)
end
local inc = w * math.exp(lam * (now - landmark))
local score = redis.call('ZSCORE', z, member)
if score then
  score = tonumber(redis.call('ZINCRBY', z, inc, member))
elseif redis.call('ZCARD', z) < cap then
  redis.call('ZADD', z, inc, member)
  score = inc
else
  local smallest = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
  redis.call('ZREM', z, smallest[1])
  redis.call('HDEL', above, smallest[1])
  score = tonumber(smallest[2]) + inc
  redis.call('ZADD', z, score, member)
end
local total = tonumber(redis.call('HINCRBYFLOAT', meta, 'total', inc))
redis.call('HINCRBYFLOAT', shards, shard, inc)
redis.call('HINCRBY', shard_totals, shard, w)
redis.call('HINCRBYFLOAT', heat, cell, inc)
redis.call('HINCRBY', heat_totals, cell, w)
local decay = math.exp(-lam * (now - landmark))
local rate = score * decay * lam
local total_rate = total * decay * lam
local share = 0
if total > 0 then share = score / total end
local since = -1
if rate >= hot_rate or (share >= hot_share and total_rate >= min_total) then
  since = tonumber(redis.call('HGET', above, member))
  if not since then
    since = now
    redis.call('HSET', above, member, now)
  end
else
  redis.call('HDEL', above, member)
end
return {tostring(rate), tostring(share), tostring(since), redis.call('HEXISTS', hot, member)}
"""


_script_lock = threading.Lock()
_scripts: dict[int, object] = {}


def _record_script(client: redis.Redis):
    with _script_lock:
        script = _scripts.get(id(client))
        if script is None:
            script = client.register_script(RECORD_LUA)
            _scripts[id(client)] = script
        return script


@dataclass(frozen=True)
class Observation:
    rate: float
    share: float
    over_since: float | None
    hot: bool


def hot_key_record(*, key: str, shard: str, weight: int = 1) -> Observation | None:
    """Count one operation on ``key`` served by ``shard``; None when Redis is unreachable
    (detection pauses, the operation itself does not fail)."""
    settings_ = conf()
    client = redis_client()
    try:
        rate, share, since, hot = _record_script(client)(
            keys=detection_keys().for_record_script(),
            args=[
                key,
                shard,
                weight,
                time.time(),
                settings_.decay_lambda,
                settings_.tracked_keys,
                settings_.hot_rate,
                settings_.hot_share,
                settings_.hot_min_total_rate,
                bucket_range_of(key),
            ],
        )
    except redis.RedisError:
        return None
    since_value = float(since)
    return Observation(
        rate=float(rate),
        share=float(share),
        over_since=None if since_value < 0 else since_value,
        hot=bool(int(hot)),
    )


def _over_threshold(rate: float, share: float, total_rate: float) -> bool:
    """The record script's test, for a rate read later."""
    settings_ = conf()
    return rate >= settings_.hot_rate or (
        share >= settings_.hot_share and total_rate >= settings_.hot_min_total_rate
    )


def promotion_candidates(*, now: float, exclude: set[str]) -> dict[str, Observation]:
    """Keys over the hot threshold since at least ``hot_sustain_s`` ago and still over it now
    (a key whose traffic stopped keeps its mark until its next operation), other than
    ``exclude`` (the keys already hot)."""
    settings_ = conf()
    keys = detection_keys()
    client = redis_client()
    try:
        above = client.hgetall(keys.above)
        landmark, total = client.hmget(keys.meta, ["landmark", "total"])
        due = {
            name.decode(): float(since)
            for name, since in above.items()
            if now - float(since) >= settings_.hot_sustain_s and name.decode() not in exclude
        }
        scores = dict(zip(due, client.zmscore(keys.summary, list(due)), strict=True)) if due else {}
    except redis.RedisError:
        return {}
    if landmark is None:
        return {}
    lam = settings_.decay_lambda
    decay = math.exp(-lam * (now - float(landmark)))
    total_score = float(total or 0)
    total_rate = total_score * decay * lam
    candidates = {}
    for key, since in due.items():
        score = scores.get(key)
        if score is None:
            continue
        rate, share = score * decay * lam, score / total_score if total_score else 0.0
        if _over_threshold(rate, share, total_rate):
            candidates[key] = Observation(rate=rate, share=share, over_since=since, hot=False)
    return candidates


@dataclass(frozen=True)
class KeyRate:
    key: str
    rate: float
    share: float


def key_rates(limit: int = 20) -> list[KeyRate]:
    """The tracked heavy hitters by current decayed rate, highest first."""
    settings_ = conf()
    keys = detection_keys()
    client = redis_client()
    try:
        landmark = client.hget(keys.meta, "landmark")
        total = client.hget(keys.meta, "total")
        top = client.zrevrange(keys.summary, 0, limit - 1, withscores=True)
    except redis.RedisError:
        return []
    if landmark is None:
        return []
    lam = settings_.decay_lambda
    decay = math.exp(-lam * (time.time() - float(landmark)))
    total_score = float(total or 0)
    return [
        KeyRate(
            key=name.decode(),
            rate=score * decay * lam,
            share=score / total_score if total_score else 0.0,
        )
        for name, score in top
    ]


def key_rate(key: str) -> KeyRate:
    settings_ = conf()
    keys = detection_keys()
    client = redis_client()
    try:
        landmark, total = client.hmget(keys.meta, ["landmark", "total"])
        score = client.zscore(keys.summary, key)
    except redis.RedisError:
        return KeyRate(key=key, rate=0.0, share=0.0)
    if landmark is None or score is None:
        return KeyRate(key=key, rate=0.0, share=0.0)
    lam = settings_.decay_lambda
    decay = math.exp(-lam * (time.time() - float(landmark)))
    total_score = float(total or 0)
    return KeyRate(
        key=key, rate=score * decay * lam, share=score / total_score if total_score else 0.0
    )


def _decayed_counts(rates_hash: str, totals_hash: str) -> tuple[dict[str, float], dict[str, int]]:
    """A pair of the record script's hashes: field -> decayed rate (ops/s) and field -> total;
    empty when Redis is unreachable."""
    lam = conf().decay_lambda
    client = redis_client()
    try:
        landmark = client.hget(detection_keys().meta, "landmark")
        decayed = client.hgetall(rates_hash)
        totals = client.hgetall(totals_hash)
    except redis.RedisError:
        return {}, {}
    decay = math.exp(-lam * (time.time() - float(landmark))) if landmark else 0.0
    return (
        {name.decode(): float(value) * decay * lam for name, value in decayed.items()},
        {name.decode(): int(value) for name, value in totals.items()},
    )


def shard_rates() -> tuple[dict[str, float], dict[str, int]]:
    """Per shard: the decayed operation rate (ops/s) and the total operations counted."""
    keys = detection_keys()
    return _decayed_counts(keys.shards, keys.shard_totals)


RATES_CACHE_S = 0.5
_rates_lock = threading.Lock()
_rates_cache: tuple[float, dict[str, float]] = (-1e9, {})


def shard_rates_cached() -> dict[str, float]:
    """Per shard, the decayed operation rate as this process saw it at most ``RATES_CACHE_S``
    ago (for writers choosing a slot: a stale view only makes a choice less even)."""
    global _rates_cache  # noqa: PLW0603 - the per-process view of the shards' load
    now = time.monotonic()
    with _rates_lock:
        loaded_at, rates = _rates_cache
    if now - loaded_at < RATES_CACHE_S:
        return rates
    rates = shard_rates()[0]
    with _rates_lock:
        _rates_cache = (now, rates)
    return rates


def rates_cache_clear() -> None:
    global _rates_cache  # noqa: PLW0603
    with _rates_lock:
        _rates_cache = (-1e9, {})


def bucket_range_of(key: str) -> int:
    """Which of the ``HEAT_RANGES`` equal ranges of buckets the key's bucket falls in."""
    buckets = conf().buckets
    return bucket_of(key, buckets) * HEAT_RANGES // buckets


def heat_map() -> dict:
    """Operations per (serving shard, bucket range): the decayed rate (ops/s) and the total.
    A hot key's range lights up on every shard that holds one of its slots."""
    buckets = conf().buckets
    keys = detection_keys()
    rates, totals = _decayed_counts(keys.heat, keys.heat_totals)
    per_shard = {
        alias: {
            "operations_per_second": [0.0] * HEAT_RANGES,
            "operations_total": [0] * HEAT_RANGES,
        }
        for alias in settings.SHARD_ALIASES
    }
    for source, field, convert in (
        (rates, "operations_per_second", lambda value: round(value, 3)),
        (totals, "operations_total", int),
    ):
        for name, value in source.items():
            alias, _, index = name.rpartition("|")
            if alias in per_shard and index.isdigit() and int(index) < HEAT_RANGES:
                per_shard[alias][field][int(index)] = convert(value)
    return {
        "ranges": [
            {
                "first_bucket": index * buckets // HEAT_RANGES,
                "last_bucket": (index + 1) * buckets // HEAT_RANGES - 1,
            }
            for index in range(HEAT_RANGES)
        ],
        "shards": per_shard,
    }


def cool_candidate(*, key: str, now: float) -> float | None:
    """When ``key`` first went under the cool band (None while it is above it)."""
    settings_ = conf()
    rate = key_rate(key)
    total_rate = sum(shard_rates()[0].values())
    under = rate.rate < settings_.hot_rate * settings_.cool_ratio and (
        rate.share < settings_.hot_share * settings_.cool_ratio
        or total_rate < settings_.hot_min_total_rate
    )
    client = redis_client()
    if not under:
        client.hdel(cooling_since_key(), key)
        return None
    client.hsetnx(cooling_since_key(), key, now)
    return float(client.hget(cooling_since_key(), key))


def cooling_forget(*, key: str) -> None:
    """Forget when ``key`` went under the cool band (it is no longer hot)."""
    redis_client().hdel(cooling_since_key(), key)


def over_threshold_forget(*, key: str) -> None:
    """Forget since when ``key`` is over the hot threshold (it has just been promoted)."""
    redis_client().hdel(detection_keys().above, key)
