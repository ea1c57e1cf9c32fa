"""The profiles' write-through Redis cache, fenced by version.

Each profile is one Redis hash ``{v: version, d: json}``. Every set goes through a Lua
compare-and-set that refuses a version lower than the stored one, so neither a slow writer nor
a slow reader filling a miss can put an older profile over a newer one. A miss is loaded by
the one caller that gets the key's lease (``SET NX PX``); the others wait briefly for the
fill. The TTL is a safety net for a write whose cache update was lost (Redis down at the time);
until it expires, the writing session is not served the older entry: its version floor, saved
in the write's transaction, is higher.
Redis down or slow: callers get ``CacheUnavailable`` and read the database.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from core.redis import guarded_redis_call, is_unavailable, redis_key
from profiles.metrics import cache_fence_rejections_total

# Returns 1 when stored, 0 when the same version is already there, -1 when a newer one is.
_FENCED_SET = """
local current = redis.call('HGET', KEYS[1], 'v')
local incoming = tonumber(ARGV[1])
if current then
  current = tonumber(current)
  if current > incoming then return -1 end
  if current == incoming then return 0 end
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
_LEASE_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class CacheUnavailable(Exception):
    pass


@dataclass(frozen=True)
class CachedProfile:
    version: int
    data: dict[str, Any]


def profile_cache_key(user_id: int) -> str:
    return redis_key("profiles", "profile", "v1", user_id)


def profile_lease_key(user_id: int) -> str:
    return redis_key("profiles", "lease", "v1", user_id)


def _call(operation: str, call, *, through_breaker: bool = False) -> Any:
    result = guarded_redis_call(operation, call, through_breaker=through_breaker)
    if is_unavailable(result):
        raise CacheUnavailable(operation)
    return result


def profile_cache_command(user_id: int) -> tuple:
    """The Redis command that reads a cached profile (for callers that pipeline it)."""
    return ("HMGET", profile_cache_key(user_id), "v", "d")


def profile_cache_parse(reply: list) -> CachedProfile | None:
    version, payload = reply
    if version is None or payload is None:
        return None
    return CachedProfile(version=int(version), data=json.loads(payload))


def profile_cache_get(*, user_id: int) -> CachedProfile | None:
    command = profile_cache_command(user_id)
    return profile_cache_parse(
        _call("profile_get", lambda client: client.execute_command(*command))
    )


def profile_cache_set(*, data: dict[str, Any], source: str) -> bool:
    """Store ``data`` unless the cache holds a newer version; True when stored or equal."""
    payload = json.dumps(data, separators=(",", ":"), default=str)
    ttl_ms = settings.PROFILES_CACHE_TTL_S * 1000

    def fenced_set(client):
        return client.eval(
            _FENCED_SET, 1, profile_cache_key(data["user_id"]), data["version"], payload, ttl_ms
        )

    # A write's own update goes through an open breaker: an older entry must not outlive it.
    result = int(_call("profile_set", fenced_set, through_breaker=source == "write"))
    if result < 0:
        cache_fence_rejections_total.labels(source=source).inc()
        return False
    return True


def profile_lease_acquire(*, user_id: int) -> str | None:
    """The key's single-flight lease: a token for the one loader, None for everyone else."""
    token = secrets.token_hex(8)
    acquired = _call(
        "lease_acquire",
        lambda client: client.set(
            profile_lease_key(user_id), token, nx=True, px=settings.PROFILES_CACHE_LEASE_MS
        ),
    )
    return token if acquired else None


def profile_lease_release(*, user_id: int, token: str) -> None:
    guarded_redis_call(
        "lease_release",
        lambda client: client.eval(_LEASE_RELEASE, 1, profile_lease_key(user_id), token),
    )


def profile_cache_wait(*, user_id: int, min_version: int) -> CachedProfile | None:
    """Wait up to ``PROFILES_CACHE_WAIT_S`` for the lease holder's fill."""
    deadline = time.monotonic() + settings.PROFILES_CACHE_WAIT_S
    delay = 0.002
    while time.monotonic() < deadline:
        time.sleep(delay)
        cached = profile_cache_get(user_id=user_id)
        if cached is not None and cached.version >= min_version:
            return cached
        delay = min(delay * 2, 0.02)
    return None
