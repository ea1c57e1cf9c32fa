"""The routing-strategy comparison (issue 4, point 6) as a ``make bench`` extra: under a real
replica apply delay, write-then-read pairs and other-user reads for no routing, timer pinning,
cookie pinning and LSN routing (``manage.py consistency_compare``). No Locust import here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from loadtest.service import ROOT, Service

DELAY_MS = 500


def strategy_comparison(*, service: Service, scale: float, work_dir: Path) -> tuple[str, dict]:
    pairs = max(50, int(200 * scale))
    completed = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "consistency_compare",
            "--delay-ms",
            str(DELAY_MS),
            "--pairs",
            str(pairs),
            "--json",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    strategies = json.loads(completed.stdout.strip().splitlines()[-1])
    (work_dir / "consistency_compare.json").write_text(json.dumps(strategies, indent=2))
    lsn = next(figures for name, figures in strategies.items() if name.startswith("LSN"))
    names = list(strategies)
    return "routing", {
        "delay_ms": DELAY_MS,
        "pairs": pairs,
        "lsn_stale_reads": lsn["stale_read_backs_pct"],
        "lsn_other_reads_on_primary_pct": lsn["other_reads_on_primary_pct"],
        "table": [{"strategy": name, **figures} for name, figures in strategies.items()],
        "plot": {
            "kind": "bars",
            "title": f"Routing strategies under a {DELAY_MS} ms replica delay (%)",
            "x": names,
            "series": {
                "stale read-backs": [strategies[n]["stale_read_backs_pct"] for n in names],
                "reads on the primary": [strategies[n]["primary_share_pct"] for n in names],
            },
        },
    }
