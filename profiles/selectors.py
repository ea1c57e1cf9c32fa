"""Profile reads: the cache when it may answer, else the database the router picks.

Under ``session`` a cached profile is served only if its version is at least the highest
version the session has seen (its own writes included); a database read from a replica that
returns an older version than that is repeated on the primary (monotonic reads).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections

from consistency.context import (
    consistency_current,
    pin_to_primary,
    response_header_set,
    served_by_set,
)
from consistency.levels import EVENTUAL, PRIMARY, SESSION, STRONG
from consistency.pool import replica_pool
from profiles.cache import (
    CacheUnavailable,
    profile_cache_get,
    profile_cache_set,
    profile_cache_wait,
    profile_lease_acquire,
    profile_lease_release,
)
from profiles.domain import ProfileNotFound, profile_data, profile_key
from profiles.metrics import (
    cache_loads_total,
    cache_requests_total,
    reads_total,
    stale_reads_prevented_total,
)
from profiles.models import Profile

HIT, MISS, BYPASS = "hit", "miss", "bypass"


@dataclass(frozen=True)
class ProfileRead:
    data: dict[str, Any]
    served_by: str
    cache: str


def profile_read(*, user_id: int, use_cache: bool = True) -> ProfileRead:
    """One profile under the current consistency context (``X-Consistency``)."""
    context = consistency_current()
    level = context.level if context is not None else STRONG
    use_cache = use_cache and level != STRONG
    key = profile_key(user_id)
    floor = 0
    if level == SESSION and context is not None:
        state = context.session_state()
        floor = state.version_floor(key) if state is not None else 0
    if use_cache:
        read = _cached_read(user_id, key, floor, level)
    else:
        read = _database_read(user_id, key, floor, cache=BYPASS, lease=None)
    cache_requests_total.labels(result=read.cache).inc()
    if context is not None and level != EVENTUAL:
        context.note_seen(key, read.data["version"])
    served_by_set(read.served_by)
    response_header_set("X-Cache", read.cache)
    return read


def _cached_read(user_id: int, key: str, floor: int, level: str) -> ProfileRead:
    try:
        cached = profile_cache_get(user_id=user_id)
        if cached is not None:
            if level == EVENTUAL or cached.version >= floor:
                reads_total.labels(target="cache", reason=level).inc()
                return ProfileRead(data=cached.data, served_by="cache", cache=HIT)
            stale_reads_prevented_total.labels(reason="cache_version").inc()
        lease = profile_lease_acquire(user_id=user_id)
        if lease is None:
            filled = profile_cache_wait(user_id=user_id, min_version=floor)
            if filled is not None:
                reads_total.labels(target="cache", reason=level).inc()
                return ProfileRead(data=filled.data, served_by="cache", cache=HIT)
    except CacheUnavailable:
        return _database_read(user_id, key, floor, cache=BYPASS, lease=None)
    return _database_read(user_id, key, floor, cache=MISS, lease=lease)


def _database_read(
    user_id: int, key: str, floor: int, *, cache: str, lease: str | None
) -> ProfileRead:
    try:
        profile, alias = _routed_get(user_id, key)
        if floor and profile is not None and profile.version < floor and alias != PRIMARY:
            stale_reads_prevented_total.labels(reason="monotonic").inc()
            profile, alias = _primary_get(user_id, "monotonic")
        if profile is None:
            raise ProfileNotFound(f"user {user_id} has no profile")
        if lease is not None:
            cache_loads_total.inc()
            if _may_fill_from(alias):
                with contextlib.suppress(CacheUnavailable):
                    profile_cache_set(data=profile_data(profile), source="fill")
    finally:
        if lease is not None:
            profile_lease_release(user_id=user_id, token=lease)
    served_by = "primary" if alias == PRIMARY else alias
    return ProfileRead(data=profile_data(profile), served_by=served_by, cache=cache)


def _routed_get(user_id: int, key: str) -> tuple[Profile | None, str]:
    queryset = Profile.objects.db_manager(hints={"consistency_key": key}).all()
    alias = queryset.db
    context = consistency_current()
    reason = context.last_reason if context is not None else "no_context"
    if alias == PRIMARY:
        if reason == "behind":
            stale_reads_prevented_total.labels(reason="write_position").inc()
        return _primary_get(user_id, reason)
    try:
        profile = queryset.using(alias).filter(pk=user_id).first()
    except DatabaseError as error:
        connections[alias].close()
        replica_pool.mark_down(alias, str(error).strip().splitlines()[0] if str(error) else "")
        return _primary_get(user_id, "replica_error")
    if profile is None:
        # Not on the replica: absent, or created after what the replica has replayed.
        return _primary_get(user_id, "replica_missing")
    reads_total.labels(target="replica", reason=reason).inc()
    return profile, alias


def _primary_get(user_id: int, reason: str) -> tuple[Profile | None, str]:
    with pin_to_primary():
        profile = Profile.objects.using(PRIMARY).filter(pk=user_id).first()
    reads_total.labels(target="primary", reason=reason).inc()
    return profile, PRIMARY


def _may_fill_from(alias: str) -> bool:
    if alias == PRIMARY:
        return True
    state = replica_pool.states().get(alias)
    return state is not None and state.staleness_s <= settings.PROFILES_CACHE_FILL_MAX_STALENESS_S
