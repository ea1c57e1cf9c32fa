"""Connections to the regions' databases: one small psycopg pool per region, opened on first
use in each process (after gunicorn or Celery forked), rebuilt when the settings change (tests
point REGION_URLS at their own database)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from regions.conf import RegionAddress, option, region_addresses
from regions.errors import RegionUnavailable, UnknownRegion

_lock = threading.Lock()
_pools: dict[str, ConnectionPool] = {}
_pools_for: dict[str, RegionAddress] = {}
# A region that did not answer is not asked again for this long: a page that reads all three
# regions must not wait a connect timeout per query for one that is down.
DOWN_RETRY_S = 2.0
_down_until: dict[str, float] = {}


def _configure(conn: psycopg.Connection) -> None:
    conn.execute(f"SET statement_timeout = {int(option('statement_timeout_ms'))}")
    conn.commit()


def _pool(region: str) -> ConnectionPool:
    addresses = region_addresses()
    if region not in addresses:
        raise UnknownRegion(region=region)
    address = addresses[region]
    with _lock:
        pool = _pools.get(region)
        if pool is not None and _pools_for.get(region) == address:
            return pool
        if pool is not None:
            pool.close(timeout=1)
        pool = ConnectionPool(
            address.conninfo(),
            min_size=0,
            max_size=int(option("pool_size")),
            timeout=float(option("connect_timeout_s")),
            configure=_configure,
            check=ConnectionPool.check_connection,
            name=f"regions-{region}",
            open=True,
        )
        _pools[region], _pools_for[region] = pool, address
        return pool


@contextmanager
def region_connection(region: str) -> Iterator[psycopg.Connection]:
    """A connection to `region`'s database (not autocommit: use ``conn.transaction()``);
    RegionUnavailable (503) when the region cannot be reached."""
    pool = _pool(region)
    if time.monotonic() < _down_until.get(region, 0.0):
        raise RegionUnavailable(f"region {region} did not answer a moment ago", region=region)
    try:
        with pool.connection() as conn:
            yield conn
    except (PoolTimeout, psycopg.OperationalError) as error:
        _down_until[region] = time.monotonic() + DOWN_RETRY_S
        raise RegionUnavailable(
            f"region {region} cannot be reached: {str(error).strip() or type(error).__name__}",
            region=region,
        ) from None
    _down_until.pop(region, None)


def region_connect(region: str, *, autocommit: bool = True, database: str | None = None):
    """A fresh connection outside the pool (setup, replication commands, anti-entropy)."""
    address = region_addresses()[region]
    conninfo = address.conninfo()
    kwargs: dict[str, Any] = {"dbname": database} if database else {}
    return psycopg.connect(conninfo, autocommit=autocommit, **kwargs)


def pools_close() -> None:
    with _lock:
        for pool in _pools.values():
            pool.close(timeout=1)
        _pools.clear()
        _pools_for.clear()
        _down_until.clear()
