"""The profiles' write-through cache, recorded for the spectrum: the same workload as
``loadtest/histories/profiles.py`` with reads the Redis cache may answer (no
``Cache-Control``), under ``session`` (a cached copy only at or above the session's version
floor) and ``eventual`` (any cached copy). Faults: the replica's apply delay (3 s; cache
misses are filled from the routed database) and Redis stopped and started (the cache, and the
broker, lost).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from loadtest.histories.profiles import ReadPath, profile_histories_record

if TYPE_CHECKING:
    from loadtest.service import Service

PATTERN = "cache"
MODES = ("session", "eventual")
FAULTS = ("replica_delay", "redis_restart")


def record(
    *,
    out_dir: Path,
    duration_s: float,
    service: Service | None = None,
    modes: tuple[str, ...] = MODES,
    faults: tuple[str, ...] = FAULTS,
) -> dict[str, Path]:
    """One history per mode (``duration_s`` each); ``service``: a running one to use."""
    return profile_histories_record(
        pattern=PATTERN,
        paths={mode: ReadPath(mode, cache=True) for mode in modes},
        out_dir=out_dir,
        duration_s=duration_s,
        service=service,
        faults=faults,
    )
