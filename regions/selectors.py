"""Reads about the regions as a whole: the overview of GET /api/regions/, open siblings."""

from __future__ import annotations

from typing import Any

import psycopg

from causal.clocks import siblings
from core.db import row_one
from regions.conf import REGION_NAMES, links_endpoint, regions_configured
from regions.convergence import convergence_mark
from regions.db import region_connection
from regions.errors import RegionUnavailable
from regions.links import links_status
from regions.merkle import tree_of
from regions.network import network_get
from regions.store import REASON_LWW_DISCARDED, row_from_db

SIBLING_SCAN_LIMIT = 5000


def _open_sibling_keys(conn: psycopg.Connection, key_prefix: str = "") -> list[str]:
    """One query: the mv rows of keys holding more than one row; siblings decided here."""
    records = conn.execute(
        "SELECT kind, key, origin, counter, context, hlc, NULL::jsonb FROM regions_row "
        "WHERE kind = 'mv' AND key IN (SELECT key FROM regions_row WHERE kind = 'mv' "
        "AND key LIKE %s GROUP BY key HAVING count(*) > 1 ORDER BY key LIMIT %s)",
        (key_prefix.replace("%", r"\%").replace("_", r"\_") + "%", SIBLING_SCAN_LIMIT),
    ).fetchall()
    by_key: dict[str, list] = {}
    for record in records:
        by_key.setdefault(record[1], []).append(row_from_db(record))
    return sorted(
        key for key, rows in by_key.items() if len(siblings(row.version for row in rows)) > 1
    )


def sibling_keys(region: str, key_prefix: str = "") -> list[str]:
    """mv keys whose concurrent versions `region` holds (at most SIBLING_SCAN_LIMIT examined)."""
    with region_connection(region) as conn:
        return _open_sibling_keys(conn, key_prefix)


def siblings_open() -> dict[str, int | None]:
    counts: dict[str, int | None] = {}
    for region in REGION_NAMES:
        try:
            counts[region] = len(sibling_keys(region))
        except (psycopg.Error, RegionUnavailable):
            counts[region] = None
    return counts


def region_summary(region: str) -> dict[str, Any]:
    try:
        tree = tree_of(region)
        with region_connection(region) as conn:
            keys, rows = row_one(
                conn.execute("SELECT count(DISTINCT (kind, key)), count(*) FROM regions_row")
            )
            tombstones, discarded = row_one(
                conn.execute(
                    "SELECT count(*), count(DISTINCT (kind, key, origin, counter)) "
                    "FILTER (WHERE reason = %s) FROM regions_tombstone",
                    (REASON_LWW_DISCARDED,),
                )
            )
            open_siblings = len(_open_sibling_keys(conn))
    except (psycopg.Error, RegionUnavailable) as error:
        return {"name": region, "up": False, "error": str(error).strip().splitlines()[0]}
    return {
        "name": region,
        "up": True,
        "keys": keys,
        "rows": rows,
        "tombstones": tombstones,
        "root": tree.root,
        "siblings_open": open_siblings,
        "lww_discarded": discarded,
    }


def regions_overview() -> dict[str, Any]:
    """Regions (keys, rows, Merkle root), links (state, lag), the network and its clock."""
    configured = regions_configured()
    if configured:
        regions = [region_summary(region) for region in REGION_NAMES]
        links = [link.as_dict() for link in links_status()]
        found = {region["name"]: region.get("root") for region in regions}
        network = convergence_mark(found=found)
    else:
        regions = [{"name": region, "up": False, "error": "not started"} for region in REGION_NAMES]
        links, network = [], network_get()
    root_values = {region.get("root") for region in regions}
    convergence_s = (
        (network.converged_at - network.healed_at).total_seconds()
        if network.healed_at and network.converged_at
        else None
    )
    return {
        "configured": configured,
        "regions": regions,
        "links": links,
        "network": {
            "managed": links_endpoint() is not None,
            "groups": network.groups,
            "delays": network.delays,
            "partitioned": network.partitioned,
            "partitioned_at": network.partitioned_at,
            "healed_at": network.healed_at,
            "converged_at": network.converged_at,
            "convergence_s": convergence_s,
        },
        "converged": None not in root_values and len(root_values) == 1,
        "last_anti_entropy": network.last_anti_entropy,
        "last_vignette": network.last_vignette,
    }
