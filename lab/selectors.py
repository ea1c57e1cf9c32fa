"""Reads for the lab page that the public API does not already answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

COMPARISON_FILE = "work/consistency_compare.json"


@dataclass(frozen=True)
class StrategyComparison:
    run: str
    finished_at: datetime
    strategies: dict[str, dict[str, float]]


def bench_results_dir() -> Path:
    return Path(getattr(settings, "LAB_BENCH_RESULTS_DIR", settings.BASE_DIR / "bench" / "results"))


def strategy_comparison_latest(*, results_dir: Path | None = None) -> StrategyComparison | None:
    """The newest routing-strategy comparison that ``make bench`` stored (``manage.py
    consistency_compare --json`` per run), or None when no run stored a readable one."""
    folder = results_dir or bench_results_dir()
    candidates = sorted(
        folder.glob(f"*/{COMPARISON_FILE}"), key=lambda path: path.stat().st_mtime, reverse=True
    )
    for path in candidates:
        try:
            document: Any = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(document, dict) or not all(
            isinstance(figures, dict) for figures in document.values()
        ):
            continue
        strategies = {
            str(name): {
                str(metric): float(value)
                for metric, value in figures.items()
                if isinstance(value, (int, float)) and not isinstance(value, bool)
            }
            for name, figures in document.items()
        }
        finished = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        return StrategyComparison(
            run=path.parent.parent.name, finished_at=finished, strategies=strategies
        )
    return None
