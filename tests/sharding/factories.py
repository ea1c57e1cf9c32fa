import random
from datetime import UTC, datetime, timedelta

import factory

from sharding.placement import bucket_of


def _recent() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=random.randint(0, 3600))  # noqa: S311


class EventInputFactory(factory.DictFactory):
    """A request body for ``POST /api/sharding/events/``."""

    key = factory.Sequence(lambda n: f"user:{n}")
    ts = factory.LazyFunction(lambda: _recent().isoformat())
    payload = factory.Dict({"kind": "like", "n": factory.Sequence(int)})


def keys_in_bucket(bucket: int, count: int, prefix: str = "k") -> list[str]:
    """The first ``count`` keys ``<prefix><n>`` that hash into ``bucket``."""
    found, number = [], 0
    while len(found) < count:
        key = f"{prefix}{number}"
        if bucket_of(key) == bucket:
            found.append(key)
        number += 1
    return found
