"""The project's Redis clients and guarded calls.

One client per URL and timeout, per process, with short timeouts, so that a slow or dead
Redis costs a request milliseconds, not seconds. ``guarded_redis_call`` is for callers that
can do without Redis (a cache): on failure it counts the miss, returns a
marker instead of raising, and skips Redis for a moment (a circuit breaker), so an outage
costs each request nothing instead of a timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from prometheus_client import Counter

logger = logging.getLogger(__name__)

redis_unavailable_total = Counter(
    "statelab_redis_unavailable_total",
    "Redis calls skipped or failed (down, slow); the caller fell back to the database",
    ["operation"],
)

_clients: dict[tuple[str, float], redis.Redis] = {}
_lock = threading.Lock()
_UNAVAILABLE = object()
_down_until = 0.0


def redis_client(*, url: str | None = None, timeout_s: float | None = None) -> redis.Redis:
    """``settings.REDIS_URL`` and ``settings.REDIS_SOCKET_TIMEOUT_S`` unless given."""
    key = (url or settings.REDIS_URL, timeout_s or settings.REDIS_SOCKET_TIMEOUT_S)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = redis.Redis.from_url(
                key[0], socket_connect_timeout=key[1], socket_timeout=key[1]
            )
            _clients[key] = client
        return client


def redis_key(*parts: object) -> str:
    """A key under the settings' cache prefix (tests change it per run)."""
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "statelab")
    return ":".join([prefix, *(str(part) for part in parts)])


def redis_available() -> bool:
    return time.monotonic() >= _down_until


def guarded_redis_call(
    operation: str, call: Callable[[redis.Redis], Any], *, through_breaker: bool = False
) -> Any:
    """Run ``call`` on a client with ``REDIS_GUARDED_TIMEOUT_S``; when Redis is down or slow,
    count it and return the unavailable marker (see ``is_unavailable``), and skip Redis for
    ``REDIS_BREAKER_OPEN_S``.

    ``through_breaker``: try even while the breaker is open. For what a write must leave in
    Redis (its cache update): the breaker is per process, so Redis may be back for the
    others, which would then serve the entry this write failed to replace (a chaos run caught
    exactly that: a read of one's own write served the version before it from the cache)."""
    global _down_until  # noqa: PLW0603 - the per-process circuit breaker
    if not through_breaker and not redis_available():
        redis_unavailable_total.labels(operation=operation).inc()
        return _UNAVAILABLE
    try:
        return call(redis_client(timeout_s=settings.REDIS_GUARDED_TIMEOUT_S))
    except redis.RedisError as error:
        _down_until = time.monotonic() + settings.REDIS_BREAKER_OPEN_S
        redis_unavailable_total.labels(operation=operation).inc()
        logger.warning("redis unavailable during %s: %s", operation, error)
        return _UNAVAILABLE


def redis_breaker_reset() -> None:
    global _down_until  # noqa: PLW0603
    _down_until = 0.0


def is_unavailable(value: Any) -> bool:
    return value is _UNAVAILABLE


def redis_clients_reset() -> None:
    """Drop every pooled connection (after Redis restarted under this process)."""
    with _lock:
        for client in _clients.values():
            client.connection_pool.disconnect()
