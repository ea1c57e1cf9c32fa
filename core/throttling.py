"""Rate limits kept in Redis, so that every web process shares one count per client.

Fixed windows counted by one Lua script (INCR, and PEXPIRE on the first hit), so concurrent
requests can never both take the last slot. Over the limit: 429 with ``Retry-After``. If Redis
is unreachable the request is let through and ``statelab_throttle_unavailable_total`` counts
it: an outage of the limiter must not become an outage of the service.
"""

from __future__ import annotations

import math

import redis
from django.conf import settings
from prometheus_client import Counter
from rest_framework.throttling import BaseThrottle

from core.net import client_address
from core.redis import redis_client

throttle_rejections_total = Counter(
    "statelab_throttle_rejections_total", "Requests refused with 429", ["scope"]
)
throttle_unavailable_total = Counter(
    "statelab_throttle_unavailable_total", "Requests let through because Redis was down", ["scope"]
)

_WINDOW_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
"""
_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``'20/min'`` -> (20, 60)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip().lower()]


class RedisRateThrottle(BaseThrottle):
    """Subclasses set ``scope``; the rate is ``settings.STATELAB_THROTTLE_RATES[scope]``.

    An anonymous client is counted by ``core.net.client_address``: the connection's address
    unless trusted proxies are configured, never a header the client can vary per request."""

    scope = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def identity(self, request, view) -> str:
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"ip:{client_address(request)}"

    def allow_request(self, request, view) -> bool:
        limit, period_s = parse_rate(settings.STATELAB_THROTTLE_RATES[self.scope])
        prefix = settings.CACHES["default"]["KEY_PREFIX"]
        key = f"{prefix}:throttle:{self.scope}:{self.identity(request, view)}"
        try:
            count, ttl_ms = redis_client().eval(_WINDOW_SCRIPT, 1, key, period_s * 1000)
        except redis.RedisError:
            throttle_unavailable_total.labels(scope=self.scope).inc()
            return True
        if count <= limit:
            return True
        self._wait = max(1, math.ceil(ttl_ms / 1000)) if ttl_ms > 0 else period_s
        throttle_rejections_total.labels(scope=self.scope).inc()
        return False

    def wait(self) -> float | None:
        return self._wait


class AuthTokenThrottle(RedisRateThrottle):
    """Log-in attempts per client address: slows password guessing."""

    scope = "auth"

    def identity(self, request, view) -> str:
        return f"ip:{client_address(request)}"


class TransferCreateThrottle(RedisRateThrottle):
    """Transfers started per user."""

    scope = "transfers"
