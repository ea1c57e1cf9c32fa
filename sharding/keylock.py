"""One promotion or fold of a key at a time, and what makes an expired one harmless.

``key_lease`` takes a Redis lease of ``key_lease_s`` (None when another process holds it),
then the key's next fencing token from its home shard (``KeyPlacement.fence``, moved with the
bucket). A lease can run out under a slow holder (a fenced home write waits up to 15 s, a
process pauses): every database write of the holder carries its token, and a row that has
seen a newer one refuses it (``store.FencedOut``), so a holder that outlived its lease stops
without changing what its successor wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from core.redis import redis_client
from sharding import store
from sharding.conf import conf
from sharding.fences import fenced_transaction, home_write
from sharding.redis_keys import key_lease_key

RELEASE_LUA = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


@dataclass(frozen=True)
class KeyLease:
    key: str
    fence: int  # the fencing token every write of this holder carries


@contextmanager
def key_lease(key: str) -> Iterator[KeyLease | None]:
    """Yields the lease, or None when another process holds the key's."""
    client = redis_client()
    name, owner = key_lease_key(key), uuid.uuid4().hex
    acquired = bool(client.set(name, owner, nx=True, px=int(conf().key_lease_s * 1000)))
    try:
        if not acquired:
            yield None
            return
        _home, fence = home_write(
            key,
            lambda alias, bucket, _map: fenced_transaction(
                alias,
                bucket,
                lambda: store.placement_token_issue(alias, key=key, bucket=bucket),
            ),
        )
        yield KeyLease(key=key, fence=fence)
    finally:
        if acquired:
            client.eval(RELEASE_LUA, 1, name, owner)
