"""``manage.py saga_bench``: completed transfers per second and request-to-completed latency
of the saga, and pgbench running the same SQL, in one run, with their ratio."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from ledger.bench import BENCH_ACCOUNTS, bench_accounts_ensure, saga_load, saga_sql_baseline


@contextmanager
def _service(port: int, web_workers: int, concurrency: int, log_dir: Path) -> Iterator[str]:
    """gunicorn, a Celery worker and beat on the development databases (DEBUG off)."""
    metrics_dir = Path(tempfile.mkdtemp(prefix="saga-bench-metrics-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "false",
        "STATELAB_BIND": f"127.0.0.1:{port}",
        "STATELAB_WEB_WORKERS": str(web_workers),
        "STATELAB_WEB_THREADS": "4",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "STATELAB_LOG_LEVEL": "WARNING",
    }
    python = sys.executable
    commands = {
        "web": [
            python, "-m", "gunicorn", "config.wsgi:application",
            "-c", "config/gunicorn.conf.py",
        ],
        "worker": [
            python, "-m", "celery", "-A", "config", "worker", "--concurrency", str(concurrency),
            "--loglevel", "WARNING", "--hostname", f"saga-bench-{port}@%h",
            "--without-gossip", "--without-mingle",
        ],
        "beat": [
            python, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING",
            "--schedule", str(metrics_dir / "beat-schedule"),
        ],
    }  # fmt: skip
    processes = []
    try:
        for name, command in commands.items():
            log = (log_dir / f"{name}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    command,
                    cwd=settings.BASE_DIR,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/healthz", timeout=1):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the web server did not start; see {log_dir}") from None
                time.sleep(0.3)
        yield base_url
    finally:
        for process in processes:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


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
            with _service(
                options["port"], options["web_workers"], options["worker_concurrency"], work_dir
            ) as base_url:
                saga = load(base_url)
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
