"""With vs without adaptive spreading, in one run, below the web tier.

Service layer: worker processes (``--processes`` x ``--threads``) run the Zipf workload with a
celebrity key through ``counter_increment`` (the code the API calls), first with spreading
off, then on (after a warm-up in which the key is detected); reported per phase: celebrity
increments/s, their p99, all increments/s, per-shard imbalance (max/mean of operations).

Database layer (``--pgbench``): pgbench runs the naive statement (every client updates the
one row of slot 0) against the slotted one (the same clients split over 4 slots, one per
shard database), for the same duration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections

from sharding.maintenance import maintenance_running
from sharding.selectors import imbalance_of
from sharding.workload import ZipfKeys, workload_run

ROOT = Path(__file__).resolve().parents[3]


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        parser.add_argument("--processes", type=int, default=2)
        parser.add_argument("--threads", type=int, default=8)
        parser.add_argument("--seconds", type=float, default=15.0)
        parser.add_argument("--warmup", type=float, default=5.0)
        parser.add_argument("--keys", type=int, default=10_000)
        parser.add_argument("--share", type=float, default=0.3)
        parser.add_argument("--pgbench", action="store_true")
        parser.add_argument("--pgbench-clients", type=int, default=16)
        parser.add_argument("--json", action="store_true", help="print one JSON document")
        parser.add_argument("--worker", action="store_true", help=SUPPRESS_HELP)
        parser.add_argument("--celebrity", default="", help=SUPPRESS_HELP)
        parser.add_argument("--record-after", type=float, default=0.0, help=SUPPRESS_HELP)
        parser.add_argument("--seed", type=int, default=0, help=SUPPRESS_HELP)

    def handle(self, *args, **options) -> None:
        if options["worker"]:
            self._worker(options)
            return
        figures: dict = {}
        if options["seconds"] > 0:
            celebrity = f"celebrity-{uuid.uuid4().hex[:6]}"
            figures["naive"] = self._phase(options, celebrity, spreading=False)
            figures["spread"] = self._phase(options, celebrity, spreading=True)
        if options["pgbench"]:
            figures["pgbench"] = pgbench_compare(
                clients=options["pgbench_clients"], seconds=max(5, int(options["seconds"]))
            )
        if options["json"]:
            self.stdout.write(json.dumps(figures))
        else:
            self.stdout.write(report_table(figures))

    def _phase(self, options: dict, celebrity: str, *, spreading: bool) -> dict:
        warmup = options["warmup"] if spreading else 0.0
        prefix = f"sharding-compare-{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "SHARDING_SPREADING": "true" if spreading else "false",
            "SHARDING_REDIS_PREFIX": prefix,
        }
        command = [
            sys.executable,
            str(ROOT / "manage.py"),
            "sharding_compare",
            "--worker",
            "--threads",
            str(options["threads"]),
            "--seconds",
            str(options["seconds"] + warmup),
            "--record-after",
            str(warmup),
            "--keys",
            str(options["keys"]),
            "--share",
            str(options["share"]),
            "--celebrity",
            celebrity,
        ]
        workers = [
            subprocess.Popen(
                [*command, "--seed", str(seed)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for seed in range(options["processes"])
        ]
        outputs = [
            json.loads(worker.communicate()[0].strip().splitlines()[-1]) for worker in workers
        ]
        per_shard: Counter = Counter()
        latencies: list[float] = []
        for output in outputs:
            per_shard.update(output["per_shard"])
            latencies += output["celebrity_latencies"]
        seconds = max(output["seconds"] for output in outputs)
        latencies.sort()
        return {
            "spreading": spreading,
            "seconds": round(seconds, 2),
            "operations_per_s": round(sum(o["operations"] for o in outputs) / seconds, 1),
            "celebrity_per_s": round(len(latencies) / seconds, 1),
            "celebrity_p50_ms": _percentile(latencies, 0.50),
            "celebrity_p99_ms": _percentile(latencies, 0.99),
            "imbalance": round(imbalance_of({k: float(v) for k, v in per_shard.items()}), 3),
            "per_shard": dict(sorted(per_shard.items())),
            "errors": sum(o["errors"] for o in outputs),
        }

    def _worker(self, options: dict) -> None:
        keys = ZipfKeys(
            keys=options["keys"],
            exponent=1.0,
            celebrity=options["celebrity"],
            celebrity_share=options["share"],
            prefix="user:",
        )
        with maintenance_running():  # no beat here: promotion and folds run beside the load
            result = workload_run(
                keys=keys,
                threads=options["threads"],
                seconds=options["seconds"],
                seed=options["seed"],
                record_after=options["record_after"],
            )
        self.stdout.write(
            json.dumps(
                {
                    "seconds": result.seconds,
                    "operations": result.operations,
                    "errors": result.errors,
                    "per_shard": dict(result.per_shard),
                    "celebrity_latencies": result.celebrity_latencies,
                }
            )
        )


SUPPRESS_HELP = "==SUPPRESS=="


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000, 2)


PGBENCH_KEY = "pgbench:celebrity"


def _pgbench(alias: str, clients: int, seconds: int, script: str, work: Path) -> dict:
    from devstack.stack import postgres_bin_dir

    database = settings.DATABASES[alias]
    path = work / f"{alias}-{uuid.uuid4().hex[:6]}.sql"
    path.write_text(script)
    command = [
        str(postgres_bin_dir() / "pgbench"),
        "-n",
        "-h",
        database["HOST"],
        "-p",
        str(database["PORT"]),
        "-U",
        database["USER"],
        "-c",
        str(clients),
        "-j",
        str(min(clients, 2)),
        "-T",
        str(seconds),
        "-f",
        str(path),
        database["NAME"],
    ]
    return {
        "process": subprocess.Popen(
            command,
            env={**os.environ, "PGPASSWORD": database["PASSWORD"]},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    }


def _pgbench_result(run: dict) -> dict:
    out, err = run["process"].communicate()
    if run["process"].returncode:
        raise RuntimeError(f"pgbench failed: {err.strip()[-400:]}")
    tps = next(line for line in out.splitlines() if line.startswith("tps"))
    latency = next(line for line in out.splitlines() if line.startswith("latency average"))
    return {
        "tps": float(tps.split("=")[1].split()[0]),
        "latency_avg_ms": float(latency.split("=")[1].split()[0]),
    }


def pgbench_compare(*, clients: int, seconds: int) -> dict:
    """The naive single-row UPDATE against the slotted UPDATEs (one slot per shard database)."""
    aliases = list(settings.SHARD_ALIASES)[:4]
    for slot, alias in enumerate(aliases):
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "INSERT INTO sharding_counterslot (key, slot, bucket, pos, neg, open) "
                "VALUES (%s, %s, 0, 0, 0, true) ON CONFLICT (key, slot) DO NOTHING",
                [PGBENCH_KEY, slot],
            )
            if slot == 0:
                for extra in range(1, 4):
                    cursor.execute(
                        "INSERT INTO sharding_counterslot (key, slot, bucket, pos, neg, open) "
                        "VALUES (%s, %s, 0, 0, 0, true) ON CONFLICT (key, slot) DO NOTHING",
                        [f"{PGBENCH_KEY}:same-db", extra],
                    )
                cursor.execute(
                    "INSERT INTO sharding_counterslot (key, slot, bucket, pos, neg, open) "
                    "VALUES (%s, 0, 0, 0, 0, true) ON CONFLICT (key, slot) DO NOTHING",
                    [f"{PGBENCH_KEY}:same-db"],
                )
    update = (
        "UPDATE sharding_counterslot SET pos = pos + 1 "
        "WHERE key = '{key}' AND slot = {slot} AND open;\n"
    )
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        naive = _pgbench_result(
            _pgbench(aliases[0], clients, seconds, update.format(key=PGBENCH_KEY, slot=0), work)
        )
        per_shard = clients // len(aliases)
        runs = [
            _pgbench(alias, per_shard, seconds, update.format(key=PGBENCH_KEY, slot=slot), work)
            for slot, alias in enumerate(aliases)
        ]
        slotted_runs = [_pgbench_result(run) for run in runs]
        same_db = _pgbench_result(
            _pgbench(
                aliases[0],
                clients,
                seconds,
                "\\set s random(0, 3)\n" + update.format(key=f"{PGBENCH_KEY}:same-db", slot=":s"),
                work,
            )
        )
    slotted_tps = sum(run["tps"] for run in slotted_runs)
    return {
        "clients": clients,
        "seconds": seconds,
        "naive_tps": round(naive["tps"], 1),
        "naive_latency_ms": naive["latency_avg_ms"],
        "slotted_tps": round(slotted_tps, 1),
        "slotted_latency_ms": round(
            sum(run["latency_avg_ms"] for run in slotted_runs) / len(slotted_runs), 3
        ),
        "slotted_per_shard_tps": [round(run["tps"], 1) for run in slotted_runs],
        "slotted_imbalance": round(
            imbalance_of(
                {alias: run["tps"] for alias, run in zip(aliases, slotted_runs, strict=True)}
            ),
            3,
        ),
        "same_db_4_rows_tps": round(same_db["tps"], 1),
        "speedup": round(slotted_tps / naive["tps"], 2) if naive["tps"] else None,
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
