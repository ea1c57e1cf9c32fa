"""Every Redis key of the sharding app, one function per kind, all under ``SHARDING["prefix"]``
(tests and benchmark runs change it, so that runs sharing one Redis never meet).

What lives there is rebuildable or advisory: the map version (a hint; the database is the
truth), merged values of hot keys (a cache), leases, the hot-key detection state and the hot
set (lost with Redis, a hot key is detected again and an orphaned spread is folded).
"""

from __future__ import annotations

from dataclasses import dataclass

from sharding.conf import conf


def _key(*parts: object) -> str:
    return ":".join([conf().prefix, *map(str, parts)])


def all_keys_pattern() -> str:
    """A SCAN pattern matching every key of this prefix."""
    return _key("*")


def map_version_key() -> str:
    """The newest bucket map version, announced after each switch."""
    return _key("map", "version")


def merged_value_key(key: str) -> str:
    """A hot counter's merged value, cached for ``merged_cache_s``."""
    return _key("merged", key)


def key_lease_key(key: str) -> str:
    """The lease of the one promotion or fold of ``key`` under way."""
    return _key("lock", key)


def job_lease_key(job: str) -> str:
    """The lease of one run of a periodic maintenance job (one at a time across processes)."""
    return _key(job)


def hot_set_key() -> str:
    """The hot set: hash key -> JSON of the shards of its open extra slots."""
    return _key("hk", "hot")


def cooling_since_key() -> str:
    """Hash key -> when a hot key first went under the cool band."""
    return _key("hk", "below")


@dataclass(frozen=True)
class DetectionKeys:
    """The hot-key detection state, written by one Lua script (see ``sharding.hotkeys``)."""

    summary: str
    meta: str
    shards: str
    shard_totals: str
    above: str
    heat: str
    heat_totals: str

    def for_record_script(self) -> list[str]:
        """KEYS of the record script, in its order (it also reads the hot set)."""
        return [
            self.summary,
            self.meta,
            self.shards,
            self.shard_totals,
            self.above,
            hot_set_key(),
            self.heat,
            self.heat_totals,
        ]


def detection_keys() -> DetectionKeys:
    return DetectionKeys(
        summary=_key("hk", "summary"),
        meta=_key("hk", "meta"),
        shards=_key("hk", "shards"),
        shard_totals=_key("hk", "shard_totals"),
        above=_key("hk", "above"),
        heat=_key("hk", "heat"),
        heat_totals=_key("hk", "heat_totals"),
    )
