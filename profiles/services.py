"""Profile writes: one transaction on the primary (with the session's version floor), then
(after commit) the session's write position, the fenced write-through to the cache and the
change-feed task."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError

from consistency.context import consistency_current
from profiles.cache import CacheUnavailable, profile_cache_set
from profiles.domain import (
    EDITABLE_FIELDS,
    PROFILE_CHANGE_RECORD_TASK,
    ProfileNotFound,
    profile_data,
    profile_key,
)
from profiles.metrics import profile_writes_total
from profiles.models import Profile, ProfileChange
from profiles.selectors import profile_read

logger = logging.getLogger(__name__)


def profile_ensure(*, user_id: int) -> Profile:
    profile, _created = Profile.objects.using("default").get_or_create(user_id=user_id)
    return profile


def profile_update(*, user_id: int, changes: dict[str, Any], actor_id: int) -> Profile:
    """Apply validated ``changes`` by ``actor_id`` (the owner, or staff through the admin).

    In the write's transaction the caller's session records the new version as its floor for
    the profile (saved with the write: a read of it by this session is never older). After
    the commit: the session's WAL position of this write (so the read can go to a replica
    that has it), the cache gets the new version through the version fence, and the
    change-feed task is sent carrying that position. Run inside an outer transaction (the
    admin's), all of it waits for the outer commit.
    """
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValueError(f"not editable: {', '.join(unknown)}")
    with transaction.atomic(using="default"):
        try:
            profile = Profile.objects.using("default").select_for_update().get(pk=user_id)
        except Profile.DoesNotExist:
            raise ProfileNotFound(f"user {user_id} has no profile") from None
        for name, value in changes.items():
            setattr(profile, name, value)
        profile.version += 1
        profile.save()
        context = consistency_current()
        if context is not None:
            context.note_write(profile_key(profile.user_id), profile.version)
        transaction.on_commit(lambda: _after_commit(profile), using="default")
    return profile


def _after_commit(profile: Profile) -> None:
    from config.celery import app

    profile_writes_total.inc()
    try:
        profile_cache_set(data=profile_data(profile), source="write")
    except CacheUnavailable:
        # The cache may keep the older version until its TTL: the writing session's version
        # floor (saved with the write) refuses it; other sessions may read it, as eventual.
        logger.warning("profile %s v%s not written to the cache", profile.pk, profile.version)
    if not settings.PROFILES_CHANGE_FEED_ENABLED:
        return
    try:
        app.send_task(PROFILE_CHANGE_RECORD_TASK, args=[profile.user_id])
    except BrokerError:
        logger.warning("change feed task for profile %s not sent: broker down", profile.pk)


def profile_change_record(*, user_id: int) -> ProfileChange | None:
    """Record the profile as a reader sees it now (the change feed); safe to run twice.

    It reads through the consistency router with the positions its publisher sent, so it
    reads a replica only when that replica has the write that sent the task."""
    try:
        read = profile_read(user_id=user_id, use_cache=False)
    except ProfileNotFound:
        return None
    change, _created = ProfileChange.objects.using("default").get_or_create(
        profile_id=user_id,
        version=read.data["version"],
        defaults={"display_name": read.data["display_name"], "read_from": read.served_by},
    )
    return change
