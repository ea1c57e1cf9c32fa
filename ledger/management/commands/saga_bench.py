"""``manage.py saga_bench``: completed transfers per second and request-to-completed latency
of the saga, and pgbench running the same SQL, in one run, with their ratio."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand

from ledger.bench import BENCH_ACCOUNTS, bench_accounts_ensure, saga_load, saga_sql_baseline


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", help="a running service; default: start one here")
        parser.add_argument("--port", type=int, default=8765, help="port of the started service")
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--worker-concurrency", type=int, default=4)
        parser.add_argument("--clients", type=int, default=8)
        parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
        parser.add_argument("--skip-pgbench", action="store_true")

    def handle(self, *args, **options) -> None:
        from loadtest.bench import run_pgbench
        from loadtest.service import service_running

        work_dir = Path(tempfile.mkdtemp(prefix="saga-bench-"))
        token, accounts = bench_accounts_ensure(count=BENCH_ACCOUNTS)

        def load(base_url: str) -> dict:
            return saga_load(
                base_url=base_url.rstrip("/"),
                token=token,
                accounts=accounts,
                clients=options["clients"],
                duration_s=options["duration"],
            )

        if options["url"]:
            saga = load(options["url"])
        else:
            with service_running(
                options["port"],
                work_dir,
                web_workers=options["web_workers"],
                concurrency=options["worker_concurrency"],
            ) as service:
                saga = load(service.base_url)
        result = {"saga": saga, "logs": str(work_dir)}
        if not options["skip_pgbench"]:
            pgbench = run_pgbench(
                saga_sql_baseline(clients=options["clients"]), int(options["duration"]), work_dir
            )
            result["pgbench_saga_sql"] = pgbench
            if pgbench.get("tps"):
                result["ratio_completed_per_s_to_pgbench_tps"] = round(
                    saga["completed_per_s"] / pgbench["tps"], 3
                )
        self.stdout.write(json.dumps(result, indent=2))
