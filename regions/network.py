"""Partitions and delays of the regions' links, applied by the link proxy (a property of the
network, not a flag the application reads), and remembered in the default database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from devstack.linkproxy import MAX_DELAY_MS
from regions.conf import REGION_NAMES
from regions.errors import InvalidNetwork, RegionUnavailable
from regions.links import LINKS, link_control, link_ends, links_revive, proxy_routes
from regions.models import RegionNetwork


def network_get() -> RegionNetwork:
    network, _ = RegionNetwork.objects.get_or_create(id=1)
    return network


def groups_parse(groups: Any) -> list[list[str]]:
    """Every region in exactly one group; InvalidNetwork (400) otherwise."""
    if not isinstance(groups, list) or not groups:
        raise InvalidNetwork('groups is a list of groups of regions, e.g. [["r1"], ["r2", "r3"]].')
    seen: list[str] = []
    parsed = []
    for group in groups:
        if not isinstance(group, list) or not group:
            raise InvalidNetwork("each group is a non-empty list of region names.")
        for region in group:
            if region not in REGION_NAMES:
                raise InvalidNetwork(f"there is no region {region!r}; regions are r1, r2, r3.")
        seen += group
        parsed.append(sorted(group))
    if sorted(seen) != sorted(REGION_NAMES):
        raise InvalidNetwork("every region (r1, r2, r3) must be in exactly one group.")
    return sorted(parsed)


def delays_parse(delays: Any) -> dict[str, int]:
    if not isinstance(delays, dict):
        raise InvalidNetwork('delays is an object: {"r1->r2": 200, ...} (milliseconds).')
    for link, delay in delays.items():
        if link not in LINKS:
            raise InvalidNetwork(f"there is no link {link!r}; links are {', '.join(LINKS)}.")
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= MAX_DELAY_MS:
            raise InvalidNetwork(f"a delay is an integer number of ms in 0..{MAX_DELAY_MS}.")
    return dict(delays)


def _group_of(groups: Sequence[Sequence[str]]) -> dict[str, int]:
    return {region: index for index, group in enumerate(groups) for region in group}


def _apply(groups: Sequence[Sequence[str]], delays: Mapping[str, int]) -> None:
    """Set every route, then wake the launchers that may have missed an apply worker's exit
    while its link was cut (regions.links.links_revive)."""
    control = link_control()
    where = _group_of(groups)
    try:
        for link in LINKS:
            publisher, subscriber = link_ends(link)
            control.set(
                link,
                cut=where[publisher] != where[subscriber],
                delay_ms=int(delays.get(link, 0)),
            )
    except (OSError, ValueError) as error:
        raise RegionUnavailable(f"the link proxy does not answer: {error}") from None
    links_revive()


def network_set(
    *, groups: list[list[str]] | None = None, delays: dict[str, int] | None = None
) -> tuple[RegionNetwork, bool]:
    """Partition (several groups) or heal (one group), and/or set per-link delays; answers the
    network and whether this call healed a partition (then anti-entropy follows, see
    regions.tasks)."""
    with transaction.atomic():
        network = network_get()
        network = RegionNetwork.objects.select_for_update().get(id=network.id)
        new_groups = groups if groups is not None else network.groups
        new_delays = {**network.delays, **(delays or {})}
        _apply(new_groups, new_delays)
        was_partitioned = network.partitioned
        now = timezone.now()
        healed = was_partitioned and len(new_groups) == 1
        if len(new_groups) > 1 and new_groups != network.groups:
            network.partitioned_at, network.healed_at, network.converged_at = now, None, None
        if healed:
            network.healed_at, network.converged_at = now, None
        network.groups, network.delays = new_groups, new_delays
        network.save()
    return network, healed


def network_sync() -> bool:
    """Set the stored network again when the proxy's routes differ from it (the proxy was
    restarted); True when something was set."""
    routes = proxy_routes()
    if routes is None:
        return False
    network = network_get()
    where = _group_of(network.groups)
    for link in LINKS:
        publisher, subscriber = link_ends(link)
        route = routes.get(link, {})
        if route.get("cut") != (where[publisher] != where[subscriber]) or route.get(
            "delay_ms"
        ) != int(network.delays.get(link, 0)):
            _apply(network.groups, network.delays)
            return True
    return False


def connected_groups() -> list[list[str]]:
    """Regions that can reach one another now (both directions of every link between them
    up, by the proxy's own state); one group when the links are unmanaged."""
    routes = proxy_routes()
    if routes is None:
        return [list(REGION_NAMES)]
    groups: list[list[str]] = []
    for region in REGION_NAMES:
        for group in groups:
            if all(
                not routes.get(f"{region}->{other}", {}).get("cut")
                and not routes.get(f"{other}->{region}", {}).get("cut")
                for other in group
            ):
                group.append(region)
                break
        else:
            groups.append([region])
    return groups
