"""At most one promotion or fold of a key at a time, across processes (a Redis lease)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from core.redis import redis_client
from sharding.redis_keys import key_lease_key

RELEASE_LUA = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


@contextmanager
def key_lock(key: str, timeout_s: float = 30.0) -> Iterator[bool]:
    """Yields whether this process holds the key's lease (for ``timeout_s`` at most)."""
    client = redis_client()
    name, token = key_lease_key(key), uuid.uuid4().hex
    acquired = bool(client.set(name, token, nx=True, px=int(timeout_s * 1000)))
    try:
        yield acquired
    finally:
        if acquired:
            client.eval(RELEASE_LUA, 1, name, token)
