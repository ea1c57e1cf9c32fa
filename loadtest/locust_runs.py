"""Measured Locust runs, driven from the benchmark process: each run is a headless Locust
subprocess (this process never imports Locust: gevent patches ``ssl`` and ``socket`` at
import), its own CPU use is watched, and its figures are read from what the locustfile writes
when the run is over (``STATELAB_BENCH_FIGURES``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from loadtest.service import ROOT, Service

LOCUST_SATURATED_CPU_PERCENT = 90.0


@dataclass(frozen=True)
class Scenario:
    """A Locust user class measured for ``users`` concurrent users; ``request`` names the
    request whose figures are reported (default: all requests of the run)."""

    name: str
    user_class: str
    users: int = 16
    request: str = "Aggregated"
    description: str = ""
    # Consecutive scenarios with the same group run their rounds in turn (A B C, A B C, ...):
    # figures compared as ratios then share the machine's drift instead of one taking a slow
    # minute alone.
    group: str = ""


@dataclass
class RunResult:
    rps: float
    requests: int
    failures: int
    p50_ms: float
    p99_ms: float
    locust_cpu_percent: float
    server_cpu_ms_per_request: float | None
    valid: bool


def run_locust(
    service: Service, user_class: str, users: int, duration_s: int, *, request: str, work_dir: Path
) -> RunResult:
    """One headless Locust run; the load generator's own CPU use is measured, and a run where it
    saturates its core is marked invalid (the figure would measure Locust, not the service)."""
    prefix = work_dir / f"{user_class}-{users}-{time.monotonic_ns()}"
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "loadtest" / "locustfile.py"),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{duration_s}s",
        "--host",
        service.base_url,
        "--csv",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
        "--reset-stats",
        user_class,
    ]
    figures_path = Path(f"{prefix}_final.json")
    server_before = service.cpu_seconds()
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={
            **os.environ,
            "STATELAB_BENCH_TOKENS": json.dumps(service.tokens),
            "STATELAB_BENCH_FIGURES": str(figures_path),
        },
        stdout=subprocess.DEVNULL,
        stderr=(work_dir / "locust.log").open("ab"),
    )
    load = psutil.Process(process.pid)
    cpu = 0.0
    while process.poll() is None:
        try:
            times = load.cpu_times()
            cpu = times.user + times.system
        except psutil.NoSuchProcess:
            break
        time.sleep(0.25)
    elapsed = time.monotonic() - started
    server_cpu = service.cpu_seconds() - server_before
    row = _final_row(figures_path, request)
    requests = int(row["requests"])
    locust_cpu_percent = 100.0 * cpu / elapsed if elapsed else 0.0
    return RunResult(
        rps=float(row["rps"]),
        requests=requests,
        failures=int(row["failures"]),
        p50_ms=float(row["p50_ms"] or 0),
        p99_ms=float(row["p99_ms"] or 0),
        locust_cpu_percent=round(locust_cpu_percent, 1),
        server_cpu_ms_per_request=round(1000 * server_cpu / requests, 3) if requests else None,
        valid=locust_cpu_percent < LOCUST_SATURATED_CPU_PERCENT and requests > 0,
    )


def _final_row(path: Path, request: str) -> dict:
    """The figures of ``request`` at the end of the run (written by the locustfile)."""
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as unreadable:
        raise SystemExit(f"Locust left no readable figures at {path}: {unreadable}") from None
    for row in rows:
        if row["name"] == request:
            return row
    raise SystemExit(
        f"no request named {request!r} in {path} (names: {[row['name'] for row in rows]})"
    )
