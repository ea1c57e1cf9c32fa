"""Sharding scenario: a Zipf-like key population plus one celebrity key taking 30 % of writes.

Interactive:
    .venv/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:8000 \\
        --headless -u 32 -r 32 -t 30s ShardingZipfUser

``sharding_comparison`` is the benchmark extra (add it to ``loadtest/plan.py``'s EXTRAS): one
run with spreading switched off (fault switch ``sharding_spreading_off``), one with it on,
through the web tier (Locust), then the same comparison below the web tier
(``manage.py sharding_compare``: service layer and pgbench). Standalone:
    .venv/bin/python -m loadtest.sharding [--seconds 20]
"""

from __future__ import annotations

import bisect
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from locust import constant, task

from loadtest.common import DEMO_USERS, TokenUser

ROOT = Path(__file__).resolve().parent.parent
LOCUST_USERS = ["ShardingZipfUser"]
CELEBRITY = os.environ.get("STATELAB_BENCH_CELEBRITY", "celebrity")
CELEBRITY_SHARE = 0.3
KEYS = 10_000


def _cumulative(keys: int, exponent: float = 1.0) -> list[float]:
    weights = [1 / rank**exponent for rank in range(1, keys + 1)]
    total, running, cumulative = sum(weights), 0.0, []
    for weight in weights:
        running += weight / total
        cumulative.append(running)
    return cumulative


ZIPF = _cumulative(KEYS)


class ShardingZipfUser(TokenUser):
    """30 % of increments to the celebrity key, the rest Zipf over 10 000 user keys."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.username = random.choice(DEMO_USERS)  # noqa: S311 - load shape, not security
        super().on_start()

    @task
    def increment(self) -> None:
        if random.random() < CELEBRITY_SHARE:  # noqa: S311
            key, name = CELEBRITY, "celebrity increment"
        else:
            rank = min(bisect.bisect_left(ZIPF, random.random()), KEYS - 1) + 1  # noqa: S311
            key, name = f"user:{rank}", "counter increment"
        self.client.post(
            f"/api/sharding/counters/{key}/increment", json={"by": 1}, headers=self.auth, name=name
        )


def _django() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    django.setup()


def _spreading(on: bool) -> None:
    from core.faults import faults_set
    from sharding.conf import SPREADING_OFF_SWITCH
    from sharding.hotkeys import hot_states
    from sharding.spreading import key_fold

    faults_set(values={SPREADING_OFF_SWITCH: not on}, actor="benchmark")
    if not on:
        for key in hot_states():
            key_fold(key=key, under_since=None)


def _shard_totals() -> dict[str, int]:
    from sharding.hotkeys import shard_rates

    return shard_rates()[1]


def _web_phase(service_url: str, users: int, seconds: int, work_dir: Path) -> dict:
    from loadtest.bench import Service, demo_tokens, run_locust
    from sharding.selectors import imbalance_of

    service = Service(base_url=service_url, processes=[], tokens=demo_tokens())
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


def sharding_comparison(*, service_url: str, scale: float, work_dir: Path) -> tuple[str, dict]:
    """Naive vs spreading through the web tier, then the service layer and pgbench."""
    _django()
    seconds = max(5, int(30 * scale))
    users = 32
    try:
        _spreading(False)
        naive = _web_phase(service_url, users, seconds, work_dir)
        _spreading(True)
        _web_phase(service_url, users, max(5, int(8 * scale)), work_dir)  # detection warm-up
        from sharding.hotkeys import hot_states

        celebrity_hot = CELEBRITY in hot_states()
        spread = _web_phase(service_url, users, seconds, work_dir)
    finally:
        _spreading(True)
    below = subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "sharding_compare",
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
    return "sharding", {
        "celebrity_per_s_naive": naive["celebrity_per_s"],
        "celebrity_per_s_spread": spread["celebrity_per_s"],
        "celebrity_p99_ms_naive": naive["celebrity_p99_ms"],
        "celebrity_p99_ms_spread": spread["celebrity_p99_ms"],
        "imbalance_naive": naive["imbalance"],
        "imbalance_spread": spread["imbalance"],
        "celebrity_hot_after_warmup": celebrity_hot,
        "web": {"naive": naive, "spread": spread},
        "service_layer": {key: layers[key] for key in ("naive", "spread")},
        "pgbench": layers["pgbench"],
    }


def _web_only(seconds: int) -> dict:
    """Start gunicorn alone (as the benchmark driver does, without worker and beat: the
    hot-key tick also runs inside requests) and run ``sharding_comparison`` against it."""
    import shutil
    import socket
    import tempfile

    _django()
    from loadtest.bench import _service_env, _wait_healthy

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    work_dir = Path(tempfile.mkdtemp(prefix="statelab-sharding-bench-"))
    env = _service_env(port, work_dir) | {"STATELAB_WEB_WORKERS": "3", "STATELAB_WEB_THREADS": "4"}
    log = (work_dir / "web.log").open("wb")
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "-c",
            "config/gunicorn.conf.py",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", web, work_dir / "web.log")
        _name, figures = sharding_comparison(
            service_url=f"http://127.0.0.1:{port}", scale=seconds / 30, work_dir=work_dir
        )
        return figures
    finally:
        os.killpg(web.pid, 15)
        web.wait(timeout=30)
        log.close()
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="naive vs spreading (service layer + pgbench)")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--web", action="store_true", help="also through gunicorn + Locust")
    arguments = parser.parse_args()
    if arguments.web:
        print(json.dumps(_web_only(arguments.seconds), indent=2))
        sys.exit(0)
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "sharding_compare",
            "--pgbench",
            "--seconds",
            str(arguments.seconds),
        ],
        cwd=ROOT,
        check=True,
    )
