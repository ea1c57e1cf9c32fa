"""The chaos soak (``python -m chaos``) as a row of the spectrum: its mixed workload under
every fault kind (worker kills and pauses, killed connections, Redis and replica restarts,
replay paused, crash points, concurrent bucket moves), profile reads under ``session``, with
the soak's history converted to the checker's format (``chaos/checker_history.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loadtest.histories._common import free_port
from loadtest.service import ROOT

PATTERN = "chaos"
MODE = "session"
SETTLE_S = 120


def record(*, out_dir: Path, duration_s: float) -> dict[str, Path]:
    """One soak of ``duration_s`` seconds of faults (then quiescence, up to ``SETTLE_S``)."""
    runs = out_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "chaos",
        "--duration",
        str(duration_s),
        "--hold",
        "2",
        "--settle",
        str(SETTLE_S),
        "--port",
        str(free_port()),
        "--out",
        str(runs),
    ]
    with (out_dir / "soak.log").open("w") as log:
        # The soak's own verdict (exit code) is its invariants'; the spectrum wants its history.
        subprocess.run(  # noqa: PLW1510
            command, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT
        )
    histories = sorted(runs.glob("*/checker-history.jsonl"))
    if not histories:
        raise RuntimeError(f"the soak wrote no checker history; see {out_dir / 'soak.log'}")
    return {MODE: histories[-1]}
