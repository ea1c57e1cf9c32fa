"""pgbench (the binary of the pgserver wheel) against a database of the settings: the
database's own ceiling for a piece of SQL, with no web tier, broker or Python in the way.

``pgbench_start`` launches one run (several may run side by side, one per shard database);
``pgbench_wait`` reads its figures. ``baseline_run`` is a ``PgbenchBaseline`` of the benchmark
plan, reported as a dict for results.json."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PgbenchBaseline:
    """pgbench running ``script`` (pgbench syntax) against database ``alias`` after
    ``setup`` (run in this process, before pgbench starts)."""

    name: str
    alias: str
    script: str
    setup: Callable[[], None] | None = None
    clients: int = 8
    description: str = ""
    # Transfers (or other units of work) one pgbench transaction of ``script`` stands for.
    transfers_per_transaction: int = 1


@dataclass(frozen=True)
class PgbenchFigures:
    tps: float
    latency_avg_ms: float | None


class PgbenchFailed(RuntimeError):
    def __init__(self, output: str) -> None:
        super().__init__(f"pgbench failed: {output}")
        self.output = output


def pgbench_binary() -> Path:
    from devstack.binaries import postgres_bin_dir

    return postgres_bin_dir() / "pgbench"


def pgbench_start(
    *,
    alias: str,
    script: str,
    clients: int,
    work_dir: Path,
    seconds: int | None = None,
    transactions: int | None = None,
    name: str = "pgbench",
) -> subprocess.Popen[str]:
    """Start pgbench with ``clients`` connections on ``alias`` for ``seconds`` (or
    ``transactions`` per client); the script is written to ``work_dir``."""
    from django.conf import settings

    if (seconds is None) == (transactions is None):
        raise ValueError("give seconds or transactions, not both")
    database = settings.DATABASES[alias]
    path = work_dir / f"{name}-{uuid.uuid4().hex[:6]}.sql"
    path.write_text(script)
    length = ["-T", str(seconds)] if seconds is not None else ["-t", str(transactions)]
    command = [
        str(pgbench_binary()),
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
        *length,
        "-f",
        str(path),
        database["NAME"],
    ]
    environment = {**os.environ, "PGPASSWORD": database["PASSWORD"]}
    # A multi-host alias (the HA cluster) names the leader by its session attributes.
    attributes = database.get("OPTIONS", {}).get("target_session_attrs")
    if attributes:
        environment["PGTARGETSESSIONATTRS"] = attributes
    return subprocess.Popen(
        command,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def pgbench_wait(process: subprocess.Popen[str]) -> PgbenchFigures:
    """Wait for a run; its transactions per second and average latency. Raises
    ``PgbenchFailed`` (with the end of pgbench's output) when it failed."""
    out, err = process.communicate()
    if process.returncode:
        raise PgbenchFailed((err or out).strip()[-500:])
    lines = out.splitlines()
    tps = next(line for line in lines if line.startswith("tps"))
    latency = next((line for line in lines if line.startswith("latency average")), "")
    return PgbenchFigures(
        tps=float(tps.split("=")[1].split()[0]),
        latency_avg_ms=float(latency.split("=")[1].split()[0]) if latency else None,
    )


def pgbench_run(
    *,
    alias: str,
    script: str,
    clients: int,
    work_dir: Path,
    seconds: int | None = None,
    transactions: int | None = None,
    name: str = "pgbench",
) -> PgbenchFigures:
    """One run, start to end (``pgbench_start`` then ``pgbench_wait``)."""
    return pgbench_wait(
        pgbench_start(
            alias=alias,
            script=script,
            clients=clients,
            work_dir=work_dir,
            seconds=seconds,
            transactions=transactions,
            name=name,
        )
    )


def baseline_run(baseline: PgbenchBaseline, *, seconds: int, work_dir: Path) -> dict:
    """One baseline of the plan: its figures, or ``{"error": ...}`` when pgbench failed."""
    if baseline.setup:
        baseline.setup()
    try:
        figures = pgbench_run(
            alias=baseline.alias,
            script=baseline.script,
            clients=baseline.clients,
            seconds=seconds,
            work_dir=work_dir,
            name=baseline.name,
        )
    except PgbenchFailed as failed:
        return {"error": failed.output}
    return {
        "tps": round(figures.tps, 1),
        "transfers_per_s": round(figures.tps * baseline.transfers_per_transaction, 1),
        "transfers_per_transaction": baseline.transfers_per_transaction,
        "latency_avg_ms": figures.latency_avg_ms,
        "clients": baseline.clients,
        "description": baseline.description,
    }
