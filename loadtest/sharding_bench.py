"""With and without adaptive spreading, in one run (a ``make bench`` extra): increments per
second on the celebrity key, its p99, and per-shard imbalance under the Zipf workload of
``loadtest/sharding.py``, through the web tier; then the same comparison below it
(``python -m loadtest.sharding_compare``: the service layer, and pgbench with the naive
single-row statement against the slotted ones). This module never imports Locust (see
loadtest.bench).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from loadtest.extras import Extra, ExtraResult
from loadtest.locust_runs import run_locust
from loadtest.service import ROOT, Service
from loadtest.zipf import BENCH_CELEBRITY


def _spreading(on: bool) -> None:
    from core.faults import faults_set
    from sharding.conf import SPREADING_OFF_SWITCH
    from sharding.folding import key_fold
    from sharding.spreading import hot_states

    faults_set(values={SPREADING_OFF_SWITCH: not on}, actor="benchmark")
    if not on:
        for key in hot_states():
            key_fold(key=key, under_since=None)


def _shard_totals() -> dict[str, int]:
    from sharding.hotkeys import shard_rates

    return shard_rates()[1]


def _web_phase(service: Service, users: int, seconds: int, work_dir: Path) -> dict:
    from sharding.selectors import imbalance_of

    before = _shard_totals()
    run = run_locust(
        service,
        "ShardingZipfUser",
        users,
        seconds,
        request="celebrity increment",
        work_dir=work_dir,
    )
    after = _shard_totals()
    delta = {alias: float(after.get(alias, 0) - before.get(alias, 0)) for alias in after}
    return {
        "celebrity_per_s": run.rps,
        "celebrity_p99_ms": run.p99_ms,
        "failures": run.failures,
        "imbalance": round(imbalance_of(delta), 3),
        "per_shard_operations": delta,
        "valid": run.valid,
    }


def sharding_run(*, service: Service, scale: float, work_dir: Path) -> ExtraResult:
    """Naive vs spreading through the web tier, then the service layer and pgbench."""
    from sharding.spreading import hot_states

    seconds = max(5, int(30 * scale))
    users = 32
    try:
        _spreading(False)
        naive = _web_phase(service, users, seconds, work_dir)
        _spreading(True)
        _web_phase(service, users, max(5, int(8 * scale)), work_dir)  # detection warm-up
        celebrity_hot = BENCH_CELEBRITY in hot_states()
        spread = _web_phase(service, users, seconds, work_dir)
    finally:
        _spreading(True)
    below = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest.sharding_compare",
            "--json",
            "--pgbench",
            "--seconds",
            str(max(5, int(15 * scale))),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    layers = json.loads(below.stdout.strip().splitlines()[-1])
    return ExtraResult(
        figures={
            "celebrity_per_s_naive": naive["celebrity_per_s"],
            "celebrity_per_s_spread": spread["celebrity_per_s"],
            "celebrity_p99_ms_naive": naive["celebrity_p99_ms"],
            "celebrity_p99_ms_spread": spread["celebrity_p99_ms"],
            "imbalance_naive": naive["imbalance"],
            "imbalance_spread": spread["imbalance"],
            "celebrity_hot_after_warmup": celebrity_hot,
        },
        details={
            "web": {"naive": naive, "spread": spread},
            "service_layer": {key: layers[key] for key in ("naive", "spread")},
            "pgbench": layers["pgbench"],
        },
    )


SHARDING = Extra(
    "sharding",
    sharding_run,
    "celebrity increments and per-shard imbalance with spreading against naive",
)
