"""One Redis client per URL and process, with short timeouts: a slow or dead Redis must cost a
request milliseconds, not seconds (callers fall back to the database)."""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def redis_client(url: str | None = None) -> redis.Redis:
    url = url or settings.REDIS_URL
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT_S,
                socket_timeout=settings.REDIS_SOCKET_TIMEOUT_S,
                health_check_interval=30,
            )
            _clients[url] = client
        return client
