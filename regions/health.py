"""The regions in /readyz: each region's database, when the regions are configured."""

from __future__ import annotations

from regions.conf import REGION_NAMES, option, regions_configured


def _check(region: str) -> dict:
    from regions.db import region_connection

    with region_connection(region) as conn:
        (name,) = conn.execute("SELECT current_database()").fetchone()
    return {"ok": True, "database": name}


def regions_readiness() -> dict:
    """``region:r1`` .. ``region:r3`` checks; none when the regions are not configured
    (REGIONS["readiness"]: True, False, or "auto": when regions_configured())."""
    mode = option("readiness")
    if mode is False or (mode == "auto" and not regions_configured()):
        return {}
    return {f"region:{region}": (lambda region=region: _check(region)) for region in REGION_NAMES}
