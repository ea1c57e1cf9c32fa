"""Folding a cooled hot key back into slot 0, exactly, while writes continue.

Folding slot i (on shard X) into slot 0 (on the home shard H): no transaction spans two
databases, so the amount travels in three local steps with an idempotent record:
1. on X, one transaction: lock the slot row, read (pos, neg), zero it and *close* it, and
   insert ``FoldRecord(fold_id, pos, neg)``. From now on writers of slot i fall back to slot 0;
   readers count the record while H has not applied it.
2. on H, one transaction under the bucket fence: insert ``FoldApplied(fold_id)``; only if that
   insert happened (not a replay) add (pos, neg) to slot 0. Replaying step 2 adds nothing.
3. on X: mark the record applied (kept for an hour so that a slow reader whose home snapshot
   predates step 2 still counts it exactly once). ``FoldApplied`` is deleted only once its
   record is gone from every shard (``sharding.maintenance``), so a replay of step 2 always
   finds it, however long a slot's shard stayed unreachable.
A crash between the steps leaves an unapplied record, counted by readers and re-driven by
``folds_redrive`` (a maintenance job), so a fold converges and never doubles.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError

from core.faults import crash_point, fault_sleep
from sharding import store
from sharding.control.models import HotKeyEpisode
from sharding.fences import fenced_transaction, home_write
from sharding.keylock import key_lease
from sharding.metrics import fold_amount_total, hot_cool_seconds
from sharding.placement import bucket_map_current
from sharding.spreading import hot_state_clear, hot_states

logger = logging.getLogger(__name__)

CRASH_AFTER_TAKE = "sharding.fold.after_take"
CRASH_AFTER_APPLY = "sharding.fold.after_apply"
FOLD_PAUSE_SWITCH = "sharding_fold_pause_ms"


def key_fold(*, key: str, under_since: float | None = None) -> bool:
    """Fold every extra slot of ``key`` back into slot 0 and forget its spread, under the
    key's lease and fencing token: a fold that outlived its lease stops at its first write
    after a newer promotion began (nothing it did is lost: amounts it took are applied).
    Without ``under_since`` (an orphaned spread) the key is left alone while it is hot."""
    with key_lease(key) as lease:
        if lease is None:
            return False
        if under_since is None and key in hot_states():
            return False
        hot_state_clear(key=key, fence=lease.fence)
        # Writers that still see the key hot (for up to HOT_CACHE_S) find closed slots and
        # fall back to slot 0; readers keep gathering the slots until the spread is cleared.
        home = bucket_map_current().shard_for(key)
        spread = store.placement_spread(home, key=key)
        try:
            for slot, alias in enumerate(spread, start=1):
                slot_fold(key=key, slot=slot, alias=alias, fence=lease.fence)
            # Readers find fold records only on the shards the spread names: finish every fold
            # of this key (an earlier one may have been interrupted) before forgetting them.
            for alias in dict.fromkeys(spread):
                for fold_id, pos, neg in store.fold_records(alias, key=key, unapplied_only=True):
                    fold_apply(fold_id=fold_id, key=key, alias=alias, pos=pos, neg=neg)
            fault_sleep(FOLD_PAUSE_SWITCH)
            home_write(
                key,
                lambda alias, bucket, _m: fenced_transaction(
                    alias,
                    bucket,
                    lambda: store.placement_spread_clear(alias, key=key, fence=lease.fence) or True,
                ),
            )
        except store.FencedOut:
            logger.info("fold of %s stopped: a newer promotion or fold has begun", key)
            return False
        if under_since is not None:
            now = time.time()
            cool_s = now - under_since
            hot_cool_seconds.observe(cool_s)
            HotKeyEpisode.objects.using("default").filter(key=key, cooled_at=None).update(
                cooled_at=datetime.fromtimestamp(now, UTC), cool_seconds=cool_s
            )
            logger.info("hot key %s folded back (cooled in %.2f s)", key, cool_s)
        return True


def slot_take(*, key: str, slot: int, alias: str, fence: int) -> tuple[uuid.UUID, int, int] | None:
    """Step 1 of a fold holding token ``fence`` (see the module docstring); None when the slot
    held nothing; ``store.FencedOut`` when a newer promotion or fold wrote the slot."""
    fold_id = uuid.uuid4()
    taken = store.slot_take(alias, key=key, slot=slot, fold_id=fold_id, fence=fence)
    if taken is None:
        return None
    return fold_id, *taken


def fold_apply(*, fold_id: uuid.UUID, key: str, alias: str, pos: int, neg: int) -> None:
    """Steps 2 and 3 of a fold; safe to run any number of times."""

    def apply(home: str, bucket: int, _map) -> bool | None:
        def work() -> bool:
            if store.fold_applied_insert(
                home, fold_id=fold_id, key=key, bucket=bucket, pos=pos, neg=neg
            ):
                store.slot0_add_entered(home, key=key, bucket=bucket, pos=pos, neg=neg)
            return True

        return fenced_transaction(home, bucket, work)

    home_write(key, apply)
    crash_point(CRASH_AFTER_APPLY)
    store.fold_record_mark_applied(alias, fold_id=fold_id)
    fold_amount_total.labels(shard=alias).inc(pos + neg)


def slot_fold(*, key: str, slot: int, alias: str, fence: int) -> None:
    taken = slot_take(key=key, slot=slot, alias=alias, fence=fence)
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
            pending = store.fold_records_pending(alias, min_age_s=min_age_s)
        except DatabaseError:
            continue
        for fold_id, key, pos, neg in pending:
            fold_apply(fold_id=fold_id, key=key, alias=alias, pos=pos, neg=neg)
            done += 1
    return done
