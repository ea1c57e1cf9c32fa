"""The regions in /readyz: each region's database, when the regions are configured."""

from __future__ import annotations

import time

from regions.conf import REGION_NAMES, option, regions_configured


def _check(region: str) -> dict:
    from core.db import row_one
    from regions.db import region_connection

    started = time.perf_counter()
    try:
        with region_connection(region) as conn:
            (name,) = row_one(conn.execute("SELECT current_database()"))
        result = {"ok": True, "database": name}
    except Exception as error:  # a region down is a result of the check, not an error of it
        result = {"ok": False, "error": str(error).strip().splitlines()[0] or type(error).__name__}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def regions_readiness() -> dict[str, dict]:
    """``region:r1`` .. ``region:r3`` results; none when the regions are not configured
    (REGIONS["readiness"]: True, False, or "auto": when regions_configured())."""
    mode = option("readiness")
    if mode is False or (mode == "auto" and not regions_configured()):
        return {}
    return {f"region:{region}": _check(region) for region in REGION_NAMES}
