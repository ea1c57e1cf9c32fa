"""With vs without adaptive spreading, in one run, below the web tier (the measurement behind
``python -m loadtest.sharding_compare``, also run by the ``sharding`` extra of ``make bench``).

Service layer: worker processes (``processes`` x ``threads``) run the Zipf workload with a
celebrity key through ``counter_increment`` (the code the API calls), first with spreading
off, then on (after a warm-up in which the key is detected); reported per phase: celebrity
increments/s, their p50/p99, all increments/s, per-shard imbalance (max/mean of operations).

Database layer (``pgbench_compare``): pgbench runs the naive statement (every client updates
the one row of slot 0) against the slotted one (the same clients split over 4 slots, one per
shard database), for the same duration. Needs Django set up (``loadtest.cli.django_setup``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from loadtest.pgbench import pgbench_run, pgbench_start, pgbench_wait
from loadtest.service import ROOT
from loadtest.stats import percentile
from loadtest.workload import workload_run
from loadtest.zipf import counter_keys
from sharding.maintenance import maintenance_running
from sharding.models import CounterSlot
from sharding.selectors import imbalance_of

PGBENCH_KEY = "pgbench:celebrity"


@dataclass(frozen=True)
class ServiceLoad:
    processes: int = 2
    threads: int = 8
    seconds: float = 15.0
    warmup: float = 5.0
    keys: int = 10_000
    share: float = 0.3


def phase_run(load: ServiceLoad, celebrity: str, *, spreading: bool) -> dict:
    """One phase: ``load.processes`` worker processes (``python -m loadtest.sharding_compare
    --worker``) with spreading on or off, their figures merged."""
    warmup = load.warmup if spreading else 0.0
    prefix = f"sharding-compare-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "SHARDING_SPREADING": "true" if spreading else "false",
        "SHARDING_REDIS_PREFIX": prefix,
    }
    command = [
        sys.executable,
        "-m",
        "loadtest.sharding_compare",
        "--worker",
        "--threads",
        str(load.threads),
        "--seconds",
        str(load.seconds + warmup),
        "--record-after",
        str(warmup),
        "--keys",
        str(load.keys),
        "--share",
        str(load.share),
        "--celebrity",
        celebrity,
    ]
    workers = [
        subprocess.Popen(
            [*command, "--seed", str(seed)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for seed in range(load.processes)
    ]
    outputs = [json.loads(worker.communicate()[0].strip().splitlines()[-1]) for worker in workers]
    per_shard: Counter = Counter()
    latencies: list[float] = []
    for output in outputs:
        per_shard.update(output["per_shard"])
        latencies += output["celebrity_latencies"]
    seconds = max(output["seconds"] for output in outputs)
    return {
        "spreading": spreading,
        "seconds": round(seconds, 2),
        "operations_per_s": round(sum(o["operations"] for o in outputs) / seconds, 1),
        "celebrity_per_s": round(len(latencies) / seconds, 1),
        "celebrity_p50_ms": _ms(latencies, 0.50),
        "celebrity_p99_ms": _ms(latencies, 0.99),
        "imbalance": round(imbalance_of({k: float(v) for k, v in per_shard.items()}), 3),
        "per_shard": dict(sorted(per_shard.items())),
        "errors": sum(o["errors"] for o in outputs),
    }


def _ms(latencies_s: list[float], fraction: float) -> float:
    return round(percentile(latencies_s, fraction) * 1000, 2) if latencies_s else 0.0


def worker_run(
    *,
    threads: int,
    seconds: float,
    record_after: float,
    keys: int,
    share: float,
    celebrity: str,
    seed: int,
) -> dict:
    """One worker process of a phase: the workload's figures, as JSON-ready data."""
    with maintenance_running():  # no beat here: promotion and folds run beside the load
        result = workload_run(
            keys=counter_keys(celebrity=celebrity, keys=keys, celebrity_share=share),
            threads=threads,
            seconds=seconds,
            seed=seed,
            record_after=record_after,
        )
    return {
        "seconds": result.seconds,
        "operations": result.operations,
        "errors": result.errors,
        "per_shard": dict(result.per_shard),
        "celebrity_latencies": result.celebrity_latencies,
    }


def _slot_ensure(alias: str, key: str, slot: int) -> None:
    CounterSlot.objects.using(alias).bulk_create(
        [CounterSlot(key=key, slot=slot, bucket=0, pos=0, neg=0, open=True)],
        ignore_conflicts=True,
    )


def pgbench_compare(*, clients: int, seconds: int) -> dict:
    """The naive single-row UPDATE against the slotted UPDATEs (one slot per shard database)."""
    aliases = list(settings.SHARD_ALIASES)[:4]
    same_db_key = f"{PGBENCH_KEY}:same-db"
    for slot, alias in enumerate(aliases):
        _slot_ensure(alias, PGBENCH_KEY, slot)
    for slot in range(4):
        _slot_ensure(aliases[0], same_db_key, slot)
    update = (
        f"UPDATE {CounterSlot._meta.db_table} SET pos = pos + 1 "  # noqa: S608 - pgbench script
        "WHERE key = '{key}' AND slot = {slot} AND open;\n"
    )
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        naive = pgbench_run(
            alias=aliases[0],
            script=update.format(key=PGBENCH_KEY, slot=0),
            clients=clients,
            seconds=seconds,
            work_dir=work,
            name=aliases[0],
        )
        per_shard = clients // len(aliases)
        runs = [
            pgbench_start(
                alias=alias,
                script=update.format(key=PGBENCH_KEY, slot=slot),
                clients=per_shard,
                seconds=seconds,
                work_dir=work,
                name=alias,
            )
            for slot, alias in enumerate(aliases)
        ]
        slotted_runs = [pgbench_wait(run) for run in runs]
        same_db = pgbench_run(
            alias=aliases[0],
            script="\\set s random(0, 3)\n" + update.format(key=same_db_key, slot=":s"),
            clients=clients,
            seconds=seconds,
            work_dir=work,
            name=aliases[0],
        )
    slotted_tps = sum(run.tps for run in slotted_runs)
    return {
        "clients": clients,
        "seconds": seconds,
        "naive_tps": round(naive.tps, 1),
        "naive_latency_ms": naive.latency_avg_ms,
        "slotted_tps": round(slotted_tps, 1),
        "slotted_latency_ms": round(
            sum(run.latency_avg_ms or 0.0 for run in slotted_runs) / len(slotted_runs), 3
        ),
        "slotted_per_shard_tps": [round(run.tps, 1) for run in slotted_runs],
        "slotted_imbalance": round(
            imbalance_of(
                {alias: run.tps for alias, run in zip(aliases, slotted_runs, strict=True)}
            ),
            3,
        ),
        "same_db_4_rows_tps": round(same_db.tps, 1),
        "speedup": round(slotted_tps / naive.tps, 2) if naive.tps else None,
    }


def report_table(figures: dict) -> str:
    lines = []
    if "naive" in figures:
        lines += [
            "| phase | celebrity incr/s | celebrity p50 ms | celebrity p99 ms | all incr/s "
            "| imbalance (max/mean) |",
            "|---|---|---|---|---|---|",
        ]
        for name in ("naive", "spread"):
            phase = figures[name]
            lines.append(
                f"| {name} | {phase['celebrity_per_s']} | {phase['celebrity_p50_ms']} | "
                f"{phase['celebrity_p99_ms']} | {phase['operations_per_s']} | "
                f"{phase['imbalance']} |"
            )
    if "pgbench" in figures:
        bench = figures["pgbench"]
        lines += [
            "",
            f"pgbench, {bench['clients']} clients, {bench['seconds']} s:",
            "| statement | TPS | avg latency ms |",
            "|---|---|---|",
            f"| naive: one row (slot 0) | {bench['naive_tps']} | {bench['naive_latency_ms']} |",
            f"| slotted: 4 rows on 4 shard databases | {bench['slotted_tps']} | "
            f"{bench['slotted_latency_ms']} |",
            f"| 4 rows in one database | {bench['same_db_4_rows_tps']} | |",
            f"speed-up slotted/naive: {bench['speedup']}x; per-shard TPS "
            f"{bench['slotted_per_shard_tps']} (imbalance {bench['slotted_imbalance']})",
        ]
    return "\n".join(lines)
