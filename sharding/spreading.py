"""Adaptive spreading: the hot set, which slot takes a hot key's write, and promotion.

A hot key's counter has k slots on k different shards: slot 0 on its home shard (its
bucket's shard), slots 1..k-1 on the shards after it. The hot set in Redis names the hot keys
and the shards of their open extra slots; writers read it through a short per-process cache
(a stale view is safe: a closed slot turns a write back to slot 0, see ``counter_increment``).
Promotion (``key_spread``) runs off the request path (``sharding.maintenance``); folding a
cooled key back is ``sharding.folding``.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.conf import settings

from core.redis import redis_client
from sharding import store
from sharding.conf import conf
from sharding.control.models import HotKeyEpisode
from sharding.fences import fenced_transaction, home_write
from sharding.hotkeys import (
    Observation,
    cooling_forget,
    over_threshold_forget,
    rates_cache_clear,
    shard_rates_cached,
)
from sharding.keylock import key_lease
from sharding.metrics import hot_detect_seconds
from sharding.placement import bucket_map_current, bucket_of
from sharding.redis_keys import hot_set_key

logger = logging.getLogger(__name__)


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
        raw = redis_client().hgetall(hot_set_key())
    except redis.RedisError:
        return {}
    return {
        (name.decode() if isinstance(name, bytes) else name): _state_from(
            name.decode() if isinstance(name, bytes) else name, value
        )
        for name, value in raw.items()
    }


HOT_CACHE_S = 0.5
_hot_lock = threading.Lock()
_hot_cache: tuple[float, dict[str, HotState]] = (-1e9, {})


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


def hot_cache_clear() -> None:
    """Forget this process's views of the hot set and of the shards' rates."""
    global _hot_cache  # noqa: PLW0603
    with _hot_lock:
        _hot_cache = (-1e9, {})
    rates_cache_clear()


# The hot set's entries carry the fencing token of the promotion that wrote them: an entry is
# replaced or removed only by a holder of that token or a newer one.
_HOT_SET_LUA = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and (cjson.decode(current)['fence'] or 0) > tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
"""


def hot_state_set(*, key: str, spread: list[str], over_since: float, fence: int) -> bool:
    """Announce ``key`` hot over ``spread``; False if a newer promotion or fold got there."""
    state = {"spread": spread, "since": time.time(), "over_since": over_since, "fence": fence}
    written = redis_client().eval(_HOT_SET_LUA, 1, hot_set_key(), key, fence, json.dumps(state))
    over_threshold_forget(key=key)
    hot_cache_clear()
    return bool(written)


def hot_state_clear(*, key: str, fence: int) -> None:
    """Take ``key`` out of the hot set, unless a newer promotion put it there."""
    redis_client().eval(_HOT_SET_LUA, 1, hot_set_key(), key, fence, "")
    cooling_forget(key=key)
    hot_cache_clear()


def slot_pick(*, key: str, state: HotState) -> int:
    """Which of a hot key's slots takes this write (0: the home slot). Of two slots drawn at
    random, the one whose shard served less lately (the power of two choices): the hot key's
    writes then also even out the load the other keys put on the shards, instead of adding
    the same share to each. Never the only shard a choice goes to: each slot still gets the
    writes of the draws where it is picked twice."""
    slots = len(state.spread) + 1
    first, second = random.randrange(slots), random.randrange(slots)  # noqa: S311 - load spreading
    if first == second:
        return first
    rates = shard_rates_cached()
    home = bucket_map_current().shard_for(key)

    def load(slot: int) -> float:
        return rates.get(home if slot == 0 else state.spread[slot - 1], 0.0)

    return min(first, second, key=load)


def extra_slot_shards(home: str, slots: int) -> list[str]:
    """Slots 1..k-1 on the shards after the home one, so the k slots are on k shards."""
    aliases = list(settings.SHARD_ALIASES)
    start = aliases.index(home) if home in aliases else 0
    rotated = aliases[start + 1 :] + aliases[:start]
    return rotated[: max(0, min(slots, len(aliases)) - 1)]


def key_spread(*, key: str, observation: Observation) -> bool:
    """Open the key's extra slots, record them on the home shard, then announce the key hot
    (in that order: no writer uses a slot that a reader does not know of); every step
    under the key's lease and fencing token (``sharding.keylock``)."""
    with key_lease(key) as lease:
        if lease is None or key in hot_states():
            return False
        bucket_map = bucket_map_current()
        home = bucket_map.shard_for(key)
        extras = extra_slot_shards(home, conf().slots)
        if not extras:
            return False
        bucket = bucket_of(key, len(bucket_map.assignment))
        try:
            for slot, alias in enumerate(extras, start=1):
                store.extra_slot_open(alias, key=key, slot=slot, bucket=bucket, fence=lease.fence)
            home, _ = home_write(
                key,
                lambda alias, b, _m: fenced_transaction(
                    alias,
                    b,
                    lambda: (
                        store.placement_spread_set(alias, key=key, spread=extras, fence=lease.fence)
                        or True
                    ),
                ),
            )
        except store.FencedOut:
            logger.info("promotion of %s stopped: a newer promotion or fold has begun", key)
            return False
        if not hot_state_set(
            key=key,
            spread=extras,
            over_since=observation.over_since or time.time(),
            fence=lease.fence,
        ):
            return False
        now = time.time()
        detect_s = now - (observation.over_since or now)
        hot_detect_seconds.observe(detect_s)
        HotKeyEpisode.objects.using("default").create(
            key=key,
            home=home,
            slots=[home, *extras],
            rate_at_detect=observation.rate,
            share_at_detect=observation.share,
            detected_at=datetime.fromtimestamp(now, UTC),
            detect_seconds=detect_s,
        )
        logger.info(
            "hot key %s spread over %s (detected in %.2f s)", key, [home, *extras], detect_s
        )
        return True
