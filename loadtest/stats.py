"""Percentiles of raw samples, as every benchmark of this repository reports them."""

from __future__ import annotations

from collections.abc import Iterable


def percentile(values: Iterable[float], fraction: float) -> float:
    """The sample at ``fraction`` (0 to 1) of the sorted values: index ``floor(n * fraction)``,
    capped at the last one (nearest rank, no interpolation). Raises ValueError when empty."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("a percentile of no values")
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]
