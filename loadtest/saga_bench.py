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
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

from loadtest.cli import django_setup
from loadtest.extras import Extra, ExtraResult
from loadtest.service import Service
from loadtest.stats import percentile

BENCH_USER = "saga-bench"
# Transfers go between this many accounts, over HTTP and in the pgbench script alike.
BENCH_ACCOUNTS = 16


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


def saga_load(
    *, base_url: str, token: str, accounts: list[int], clients: int, duration_s: float
) -> dict:
    """Drive transfers over HTTP for ``duration_s``; wait for them; measure."""
    from django.db.models import Max, Min

    from ledger.models import Transfer

    created: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration_s

    def client(number: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        step = number
        while time.monotonic() < stop_at:
            source = accounts[step % len(accounts)]
            destination = accounts[(step * 7 + 1 + number) % len(accounts)]
            step += clients
            if source == destination:
                continue
            response = session.post(
                f"{base_url}/api/transfers/",
                json={
                    "source": source,
                    "destination": destination,
                    "amount": "0.01",
                    "currency": "EUR",
                },
                headers={"Idempotency-Key": str(uuid.uuid4())},
                timeout=30,
            )
            with lock:
                if response.status_code == 202:
                    created.append(response.json()["id"])
                else:
                    errors.append(f"{response.status_code} {response.text[:200]}")

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    requests_s = time.monotonic() - started

    transfers = Transfer.objects.using("ledger").filter(id__in=created)
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline
        and transfers.exclude(state__in=list(Transfer.TERMINAL)).exists()
    ):
        time.sleep(0.25)
    completed = transfers.filter(state=Transfer.State.COMPLETED)
    window = completed.aggregate(first=Min("created_at"), last=Max("completed_at"))
    latencies = sorted(
        (done - begun).total_seconds() * 1000
        for begun, done in completed.values_list("created_at", "completed_at")
    )
    span = (window["last"] - window["first"]).total_seconds() if latencies else 0.0
    return {
        "requested": len(created),
        "request_errors": len(errors),
        "request_errors_sample": errors[:3],
        "requests_per_s": round(len(created) / requests_s, 1),
        "completed": len(latencies),
        "not_terminal": transfers.exclude(state__in=list(Transfer.TERMINAL)).count(),
        "completed_per_s": round(len(latencies) / span, 1) if span else 0.0,
        "latency_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "latency_p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "clients": clients,
        "accounts": len(accounts),
    }


def transfers_run(*, service: Service, scale: float, work_dir: Path) -> ExtraResult:
    """The saga's completed transfers per second against ``service``."""
    token, accounts = bench_accounts_ensure()
    figures = saga_load(
        base_url=service.base_url,
        token=token,
        accounts=accounts,
        clients=8,
        duration_s=max(5.0, 30.0 * scale),
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
    parser.add_argument("--port", type=int, default=8765, help="port of the started service")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--skip-pgbench", action="store_true")
    options = parser.parse_args(argv)

    django_setup()
    from loadtest.pgbench import baseline_run
    from loadtest.saga_sql import saga_sql_baseline
    from loadtest.service import service_running

    work_dir = Path(tempfile.mkdtemp(prefix="saga-bench-"))
    token, accounts = bench_accounts_ensure(count=BENCH_ACCOUNTS)

    def load(base_url: str) -> dict:
        return saga_load(
            base_url=base_url.rstrip("/"),
            token=token,
            accounts=accounts,
            clients=options.clients,
            duration_s=options.duration,
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
            saga = load(service.base_url)
    result = {"saga": saga, "logs": str(work_dir)}
    if not options.skip_pgbench:
        pgbench = baseline_run(
            saga_sql_baseline(accounts=BENCH_ACCOUNTS, clients=options.clients),
            seconds=int(options.duration),
            work_dir=work_dir,
        )
        result["pgbench_saga_sql"] = pgbench
        if pgbench.get("tps"):
            result["ratio_completed_per_s_to_pgbench_tps"] = round(
                saga["completed_per_s"] / pgbench["tps"], 3
            )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
