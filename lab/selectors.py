"""Reads for the lab page that the public API does not already answer."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from loadtest.results import RESULTS_DIR, StrategyComparison, routing_comparison_latest


def bench_results_dir() -> Path:
    return Path(getattr(settings, "LAB_BENCH_RESULTS_DIR", RESULTS_DIR))


def strategy_comparison_latest(*, results_dir: Path | None = None) -> StrategyComparison | None:
    """The newest routing-strategy comparison that ``make bench`` stored, or None when no run
    stored a readable one."""
    return routing_comparison_latest(results_dir or bench_results_dir())
