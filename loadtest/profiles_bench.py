"""The routing-strategy comparison (issue 4, point 6) as a ``make bench`` extra: under a real
replica apply delay, write-then-read pairs and other-user reads for no routing, timer pinning,
cookie pinning and LSN routing (``python -m loadtest.consistency_compare``, run as a
subprocess). The figures are stored for the State Lab (``loadtest.results``). No Locust import
here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from loadtest.extras import Extra, ExtraResult, Plot
from loadtest.results import routing_comparison_store
from loadtest.service import ROOT, Service

DELAY_MS = 500


def routing_run(*, service: Service, scale: float, work_dir: Path) -> ExtraResult:
    pairs = max(50, int(200 * scale))
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest.consistency_compare",
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
    routing_comparison_store(work_dir, strategies)
    lsn = next(figures for name, figures in strategies.items() if name.startswith("LSN"))
    names = list(strategies)
    return ExtraResult(
        figures={
            "delay_ms": DELAY_MS,
            "pairs": pairs,
            "lsn_stale_reads": lsn["stale_read_backs_pct"],
            "lsn_other_reads_on_primary_pct": lsn["other_reads_on_primary_pct"],
        },
        table=[{"strategy": name, **figures} for name, figures in strategies.items()],
        plot=Plot(
            kind="bars",
            title=f"Routing strategies under a {DELAY_MS} ms replica delay (%)",
            x=names,
            series={
                "stale read-backs": [strategies[n]["stale_read_backs_pct"] for n in names],
                "reads on the primary": [strategies[n]["primary_share_pct"] for n in names],
            },
        ),
    )


ROUTING = Extra(
    "routing",
    routing_run,
    "stale reads and primary share of four routing strategies under a replica delay",
)
