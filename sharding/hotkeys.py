"""Hot-key detection: decayed per-key rates in bounded memory, shared through Redis.

One Lua script per operation (one round trip) keeps, atomically:
- a Space-Saving summary of at most ``tracked_keys`` keys (a sorted set): a new key evicts the
  smallest and inherits its count, so a heavy hitter is never under-counted;
- forward-decayed counts: a weight ``w`` at time ``t`` adds ``w * exp(lambda (t - L))`` for a
  landmark ``L`` (renormalised every 30 s), so ``score * exp(-lambda (now - L)) * lambda`` is a
  rate in operations/s with half-life ``half_life_s``; the same for the total and per shard;
- when each key first went over the hot threshold (``above``), cleared as soon as it is under;
- the same decayed rate and a plain total per (serving shard, bucket range): the heat map.

A key is promoted when it has been over the threshold (a rate, or a share of the total with
a minimum total rate) for ``hot_sustain_s``; a hot key is demoted by ``hot_keys_tick`` when
its rate and share stay under ``cool_ratio`` times the thresholds for ``cool_sustain_s``
(hysteresis: between the two bands nothing changes).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings

from core.redis import redis_client
from sharding.conf import conf, rkey
from sharding.placement import bucket_of

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


def _keys() -> list[str]:
    return [
        rkey("hk", "summary"),
        rkey("hk", "meta"),
        rkey("hk", "shards"),
        rkey("hk", "shard_totals"),
        rkey("hk", "above"),
        rkey("hk", "hot"),
        rkey("hk", "heat"),
        rkey("hk", "heat_totals"),
    ]


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
            keys=_keys(),
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


@dataclass(frozen=True)
class HotState:
    key: str
    spread: tuple[str, ...]
    since: float
    over_since: float


def _state_from(key: str, raw: bytes | str) -> HotState:
    data = json.loads(raw)
    return HotState(
        key=key,
        spread=tuple(data["spread"]),
        since=data["since"],
        over_since=data.get("over_since", data["since"]),
    )


def hot_states() -> dict[str, HotState]:
    """Every hot key and the shards of its extra slots, fresh from Redis."""
    try:
        raw = redis_client().hgetall(rkey("hk", "hot"))
    except redis.RedisError:
        return {}
    return {
        (name.decode() if isinstance(name, bytes) else name): _state_from(
            name.decode() if isinstance(name, bytes) else name, value
        )
        for name, value in raw.items()
    }


_hot_lock = threading.Lock()
_hot_cache: tuple[float, dict[str, HotState]] = (-1e9, {})
HOT_CACHE_S = 0.5


def hot_states_cached() -> dict[str, HotState]:
    """The hot set as this process saw it at most ``HOT_CACHE_S`` ago: what writers use to pick
    a slot (a stale view is safe, see ``counter_increment``)."""
    global _hot_cache  # noqa: PLW0603 - the per-process view of the hot set
    now = time.monotonic()
    with _hot_lock:
        loaded_at, states = _hot_cache
    if now - loaded_at < HOT_CACHE_S:
        return states
    states = hot_states()
    with _hot_lock:
        _hot_cache = (now, states)
    return states


_rates_lock = threading.Lock()
_rates_cache: tuple[float, dict[str, float]] = (-1e9, {})


def shard_rates_cached() -> dict[str, float]:
    """Per shard, the decayed operation rate as this process saw it at most ``HOT_CACHE_S``
    ago (for writers choosing a slot: a stale view only makes a choice less even)."""
    global _rates_cache  # noqa: PLW0603 - the per-process view of the shards' load
    now = time.monotonic()
    with _rates_lock:
        loaded_at, rates = _rates_cache
    if now - loaded_at < HOT_CACHE_S:
        return rates
    rates = shard_rates()[0]
    with _rates_lock:
        _rates_cache = (now, rates)
    return rates


def slot_pick(*, key: str, state: HotState) -> int:
    """Which of a hot key's slots takes this write (0: the home slot). Of two slots drawn at
    random, the one whose shard served less lately (the power of two choices): the hot key's
    writes then also even out the load the other keys put on the shards, instead of adding
    the same share to each. Never the only shard a choice goes to: each slot still gets the
    writes of the draws where it is picked twice."""
    from sharding.placement import bucket_map_current

    slots = len(state.spread) + 1
    first, second = random.randrange(slots), random.randrange(slots)  # noqa: S311 - load spreading
    if first == second:
        return first
    rates = shard_rates_cached()
    home = bucket_map_current().shard_for(key)

    def load(slot: int) -> float:
        return rates.get(home if slot == 0 else state.spread[slot - 1], 0.0)

    return min(first, second, key=load)


def hot_cache_clear() -> None:
    global _hot_cache, _rates_cache  # noqa: PLW0603
    with _hot_lock:
        _hot_cache = (-1e9, {})
    with _rates_lock:
        _rates_cache = (-1e9, {})


def hot_state_set(*, key: str, spread: list[str], over_since: float) -> None:
    client = redis_client()
    client.hset(
        rkey("hk", "hot"),
        key,
        json.dumps({"spread": spread, "since": time.time(), "over_since": over_since}),
    )
    client.hdel(rkey("hk", "above"), key)
    hot_cache_clear()


def hot_state_clear(*, key: str) -> None:
    client = redis_client()
    client.hdel(rkey("hk", "hot"), key)
    client.hdel(rkey("hk", "below"), key)
    hot_cache_clear()


@dataclass(frozen=True)
class KeyRate:
    key: str
    rate: float
    share: float


def key_rates(limit: int = 20) -> list[KeyRate]:
    """The tracked heavy hitters by current decayed rate, highest first."""
    settings_ = conf()
    client = redis_client()
    try:
        landmark = client.hget(rkey("hk", "meta"), "landmark")
        total = client.hget(rkey("hk", "meta"), "total")
        top = client.zrevrange(rkey("hk", "summary"), 0, limit - 1, withscores=True)
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
    client = redis_client()
    try:
        landmark, total = client.hmget(rkey("hk", "meta"), ["landmark", "total"])
        score = client.zscore(rkey("hk", "summary"), key)
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
        landmark = client.hget(rkey("hk", "meta"), "landmark")
        decayed = client.hgetall(rkey("hk", rates_hash))
        totals = client.hgetall(rkey("hk", totals_hash))
    except redis.RedisError:
        return {}, {}
    decay = math.exp(-lam * (time.time() - float(landmark))) if landmark else 0.0
    return (
        {name.decode(): float(value) * decay * lam for name, value in decayed.items()},
        {name.decode(): int(value) for name, value in totals.items()},
    )


def shard_rates() -> tuple[dict[str, float], dict[str, int]]:
    """Per shard: the decayed operation rate (ops/s) and the total operations counted."""
    return _decayed_counts("shards", "shard_totals")


def bucket_range_of(key: str) -> int:
    """Which of the ``HEAT_RANGES`` equal ranges of buckets the key's bucket falls in."""
    buckets = conf().buckets
    return bucket_of(key, buckets) * HEAT_RANGES // buckets


def heat_map() -> dict:
    """Operations per (serving shard, bucket range): the decayed rate (ops/s) and the total.
    A hot key's range lights up on every shard that holds one of its slots."""
    buckets = conf().buckets
    rates, totals = _decayed_counts("heat", "heat_totals")
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
        client.hdel(rkey("hk", "below"), key)
        return None
    client.hsetnx(rkey("hk", "below"), key, now)
    return float(client.hget(rkey("hk", "below"), key))


def tracking_reset() -> None:
    """Forget all tracking state under this prefix (tests, benchmark phases)."""
    client = redis_client()
    names = list(client.scan_iter(match=rkey("*"), count=500))
    if names:
        client.delete(*names)
    hot_cache_clear()
