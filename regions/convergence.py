"""Bringing the regions back together: lost links recreated, anti-entropy over the groups that
can reach each other, and the convergence clock (heal -> every region the same Merkle root)."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.utils import timezone

from regions.links import links_revive, links_status
from regions.merkle import AntiEntropyReport, anti_entropy_run, roots
from regions.models import RegionNetwork
from regions.network import connected_groups, network_get, network_sync
from regions.schema import link_ensure

logger = logging.getLogger(__name__)

AFTER_HEAL_TIMEOUT_S = 60.0
POLL_S = 0.1


def links_recover() -> dict[str, str]:
    """Recreate the subscriptions whose slot was lost or that are missing, for links that are
    not cut (a cut link cannot get a new slot through the proxy)."""
    done = {}
    for link in links_status():
        if link.state in ("lost", "missing"):
            done[link.name] = link_ensure(link.publisher, link.subscriber)
            logger.warning("regions: link %s was %s: %s", link.name, link.state, done[link.name])
    return done


def converged(found: dict[str, str | None] | None = None) -> bool:
    found = found if found is not None else roots()
    values = set(found.values())
    return None not in values and len(values) == 1


def convergence_mark(
    network: RegionNetwork | None = None, *, found: dict[str, str | None] | None = None
) -> RegionNetwork:
    """Record the first moment after a heal at which every region has the same root (`found`:
    roots already read, else read now)."""
    network = network or network_get()
    if network.healed_at and not network.converged_at and converged(found):
        network.converged_at = timezone.now()
        RegionNetwork.objects.filter(id=network.id, converged_at__isnull=True).update(
            converged_at=network.converged_at
        )
    return network


def anti_entropy_now() -> AntiEntropyReport:
    """Sync the proxy with the stored network, recover lost links, wake the launcher of links
    without an apply worker (regions.links.links_revive), run anti-entropy over the connected
    groups and remember the report."""
    network_sync()
    recovered = links_recover()
    links_revive()
    report = anti_entropy_run(connected_groups())
    body: dict[str, Any] = {**report.as_dict(), "links_recovered": recovered, "at": time.time()}
    RegionNetwork.objects.filter(id=network_get().id).update(last_anti_entropy=body)
    report.reconciled["links_recovered"] = recovered
    return report


def after_heal(timeout_s: float = AFTER_HEAL_TIMEOUT_S) -> dict[str, Any]:
    """After a heal: watch until every region has the same root (replication catching up),
    recovering lost links on the way; then anti-entropy (repairs what replication could not,
    reconciles conflicts). Answers the measured times."""
    network = network_get()
    started = time.monotonic()
    recovered: dict[str, str] = {}
    converged_s = None
    while time.monotonic() - started < timeout_s:
        if converged():
            converged_s = time.monotonic() - started
            break
        states = {link.state for link in links_status()}
        if states & {"lost", "missing"}:
            recovered.update(links_recover())
            anti_entropy_run(connected_groups(), reconcile=False)
        if "connecting" in states:
            links_revive()
        time.sleep(POLL_S)
    convergence_mark(network)
    report = anti_entropy_now()
    return {
        "converged_s": converged_s,
        "links_recovered": recovered,
        "anti_entropy": report.as_dict(),
    }
