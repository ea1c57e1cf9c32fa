"""Measuring the saga (a benchmark, not a test): ``python -m loadtest.saga_bench``.

- ``saga_load``: clients POST transfers over HTTP for a while between a set of funded accounts,
  then the run waits until every transfer is terminal and reports completed transfers per
  second and request-to-completed latency (``completed_at - created_at``, p50/p99).
- pgbench running ``loadtest.saga_sql.saga_sql_script`` (the same SQL, on scratch copies of the
  tables): the database's ceiling for this work.

Run here, both go in one run and the ratio is printed; ``TRANSFERS`` is the same measurement
as an extra of ``make bench`` (the pgbench half is its ``saga_sql`` baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from loadtest.cli import django_setup
from loadtest.extras import Extra, ExtraResult
from loadtest.service import Service
from loadtest.stats import percentile

BENCH_USER = "saga-bench"
# Transfers go between this many accounts, over HTTP and in the pgbench script alike.
BENCH_ACCOUNTS = 16
# Threads that send the open loop's requests: enough that a slow answer never delays the next.
OPEN_LOOP_SENDERS = 32
# Transfers per pgbench transaction of the saga's SQL: about the batches the consumers take at
# capacity with 8 clients (up to 8 requests in flight; statelab_consumer_batch_messages).
PGBENCH_BATCH = 8
# Seconds the service's idle CPU is measured for, before the load.
IDLE_S = 3.0


def bench_accounts_ensure(*, count: int = BENCH_ACCOUNTS) -> tuple[str, list[int]]:
    """A bench user with ``count`` funded EUR accounts and an API token (idempotent)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from accounts.models import Account
    from accounts.services import account_create, account_deposit

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USER)
    token, _ = Token.objects.get_or_create(user=user)
    existing = list(
        Account.objects.using("accounts")
        .filter(owner_id=user.pk, currency="EUR")
        .values_list("id", flat=True)
    )
    for _ in range(count - len(existing)):
        account = account_create(owner_id=user.pk, currency="EUR")
        account_deposit(account_id=account.id, amount="1000000.00")
        existing.append(account.id)
    return token.key, sorted(existing)[:count]


def _transfer_post(session: requests.Session, base_url: str, source: int, destination: int):
    return session.post(
        f"{base_url}/api/transfers/",
        json={"source": source, "destination": destination, "amount": "0.01", "currency": "EUR"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
        timeout=30,
    )


def _pair(accounts: list[int], step: int, salt: int) -> tuple[int, int] | None:
    source = accounts[step % len(accounts)]
    destination = accounts[(step * 7 + 1 + salt) % len(accounts)]
    return None if source == destination else (source, destination)


@dataclass
class _Load:
    """What one phase sent: accepted transfer ids with the wall-clock time each request was
    meant to start (open loop) or started (closed loop), and the refused requests."""

    sent_at: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, response: requests.Response, started: float) -> None:
        with self.lock:
            if response.status_code == 202:
                self.sent_at[response.json()["id"]] = started
            else:
                self.errors.append(f"{response.status_code} {response.text[:200]}")


def closed_loop(
    *, base_url: str, token: str, accounts: list[int], clients: int, duration_s: float
) -> _Load:
    """``clients`` threads, each sending its next transfer as soon as the last was accepted:
    they accept transfers faster than the saga completes them, so the saga runs flat out."""
    load = _Load()
    stop_at = time.monotonic() + duration_s

    def client(number: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        step = number
        while time.monotonic() < stop_at:
            pair = _pair(accounts, step, number)
            step += clients
            if pair is not None:
                started = time.time()
                load.record(_transfer_post(session, base_url, *pair), started)

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.monotonic() - began
    return load


def open_loop(
    *, base_url: str, token: str, accounts: list[int], rate_per_s: float, duration_s: float
) -> _Load:
    """Transfers sent at a fixed rate whatever the service's answers (no coordinated
    omission): request ``n`` is due at ``n / rate``; its latency counts from then, so a request
    that waited for a free sender still counts its wait."""
    load = _Load()
    total = max(1, int(rate_per_s * duration_s))
    local = threading.local()
    began_wall, began = time.time(), time.monotonic()

    def send(number: int) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["Authorization"] = f"Token {token}"
        pair = _pair(accounts, number, 0) or _pair(accounts, number + 1, 0)
        load.record(_transfer_post(session, base_url, *pair), began_wall + number / rate_per_s)

    with ThreadPoolExecutor(max_workers=OPEN_LOOP_SENDERS) as senders:
        for number in range(total):
            delay = began + number / rate_per_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            senders.submit(send, number)
    load.seconds = time.monotonic() - began
    return load


def _settled(ids: list[str], *, timeout_s: float = 180) -> None:
    from ledger.models import Transfer

    pending = Transfer.objects.using("ledger").filter(id__in=ids)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and pending.exclude(state__in=Transfer.TERMINAL).exists():
        time.sleep(0.1)


def _outcome(load: _Load, *, from_request: bool) -> dict:
    """Completed transfers per second (first request to last completion) and the latency from
    request to completion (``from_request``: from the intended send time; else from the
    transfer's ``created_at``, as the closed loop measures it)."""
    from ledger.models import Transfer

    ids = list(load.sent_at)
    _settled(ids)
    transfers = Transfer.objects.using("ledger").filter(id__in=ids)
    rows = list(
        transfers.filter(state=Transfer.State.COMPLETED).values_list(
            "id", "created_at", "completed_at"
        )
    )
    latencies = sorted(
        1000 * (done.timestamp() - (load.sent_at[str(tid)] if from_request else begun.timestamp()))
        for tid, begun, done in rows
    )
    first = min((load.sent_at[str(tid)] for tid, _, _ in rows), default=0.0)
    last = max((done.timestamp() for _, _, done in rows), default=0.0)
    span = last - first
    return {
        "requested": len(ids),
        "request_errors": len(load.errors),
        "requests_per_s": round(len(ids) / load.seconds, 1) if load.seconds else 0.0,
        "completed": len(rows),
        "not_terminal": transfers.exclude(state__in=Transfer.TERMINAL).count(),
        "completed_per_s": round(len(rows) / span, 1) if span > 0 else 0.0,
        "latency_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "latency_p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
    }


def saga_load(
    *,
    base_url: str,
    token: str,
    accounts: list[int],
    clients: int,
    duration_s: float,
    cpu_seconds: Callable[..., float] | None = None,
) -> dict:
    """Three phases, one after the other: capacity (a closed loop of ``clients``: completed
    transfers per second, and server CPU per completed transfer when ``cpu_seconds`` reads the
    service's CPU), then open loops at half that capacity and at it (request-to-completed
    latency, from each request's due time).

    The CPU per transfer counts every process of the service, idle loops included (beat's
    periodic jobs, the web and worker processes' own loops); ``..._less_idle`` subtracts the
    idle rate measured for ``IDLE_S`` before the load, an estimate only: on a shared machine
    that rate itself varies from run to run (87 to 227 ms/s in four runs of 2026-11-30)."""
    idle_cpu_per_s = 0.0
    if cpu_seconds:
        idle_before = cpu_seconds()
        time.sleep(IDLE_S)
        idle_cpu_per_s = (cpu_seconds() - idle_before) / IDLE_S
    cpu_before, began = (cpu_seconds() if cpu_seconds else 0.0), time.monotonic()
    web_before = cpu_seconds(("web",)) if cpu_seconds else 0.0
    capacity_load = closed_loop(
        base_url=base_url, token=token, accounts=accounts, clients=clients, duration_s=duration_s
    )
    capacity = _outcome(capacity_load, from_request=False)
    cpu_ms = cpu_ms_raw = web_cpu_ms = None
    if cpu_seconds and capacity["completed"]:
        used = cpu_seconds() - cpu_before
        busy = used - idle_cpu_per_s * (time.monotonic() - began)
        cpu_ms_raw = round(1000 * used / capacity["completed"], 2)
        cpu_ms = round(1000 * busy / capacity["completed"], 2)
        web_cpu_ms = round(1000 * (cpu_seconds(("web",)) - web_before) / capacity["completed"], 2)
    figures = {
        **capacity,
        "server_cpu_ms_per_transfer": cpu_ms_raw,
        "server_cpu_ms_per_transfer_less_idle": cpu_ms,
        "web_cpu_ms_per_transfer": web_cpu_ms,
        "server_idle_cpu_ms_per_s": round(1000 * idle_cpu_per_s, 1),
        "clients": clients,
        "accounts": len(accounts),
    }
    samples = {"capacity": capacity_load.errors[:3]}
    rate = capacity["completed_per_s"]
    for label, share in (("half", 0.5), ("full", 1.0)):
        if not rate:
            break
        load = open_loop(
            base_url=base_url,
            token=token,
            accounts=accounts,
            rate_per_s=rate * share,
            duration_s=duration_s,
        )
        outcome = _outcome(load, from_request=True)
        samples[label] = load.errors[:3]
        figures.update(
            {
                f"{label}_rate_per_s": round(rate * share, 1),
                f"{label}_completed_per_s": outcome["completed_per_s"],
                f"{label}_latency_p50_ms": outcome["latency_p50_ms"],
                f"{label}_latency_p99_ms": outcome["latency_p99_ms"],
                f"{label}_request_errors": outcome["request_errors"],
                f"{label}_not_terminal": outcome["not_terminal"],
            }
        )
    figures["request_errors_sample"] = samples
    return figures


def transfers_run(*, service: Service, scale: float, work_dir: Path) -> ExtraResult:
    """The saga's capacity (completed transfers per second), its server CPU per transfer and
    its request-to-completed latency at half of that capacity and at it, against ``service``."""
    token, accounts = bench_accounts_ensure()
    figures = saga_load(
        base_url=service.base_url,
        token=token,
        accounts=accounts,
        clients=8,
        duration_s=max(6.0, 30.0 * scale),
        cpu_seconds=service.cpu_seconds,
    )
    errors_sample = figures.pop("request_errors_sample")
    return ExtraResult(figures=figures, details={"request_errors_sample": errors_sample})


TRANSFERS = Extra(
    "transfers",
    transfers_run,
    "completed transfers per second and request-to-completed latency of the saga",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.saga_bench",
        description="Completed transfers per second and request-to-completed latency of the "
        "saga, and pgbench running the same SQL, in one run, with their ratio.",
    )
    parser.add_argument("--url", help="a running service; default: start one here")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("STATELAB_BENCH_PORT", "8765")),
        help="port of the started service",
    )
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--skip-pgbench", action="store_true")
    parser.add_argument(
        "--pgbench-batch",
        type=int,
        default=PGBENCH_BATCH,
        help="transfers per pgbench transaction: the saga steps applied for that many at once",
    )
    options = parser.parse_args(argv)

    django_setup()
    from loadtest.pgbench import baseline_run
    from loadtest.saga_sql import saga_sql_baseline
    from loadtest.service import service_running

    work_dir = Path(tempfile.mkdtemp(prefix="saga-bench-"))
    token, accounts = bench_accounts_ensure(count=BENCH_ACCOUNTS)

    def load(base_url: str, cpu_seconds: Callable[..., float] | None = None) -> dict:
        return saga_load(
            base_url=base_url.rstrip("/"),
            token=token,
            accounts=accounts,
            clients=options.clients,
            duration_s=options.duration,
            cpu_seconds=cpu_seconds,
        )

    if options.url:
        saga = load(options.url)
    else:
        with service_running(
            options.port,
            work_dir,
            web_workers=options.web_workers,
            concurrency=options.worker_concurrency,
        ) as service:
            saga = load(service.base_url, service.cpu_seconds)
    result = {"saga": saga, "logs": str(work_dir)}
    if not options.skip_pgbench:
        pgbench = baseline_run(
            saga_sql_baseline(
                accounts=BENCH_ACCOUNTS, clients=options.clients, batch=options.pgbench_batch
            ),
            seconds=int(options.duration),
            work_dir=work_dir,
        )
        result["pgbench_saga_sql"] = pgbench
        if pgbench.get("transfers_per_s"):
            result["ratio_completed_per_s_to_pgbench"] = round(
                saga["completed_per_s"] / pgbench["transfers_per_s"], 3
            )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
