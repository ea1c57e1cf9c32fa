"""Where benchmark runs are stored, and the reads of them: the one module that knows the layout.

    <results dir>/<stamp>/   results.json, summary.md, *.png (written by ``loadtest.bench``)
    <results dir>/<stamp>/work/   Locust CSVs, logs, pgbench scripts, the routing comparison
    <results dir>/latest -> the newest run

Standard library only: the State Lab imports this module (in the image too) to read the newest
routing-strategy comparison."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent.parent / "bench" / "results"
WORK = "work"
LATEST = "latest"
ROUTING_COMPARISON_FILE = "consistency_compare.json"


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def work(self) -> Path:
        return self.path / WORK


def run_folder_create(results_dir: Path, stamp: str) -> RunFolder:
    run = RunFolder(results_dir / stamp)
    run.work.mkdir(parents=True)
    return run


def latest_point(results_dir: Path, run: RunFolder) -> None:
    """``<results dir>/latest`` points at ``run``."""
    latest = results_dir / LATEST
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run.path.name)


@dataclass(frozen=True)
class StrategyComparison:
    run: str
    finished_at: datetime
    strategies: dict[str, dict[str, float]]


def routing_comparison_store(work_dir: Path, strategies: dict[str, dict]) -> Path:
    """Keep a run's routing-strategy figures (strategy name -> metric -> value) in its work
    folder, for ``routing_comparison_latest``."""
    path = work_dir / ROUTING_COMPARISON_FILE
    path.write_text(json.dumps(strategies, indent=2))
    return path


def routing_comparison_latest(results_dir: Path = RESULTS_DIR) -> StrategyComparison | None:
    """The newest stored routing-strategy comparison (by the time it was stored), or None when
    no run stored a readable one; non-numeric figures are left out."""
    candidates = sorted(
        (
            path
            for path in results_dir.glob(f"*/{WORK}/{ROUTING_COMPARISON_FILE}")
            if not path.parent.parent.is_symlink()  # ``latest`` is a run seen twice
        ),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
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
