"""Sharded counters: services (increment) and selectors (exact merged read).

Write path: a cool key adds to slot 0 on its home shard (under the bucket fence). A hot key
picks one of its k slots (``slot_pick``: of two drawn, the one on the less loaded shard); an
extra slot is updated only while it is open, so a writer acting on a stale view of the hot
set falls back to slot 0 instead of writing into a slot that has been folded: no increment is
lost, whatever the timing.

Read path (exact while folds run): one REPEATABLE READ snapshot of the home shard (slot 0,
the key's spread, the ids of folds already applied there), *then* each extra slot's shard
(its slot and its fold records). A fold record counts only if the home snapshot had not
applied it yet; since the home is read first, an amount is never counted twice nor missed
(see ``sharding.folding`` for the fold steps).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field

import redis

from core.db import snapshot
from core.redis import redis_client
from sharding import store
from sharding.conf import conf, spreading_enabled
from sharding.fences import home_write
from sharding.hotkeys import hot_key_record
from sharding.metrics import operations_total
from sharding.placement import bucket_map_current, key_validate
from sharding.redis_keys import merged_value_key
from sharding.spreading import hot_states_cached, slot_pick


@dataclass(frozen=True)
class CounterWrite:
    key: str
    slot: int
    shard: str


def _split(by: int) -> tuple[int, int]:
    return (by, 0) if by > 0 else (0, -by)


def counter_increment(*, key: str, by: int) -> CounterWrite:
    """Add ``by`` (may be negative) to the counter ``key``; one statement on one shard."""
    key_validate(key)
    pos, neg = _split(by)
    state = hot_states_cached().get(key) if spreading_enabled() else None
    slot, alias = 0, ""
    if state is not None and state.spread:
        slot = slot_pick(key=key, state=state)
        if slot:
            alias = state.spread[slot - 1]
            if not store.extra_slot_add(alias, key=key, slot=slot, pos=pos, neg=neg):
                slot = 0
    if slot == 0:
        alias, _ = home_write(
            key,
            lambda home, bucket, _map: (
                store.slot0_add(home, key=key, bucket=bucket, pos=pos, neg=neg) or None
            ),
        )
    operations_total.labels(shard=alias, operation="counter_increment").inc()
    hot_key_record(key=key, shard=alias)
    return CounterWrite(key=key, slot=slot, shard=alias)


@dataclass
class SlotValue:
    slot: int
    shard: str
    pos: int
    neg: int
    open: bool = True


@dataclass
class CounterValue:
    key: str
    value: int
    pos: int
    neg: int
    hot: bool
    home: str
    slots: list[SlotValue] = field(default_factory=list)
    in_flight: int = 0
    cached: bool = False
    map_version: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def counter_get(*, key: str, use_cache: bool = True) -> CounterValue:
    """The counter's value: exact (a merge of every slot), or for a hot key possibly the
    merged value cached up to ``merged_cache_s`` ago (``cached`` says which)."""
    key_validate(key)
    settings_ = conf()
    hot = key in hot_states_cached()
    client = redis_client()
    if use_cache and hot:
        try:
            raw = client.get(merged_value_key(key))
        except redis.RedisError:
            raw = None
        if raw is not None:
            data = json.loads(raw)
            data["slots"] = [SlotValue(**slot) for slot in data["slots"]]
            return CounterValue(**{**data, "cached": True})
    value = counter_merge(key=key)
    value.hot = hot
    if hot:
        with contextlib.suppress(redis.RedisError):
            client.set(
                merged_value_key(key),
                json.dumps(value.as_dict()),
                px=int(settings_.merged_cache_s * 1000),
            )
    return value


def counter_merge(*, key: str) -> CounterValue:
    bucket_map = bucket_map_current()
    home = bucket_map.shard_for(key)
    with snapshot(home):
        home_slots = store.counter_slots(home, key=key)
        spread = store.placement_spread(home, key=key)
        applied = store.folds_applied(home, key=key)
        home_records = store.fold_records(home, key=key)
    snapshots = {home: (home_slots, home_records)}
    for alias in dict.fromkeys(spread):
        if alias == home:
            continue
        with snapshot(alias):
            snapshots[alias] = (
                store.counter_slots(alias, key=key, extra_only=True),
                store.fold_records(alias, key=key),
            )
    result = CounterValue(
        key=key, value=0, pos=0, neg=0, hot=False, home=home, map_version=bucket_map.version
    )
    for alias, (slot_rows, record_rows) in snapshots.items():
        for slot, pos, neg, is_open in slot_rows:
            owned = (slot == 0 and alias == home) or (
                slot > 0 and slot <= len(spread) and spread[slot - 1] == alias
            )
            if owned:
                result.slots.append(SlotValue(slot, alias, pos, neg, is_open))
                result.pos += pos
                result.neg += neg
        for fold_id, pos, neg in record_rows:
            if fold_id not in applied:
                result.in_flight += pos - neg
                result.pos += pos
                result.neg += neg
    result.slots.sort(key=lambda slot: slot.slot)
    result.value = result.pos - result.neg
    return result
