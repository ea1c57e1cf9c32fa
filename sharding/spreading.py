"""Adaptive spreading: promote a hot key to k slots on different shards, fold it back when it
cools, exactly, while writes continue.

Folding slot i (on shard X) into slot 0 (on the home shard H): no transaction spans two
databases, so the amount travels in three local steps with an idempotent record:
1. on X, one transaction: lock the slot row, read (pos, neg), zero it and *close* it, and
   insert ``FoldRecord(fold_id, pos, neg)``. From now on writers of slot i fall back to slot 0;
   readers count the record while H has not applied it.
2. on H, one transaction under the bucket fence: insert ``FoldApplied(fold_id)``; only if that
   insert happened (not a replay) add (pos, neg) to slot 0. Replaying step 2 adds nothing.
3. on X: mark the record applied (kept for an hour so that a slow reader whose home snapshot
   predates step 2 still counts it exactly once; ``FoldApplied`` is kept twice as long).
A crash between the steps leaves an unapplied record, counted by readers and re-driven by
``folds_redrive`` (each tick), so a fold converges and never doubles.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db import DatabaseError, transaction

from core.faults import crash_point
from core.redis import redis_client
from sharding.conf import conf, rkey, spreading_enabled
from sharding.control.models import HotKeyEpisode
from sharding.counters import _as_list, slot0_add_entered
from sharding.db import fenced_transaction, home_write, rows
from sharding.hotkeys import (
    Observation,
    cool_candidate,
    hot_key_record,
    hot_state_clear,
    hot_state_set,
    hot_states,
)
from sharding.metrics import fold_amount_total, hot_cool_seconds, hot_detect_seconds
from sharding.placement import bucket_map_current, bucket_of

logger = logging.getLogger(__name__)

CRASH_AFTER_TAKE = "sharding.fold.after_take"
CRASH_AFTER_APPLY = "sharding.fold.after_apply"


@contextmanager
def key_lock(key: str, timeout_s: float = 30.0) -> Iterator[bool]:
    """At most one promotion or fold of a key at a time, across processes."""
    client = redis_client()
    name, token = rkey("lock", key), uuid.uuid4().hex
    acquired = bool(client.set(name, token, nx=True, px=int(timeout_s * 1000)))
    try:
        yield acquired
    finally:
        if acquired:
            client.eval(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) "
                "end return 0",
                1,
                name,
                token,
            )


def operation_observe(*, key: str, shard: str) -> Observation | None:
    """Count the operation for hot-key detection; promote the key once it has been over the
    threshold for ``hot_sustain_s``; run the housekeeping tick at most once a second."""
    settings_ = conf()
    observation = hot_key_record(key=key, shard=shard)
    if (
        observation is not None
        and spreading_enabled()
        and not observation.hot
        and observation.over_since is not None
        and time.time() - observation.over_since >= settings_.hot_sustain_s
    ):
        try:
            key_spread(key=key, observation=observation)
        except Exception:
            # The operation itself has committed: a failed promotion must not fail it (a
            # retrying client would count it twice); the next operation tries again.
            logger.exception("promoting hot key %s failed", key)
    hot_keys_tick_maybe()
    return observation


def extra_slot_shards(home: str, slots: int) -> list[str]:
    """Slots 1..k-1 on the shards after the home one, so the k slots are on k shards."""
    aliases = list(settings.SHARD_ALIASES)
    start = aliases.index(home) if home in aliases else 0
    rotated = aliases[start + 1 :] + aliases[:start]
    return rotated[: max(0, min(slots, len(aliases)) - 1)]


def key_spread(*, key: str, observation: Observation) -> bool:
    """Open the key's extra slots, record them on the home shard, then announce the key hot
    (in that order: no writer uses a slot that a reader does not know of)."""
    with key_lock(key) as acquired:
        if not acquired or key in hot_states():
            return False
        bucket_map = bucket_map_current()
        home = bucket_map.shard_for(key)
        extras = extra_slot_shards(home, conf().slots)
        if not extras:
            return False
        bucket = bucket_of(key, len(bucket_map.assignment))
        for slot, alias in enumerate(extras, start=1):
            rows(
                alias,
                "INSERT INTO sharding_counterslot (key, slot, bucket, pos, neg, open) "
                "VALUES (%s, %s, %s, 0, 0, true) ON CONFLICT (key, slot) DO UPDATE SET open = true",
                [key, slot, bucket],
            )
        home, _ = home_write(key, lambda alias, b, _m: _placement_spread(alias, b, key, extras))
        hot_state_set(key=key, spread=extras, over_since=observation.over_since or time.time())
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


def _placement_spread(alias: str, bucket: int, key: str, extras: list[str]) -> bool | None:
    def work() -> bool:
        rows(
            alias,
            """
            INSERT INTO sharding_keyplacement (key, bucket, spread, event_shards)
            VALUES (%s, %s, %s::jsonb, %s::jsonb)
            ON CONFLICT (key) DO UPDATE SET
              spread = EXCLUDED.spread,
              event_shards = (
                SELECT coalesce(jsonb_agg(DISTINCT shard), '[]'::jsonb)
                FROM jsonb_array_elements_text(
                  sharding_keyplacement.event_shards || EXCLUDED.event_shards) AS shard)
            """,
            [key, bucket, json.dumps(extras), json.dumps(extras)],
        )
        return True

    return fenced_transaction(alias, bucket, work)


def key_fold(*, key: str, under_since: float | None = None) -> bool:
    """Fold every extra slot of ``key`` back into slot 0 and forget its spread."""
    with key_lock(key) as acquired:
        if not acquired:
            return False
        if under_since is None and key in hot_states():
            return False
        hot_state_clear(key=key)
        # Writers that still see the key hot (for up to HOT_CACHE_S) find closed slots and
        # fall back to slot 0; readers keep gathering the slots until the spread is cleared.
        bucket_map = bucket_map_current()
        home = bucket_map.shard_for(key)
        placement = rows(home, "SELECT spread FROM sharding_keyplacement WHERE key = %s", [key])
        spread = _as_list(placement[0][0]) if placement else []
        for slot, alias in enumerate(spread, start=1):
            slot_fold(key=key, slot=slot, alias=alias)
        # Readers find fold records only on the shards the spread names: finish every fold
        # of this key (an earlier one may have been interrupted) before forgetting them.
        for alias in dict.fromkeys(spread):
            for fold_id, pos, neg in rows(
                alias,
                "SELECT fold_id, pos, neg FROM sharding_foldrecord WHERE key = %s AND NOT applied",
                [key],
            ):
                fold_apply(fold_id=fold_id, key=key, alias=alias, pos=pos, neg=neg)
        home_write(key, lambda alias, bucket, _m: _placement_clear(alias, bucket, key))
        if under_since is not None:
            now = time.time()
            cool_s = now - under_since
            hot_cool_seconds.observe(cool_s)
            HotKeyEpisode.objects.using("default").filter(key=key, cooled_at=None).update(
                cooled_at=datetime.fromtimestamp(now, UTC), cool_seconds=cool_s
            )
            logger.info("hot key %s folded back (cooled in %.2f s)", key, cool_s)
        return True


def _placement_clear(alias: str, bucket: int, key: str) -> bool | None:
    return fenced_transaction(
        alias,
        bucket,
        lambda: (
            rows(
                alias, "UPDATE sharding_keyplacement SET spread = '[]'::jsonb WHERE key = %s", [key]
            )
            or True
        ),
    )


def slot_take(*, key: str, slot: int, alias: str) -> tuple[uuid.UUID, int, int] | None:
    """Step 1 of a fold (see the module docstring); None when the slot held nothing."""
    fold_id = uuid.uuid4()
    with transaction.atomic(using=alias):
        found = rows(
            alias,
            "SELECT pos, neg FROM sharding_counterslot WHERE key = %s AND slot = %s FOR UPDATE",
            [key, slot],
        )
        if not found:
            return None
        pos, neg = found[0]
        rows(
            alias,
            "UPDATE sharding_counterslot SET pos = 0, neg = 0, open = false "
            "WHERE key = %s AND slot = %s",
            [key, slot],
        )
        if not pos and not neg:
            return None
        rows(
            alias,
            "INSERT INTO sharding_foldrecord (fold_id, key, slot, pos, neg, applied, created_at) "
            "VALUES (%s, %s, %s, %s, %s, false, now())",
            [fold_id, key, slot, pos, neg],
        )
    return fold_id, pos, neg


def fold_apply(*, fold_id: uuid.UUID, key: str, alias: str, pos: int, neg: int) -> None:
    """Steps 2 and 3 of a fold; safe to run any number of times."""

    def apply(home: str, bucket: int, _map) -> bool | None:
        def work() -> bool:
            inserted = rows(
                home,
                "INSERT INTO sharding_foldapplied (fold_id, key, bucket, pos, neg, created_at) "
                "VALUES (%s, %s, %s, %s, %s, now()) ON CONFLICT (fold_id) DO NOTHING RETURNING 1",
                [fold_id, key, bucket, pos, neg],
            )
            if inserted:
                slot0_add_entered(alias=home, key=key, bucket=bucket, pos=pos, neg=neg)
            return True

        return fenced_transaction(home, bucket, work)

    home_write(key, apply)
    crash_point(CRASH_AFTER_APPLY)
    rows(alias, "UPDATE sharding_foldrecord SET applied = true WHERE fold_id = %s", [fold_id])
    fold_amount_total.labels(shard=alias).inc(pos + neg)


def slot_fold(*, key: str, slot: int, alias: str) -> None:
    taken = slot_take(key=key, slot=slot, alias=alias)
    if taken is None:
        return
    crash_point(CRASH_AFTER_TAKE)
    fold_id, pos, neg = taken
    fold_apply(fold_id=fold_id, key=key, alias=alias, pos=pos, neg=neg)


def folds_redrive(*, min_age_s: float = 1.0) -> int:
    """Finish folds interrupted between their steps (a crash, a fenced home)."""
    done = 0
    for alias in settings.SHARD_ALIASES:
        try:
            pending = rows(
                alias,
                "SELECT fold_id, key, pos, neg FROM sharding_foldrecord WHERE NOT applied "
                "AND created_at < now() - make_interval(secs => %s)",
                [min_age_s],
            )
        except DatabaseError:
            continue
        for fold_id, key, pos, neg in pending:
            fold_apply(fold_id=fold_id, key=key, alias=alias, pos=pos, neg=neg)
            done += 1
    return done


def hot_keys_tick() -> dict[str, int]:
    """Demote keys that stayed cool, fold orphaned spreads, re-drive folds, collect garbage."""
    settings_ = conf()
    now = time.time()
    folded = 0
    states = hot_states()
    for key in states:
        under_since = cool_candidate(key=key, now=now)
        if under_since is not None and now - under_since >= settings_.cool_sustain_s:
            folded += key_fold(key=key, under_since=under_since)
    redriven = folds_redrive()
    for alias in settings.SHARD_ALIASES:
        try:
            spread_keys = [
                row[0]
                for row in rows(
                    alias,
                    "SELECT key FROM sharding_keyplacement WHERE spread <> '[]'::jsonb LIMIT 100",
                )
            ]
            rows(
                alias,
                "DELETE FROM sharding_foldrecord WHERE applied "
                "AND created_at < now() - interval '1 hour'",
            )
            rows(
                alias,
                "DELETE FROM sharding_foldapplied WHERE created_at < now() - interval '2 hours'",
            )
        except DatabaseError:
            continue
        for key in spread_keys:
            if key not in states and bucket_map_current().shard_for(key) == alias:
                folded += key_fold(key=key)
    return {"folded": folded, "redriven": redriven}


_last_tick_attempt = 0.0


def hot_keys_tick_maybe(period_s: float = 1.0) -> None:
    """Run the tick here if no process ran it in the last ``period_s`` (checked in Redis at
    most once per ``period_s`` per process)."""
    global _last_tick_attempt  # noqa: PLW0603 - per-process throttle
    now = time.monotonic()
    if now - _last_tick_attempt < period_s:
        return
    _last_tick_attempt = now
    try:
        due = redis_client().set(rkey("tick"), 1, nx=True, px=int(period_s * 1000))
    except redis.RedisError:
        return
    if due:
        try:
            hot_keys_tick()
        except Exception:
            logger.exception("hot-key tick failed; the next one retries")
