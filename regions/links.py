"""The links between regions: the proxy that carries them (cut, delay) and what Postgres says
about each (the publisher's slot, the subscriber's apply worker)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from devstack.linkproxy import LinkControl
from regions.conf import REGION_NAMES, links_endpoint, region_addresses
from regions.db import region_connect, region_connection
from regions.errors import NetworkUnmanaged

logger = logging.getLogger(__name__)

LINKS = tuple(f"{a}->{b}" for a in REGION_NAMES for b in REGION_NAMES if a != b)


def link_ends(link: str) -> tuple[str, str]:
    publisher, _, subscriber = link.partition("->")
    return publisher, subscriber


def link_control() -> LinkControl:
    endpoint = links_endpoint()
    if endpoint is None:
        raise NetworkUnmanaged(
            "REGION_LINKS_URL is not set: the regions' links are direct, nothing can cut them."
        )
    host, port = endpoint
    return LinkControl(port, host=host, timeout=2.0)


@functools.lru_cache(maxsize=8)
def _route_ports(endpoint: tuple[str, int]) -> dict[str, int]:
    host, port = endpoint
    return {name: route["listen"] for name, route in LinkControl(port, host=host).status().items()}


def route_endpoint(publisher: str, subscriber: str) -> tuple[str, int]:
    """Where `subscriber` connects to reach `publisher`: the proxy's route when there is one."""
    endpoint = links_endpoint()
    if endpoint is None:
        address = region_addresses()[publisher]
        return address.host, address.port
    return endpoint[0], _route_ports(endpoint)[f"{publisher}->{subscriber}"]


def proxy_routes() -> dict[str, dict[str, Any]] | None:
    """The proxy's view of every route (cut, delay_ms, ...), None when unmanaged or down."""
    if links_endpoint() is None:
        return None
    try:
        return link_control().status()
    except (OSError, ValueError):
        return None


@dataclass
class LinkStatus:
    name: str
    publisher: str
    subscriber: str
    state: str
    cut: bool | None
    delay_ms: int | None
    lag_bytes: int | None
    slot_wal_status: str | None
    apply_running: bool | None
    last_message_age_s: float | None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _slots(region: str, database: str) -> dict[str, tuple]:
    with region_connection(region) as conn:
        rows = conn.execute(
            "SELECT slot_name, wal_status, active, "
            "pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
            "FROM pg_replication_slots WHERE database = %s AND slot_type = 'logical'",
            (database,),
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def _subscriptions(region: str) -> dict[str, tuple]:
    with region_connection(region) as conn:
        rows = conn.execute(
            "SELECT s.subname, s.subenabled, w.pid IS NOT NULL, "
            "extract(epoch FROM now() - w.last_msg_receipt_time)::float8 "
            "FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid "
            "LEFT JOIN pg_stat_subscription w ON w.subid = s.oid AND w.relid IS NULL "
            "WHERE d.datname = current_database()"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def links_status() -> list[LinkStatus]:
    """Every link: cut/delay (proxy), the slot's WAL status and unconfirmed bytes (publisher),
    whether the apply worker runs and when it last heard from its publisher (subscriber).

    state: ``streaming`` | ``catching_up`` (more than 1 MB unconfirmed) | ``cut`` |
    ``connecting`` (no apply worker yet) | ``lost`` (the slot passed its WAL bound: the
    subscription must be recreated and anti-entropy fills the gap) | ``missing`` (no
    subscription) | ``down`` (a region cannot be reached)."""
    from regions.schema import subscription_name

    addresses = region_addresses()
    routes = proxy_routes() or {}
    slots: dict[str, dict[str, tuple] | None] = {}
    subs: dict[str, dict[str, tuple] | None] = {}
    errors: dict[str, str] = {}
    for region, address in addresses.items():
        try:
            slots[region] = _slots(region, address.database)
            subs[region] = _subscriptions(region)
        except (psycopg.Error, Exception) as error:
            slots[region] = subs[region] = None
            errors[region] = str(error).strip().splitlines()[0] if str(error) else repr(error)
    result = []
    for link in LINKS:
        publisher, subscriber = link_ends(link)
        name = subscription_name(addresses[subscriber].database, publisher, subscriber)
        route = routes.get(link, {})
        status = LinkStatus(
            name=link,
            publisher=publisher,
            subscriber=subscriber,
            state="streaming",
            cut=route.get("cut"),
            delay_ms=route.get("delay_ms"),
            lag_bytes=None,
            slot_wal_status=None,
            apply_running=None,
            last_message_age_s=None,
        )
        publisher_slots, subscriber_subs = slots[publisher], subs[subscriber]
        if publisher_slots is None or subscriber_subs is None:
            status.state = "down"
            status.error = errors.get(publisher) or errors.get(subscriber)
            result.append(status)
            continue
        slot = publisher_slots.get(name)
        sub = subscriber_subs.get(name)
        if slot is not None:
            status.slot_wal_status, _active, status.lag_bytes = slot
            status.lag_bytes = max(0, status.lag_bytes or 0)
        if sub is not None:
            _enabled, status.apply_running, age = sub
            status.last_message_age_s = None if age is None else round(age, 3)
        if sub is None:
            status.state = "missing"
        elif slot is None or status.slot_wal_status == "lost":
            status.state = "lost"
        elif status.cut:
            status.state = "cut"
        elif not status.apply_running or not slot[1]:
            status.state = "connecting"
        elif (status.lag_bytes or 0) > 1_000_000:
            status.state = "catching_up"
        result.append(status)
    return result


def links_revive(links: Iterable[str] = LINKS) -> list[str]:
    """Wake the subscriber's logical replication launcher for every link given that is not cut
    and whose subscription is enabled but has no apply worker; answers the links woken.

    Why: the launcher of Postgres 16.2 can miss the exit of an apply worker that dies within a
    few milliseconds of starting (a connection refused while its link is cut): it consumes the
    wakeup while waiting for the worker to attach, then sleeps its whole 3-minute cycle, and the
    link stays silent that long after the heal (later Postgres releases restore the wakeup).
    ``ALTER SUBSCRIPTION .. ENABLE`` on an enabled subscription changes nothing but wakes the
    launcher at commit; the launcher still spaces restarts by ``wal_retrieve_retry_interval``.
    A region that cannot be reached is skipped."""
    from regions.schema import subscription_name

    addresses = region_addresses()
    routes = proxy_routes() or {}
    names_by_subscriber: dict[str, dict[str, str]] = {}
    for link in links:
        if routes.get(link, {}).get("cut"):
            continue
        publisher, subscriber = link_ends(link)
        name = subscription_name(addresses[subscriber].database, publisher, subscriber)
        names_by_subscriber.setdefault(subscriber, {})[name] = link
    woken = []
    for subscriber, names in names_by_subscriber.items():
        try:
            with region_connect(subscriber) as conn:
                idle = [
                    row[0]
                    for row in conn.execute(
                        "SELECT s.subname FROM pg_subscription s "
                        "JOIN pg_database d ON d.oid = s.subdbid "
                        "LEFT JOIN pg_stat_subscription w ON w.subid = s.oid AND w.relid IS NULL "
                        "WHERE d.datname = current_database() AND s.subenabled "
                        "AND w.pid IS NULL AND s.subname = ANY(%s)",
                        (list(names),),
                    )
                ]
                for name in idle:
                    conn.execute(
                        sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(sql.Identifier(name))
                    )
                    woken.append(names[name])
        except psycopg.Error:
            continue
    if woken:
        logger.debug("regions: woke the launcher for links without an apply worker: %s", woken)
    return sorted(woken)
