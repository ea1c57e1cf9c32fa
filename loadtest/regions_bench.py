"""The regions, measured (a benchmark extra; ``python -m loadtest.regions_bench``):

1. Write latency: a local write in each region (the store's service, one transaction) against
   a write to the main cluster's primary (one row, one transaction), and against the same
   region write made from another region to a single leader through a link with a WAN-like
   delay (the proxy's route, ``WAN_DELAY_MS`` each way): the reason people choose multi-master.
2. Convergence: partition {r1} | {r2, r3}, write N keys on both sides, heal; seconds until
   every region has the same Merkle root, for growing N.
3. The split-brain vignette's casualty table (and its history, JSON lines, in the out dir).

Runs in this process through the services (Django set up here when it is not yet); starts the
regions group when it does not run, and stops it again at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from loadtest.extras import Extra, ExtraResult, Plot

WAN_DELAY_MS = 20


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    if not ordered:
        return {"n": 0}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {
        "n": len(ordered),
        "p50_ms": at(0.5),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


def _region_writes(region: str, count: int, prefix: str) -> list[float]:
    from causal.clocks import VectorClock
    from regions.kinds import Operation
    from regions.store import region_value_write

    samples = []
    for index in range(count):
        started = time.perf_counter()
        region_value_write(
            region=region,
            kind="lww",
            key=f"{prefix}-{region}-{index}",
            operation=Operation("lww", "write", index),
            context=VectorClock(),
        )
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _primary_writes(count: int) -> list[float]:
    import psycopg
    from django.conf import settings

    database = settings.DATABASES["default"]
    samples = []
    with psycopg.connect(
        host=database["HOST"],
        port=database["PORT"],
        user=database["USER"],
        password=database["PASSWORD"],
        dbname=database["NAME"],
    ) as conn:
        conn.execute("CREATE TEMP TABLE bench_write (key text PRIMARY KEY, value jsonb)")
        conn.commit()
        for index in range(count):
            started = time.perf_counter()
            with conn.transaction():
                conn.execute(
                    "INSERT INTO bench_write VALUES (%s, %s) ON CONFLICT (key) "
                    "DO UPDATE SET value = EXCLUDED.value",
                    (f"k{index}", json.dumps(index)),
                )
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def _remote_leader_writes(count: int, prefix: str, settings_override) -> list[float]:
    """The region write of r1, from a client in r2: its connection goes through the route
    r1->r2 of the proxy, delayed WAN_DELAY_MS each way."""
    from regions.conf import region_addresses
    from regions.links import link_control, route_endpoint

    host, port = route_endpoint("r1", "r2")
    first = region_addresses()["r1"]
    url = f"postgres://{first.user}:{first.password}@{host}:{port}/{first.database}"
    control = link_control()
    control.set("r1->r2", delay_ms=WAN_DELAY_MS)
    try:
        with settings_override(url):
            return _region_writes("r1", count, prefix + "-remote")
    finally:
        control.set("r1->r2", delay_ms=0)


def latency(duration_s: float) -> dict[str, Any]:
    from contextlib import contextmanager

    from django.conf import settings

    from regions.db import pools_close

    @contextmanager
    def first_region_at(url: str):
        original = list(settings.REGION_URLS)
        settings.REGION_URLS = [url, *original[1:]]
        try:
            yield
        finally:
            settings.REGION_URLS = original
            pools_close()

    count = max(30, int(duration_s * 10))
    prefix = f"bench{int(time.time())}"
    result: dict[str, Any] = {"writes_per_target": count, "wan_delay_ms_each_way": WAN_DELAY_MS}
    for region in ("r1", "r2", "r3"):
        _region_writes(region, 5, prefix + "-warm")
        result[f"region_{region}"] = _percentiles(_region_writes(region, count, prefix))
    _primary_writes(5)
    result["main_primary"] = _percentiles(_primary_writes(count))
    remote_count = max(10, count // 5)
    result["single_leader_from_another_region"] = _percentiles(
        _remote_leader_writes(remote_count, prefix, first_region_at)
    )
    return result


def _write_side(region: str, keys: list[str], errors: list[str]) -> None:
    from causal.clocks import VectorClock
    from regions.kinds import Operation
    from regions.store import region_value_write

    for key in keys:
        try:
            region_value_write(
                region=region,
                kind="lww",
                key=key,
                operation=Operation("lww", "write", region),
                context=VectorClock(),
            )
        except Exception as error:
            errors.append(str(error))


def _convergence_once(size: int) -> dict[str, Any]:
    from regions.convergence import converged
    from regions.network import network_set
    from regions.splitbrain import _wait

    prefix = f"conv{int(time.time() * 1000) % 10**9}"
    keys = [f"{prefix}-{index}" for index in range(size // 2)]
    network_set(groups=[["r1", "r2", "r3"]])
    _wait(converged, 60)
    network_set(groups=[["r1"], ["r2", "r3"]])
    errors: list[str] = []
    started = time.monotonic()
    threads = [
        threading.Thread(target=_write_side, args=(region, keys, errors)) for region in ("r1", "r2")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written_s = time.monotonic() - started
    network_set(groups=[["r1", "r2", "r3"]])
    healed = time.monotonic()
    waited = _wait(converged, 120, poll_s=0.02)
    return {
        "keys_written": 2 * len(keys) - len(errors),
        "write_phase_s": round(written_s, 3),
        "heal_to_same_root_s": None if waited is None else round(time.monotonic() - healed, 3),
    }


def convergence(sizes: list[int], repeats: int = 3) -> list[dict[str, Any]]:
    """Keys written during a partition (half on each side, all conflicting) -> seconds from
    the heal to every region having the same Merkle root: `repeats` runs per size, their
    median and range."""
    from regions.convergence import anti_entropy_now

    rows = []
    for size in sizes:
        runs = []
        for _ in range(repeats):
            runs.append(_convergence_once(size))
            anti_entropy_now()  # reconcile this run's conflicts before the next one
        times = [
            run["heal_to_same_root_s"] for run in runs if run["heal_to_same_root_s"] is not None
        ]
        rows.append(
            {
                "keys_written": runs[0]["keys_written"],
                "runs": runs,
                "heal_to_same_root_s": round(statistics.median(times), 3) if times else None,
                "heal_to_same_root_min_s": min(times, default=None),
                "heal_to_same_root_max_s": max(times, default=None),
                "not_converged": len(runs) - len(times),
            }
        )
    return rows


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def _vignette_spread(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The vignette's figures over its runs: median and range of each."""
    figures = {
        "heal_to_converged_s": [run["heal_to_converged_s"] for run in runs],
        "keys_in_conflict": [run["casualties"]["keys_in_conflict"] for run in runs],
        "manual_percent": [run["casualties"]["manual_percent"] for run in runs],
        "lww_acknowledged_writes_lost": [
            run["casualties"]["lww_acknowledged_writes_lost"] for run in runs
        ],
        "naive_divergent_forever": [run["naive"]["divergent_forever"] for run in runs],
    }
    return {"runs": len(runs)} | {
        name: {"values": values, **_spread(values)} for name, values in figures.items()
    }


def run(duration_s: float, out_dir: Path, repeats: int = 3) -> dict[str, Any]:
    """Every measurement within about `duration_s` seconds; the figures, also written to
    `out_dir`/regions_bench.json, the vignette's history to split_brain_history.jsonl."""
    _django()
    from devstack import config as stack_config
    from devstack.stack import default_stack
    from regions.convergence import anti_entropy_now
    from regions.schema import regions_setup
    from regions.splitbrain import casualty_table, split_brain_run

    out_dir.mkdir(parents=True, exist_ok=True)
    stack = default_stack()
    components = stack.select(["regions"])
    started = not stack_config.regions_given() and any(c.pid() is None for c in components)
    if started:
        stack.up(["regions"])
    try:
        regions_setup()
        anti_entropy_now()
        began = time.monotonic()
        figures: dict[str, Any] = {"latency": latency(duration_s * 0.25)}
        scale = max(1, int(duration_s // 30))
        figures["convergence"] = convergence([100 * scale, 400 * scale, 1600 * scale], repeats)
        runs = [
            split_brain_run(
                partition_s=max(4.0, duration_s * 0.15),
                keys=40,
                out_dir=out_dir if index == 0 else None,
                echo=lambda _: None,
                seed=7 + index,
            )
            for index in range(repeats)
        ]
        vignette = runs[0]
        figures["split_brain"] = {
            key: vignette[key]
            for key in ("timeline", "casualties", "naive", "checks", "heal_to_converged_s")
        }
        figures["split_brain"]["table"] = casualty_table(vignette)
        figures["split_brain_runs"] = _vignette_spread(runs)
        figures["history"] = vignette.get("history")
        figures["duration_s"] = round(time.monotonic() - began, 1)
    finally:
        if started:
            stack.down(["regions"])
    (out_dir / "regions_bench.json").write_text(json.dumps(figures, indent=2, default=str))
    return figures


def extra_run(*, service: Any = None, scale: float = 1.0, work_dir: Path) -> ExtraResult:
    """The regions as an extra of ``make bench``. The service is not used: the regions are
    measured through their services in this process."""
    figures = run(max(20.0, 60.0 * scale), work_dir / "regions", repeats=3 if scale >= 1 else 1)
    latency_figures = figures["latency"]
    spread = figures["split_brain_runs"]
    scalars = {
        **{
            f"local_write_p50_ms_{region}": latency_figures[f"region_{region}"]["p50_ms"]
            for region in ("r1", "r2", "r3")
        },
        "primary_write_p50_ms": latency_figures["main_primary"]["p50_ms"],
        "far_leader_write_p50_ms": latency_figures["single_leader_from_another_region"]["p50_ms"],
        "vignette_heal_to_equal_s": spread["heal_to_converged_s"]["median"],
        "vignette_manual_percent": spread["manual_percent"]["median"],
        "vignette_lww_writes_lost": spread["lww_acknowledged_writes_lost"]["median"],
        "vignette_naive_divergent_keys": spread["naive_divergent_forever"]["median"],
    }
    rows = [
        {
            "keys_written": row["keys_written"],
            "heal_to_same_root_s": row["heal_to_same_root_s"],
            "min_s": row["heal_to_same_root_min_s"],
            "max_s": row["heal_to_same_root_max_s"],
        }
        for row in figures["convergence"]
    ]
    plot = Plot(
        title="regions: heal -> every region the same Merkle root",
        x=[row["keys_written"] for row in rows],
        series={
            name: [row[key] for row in rows]
            for name, key in (("median", "heal_to_same_root_s"), ("min", "min_s"), ("max", "max_s"))
        },
        xlabel="conflicting keys written during the partition",
        ylabel="seconds",
    )
    scalars["duration_s"] = figures["duration_s"]
    details = {name: value for name, value in figures.items() if isinstance(value, dict | list)}
    return ExtraResult(figures=scalars, table=rows, plot=plot, details=details)


REGIONS = Extra(
    "regions",
    extra_run,
    "local write latency, heal-to-convergence and the split-brain vignette's casualties",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.regions_bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (about)")
    parser.add_argument("--out-dir", type=Path, default=Path("bench/results/regions"))
    parser.add_argument("--repeats", type=int, default=3, help="convergence runs per size")
    args = parser.parse_args(argv)
    figures = run(args.duration, args.out_dir, max(1, args.repeats))
    latency_figures = figures["latency"]
    print("write latency (ms): p50 / p99")
    for name, values in latency_figures.items():
        if isinstance(values, dict):
            print(f"  {name:<36}{values.get('p50_ms')} / {values.get('p99_ms')}")
    print("convergence after a heal:")
    for row in figures["convergence"]:
        print(
            f"  {row['keys_written']:>6} keys written in the partition -> "
            f"{row['heal_to_same_root_s']} s to the same root (median of {len(row['runs'])}; "
            f"{row['heal_to_same_root_min_s']}-{row['heal_to_same_root_max_s']} s)"
        )
    print(figures["split_brain"]["table"])
    print(f"the vignette over {figures['split_brain_runs']['runs']} runs (median, range):")
    for name, values in figures["split_brain_runs"].items():
        if isinstance(values, dict):
            print(f"  {name:<32}{values['median']} ({values['min']}-{values['max']})")
    print(f"results: {args.out_dir}")


if __name__ == "__main__":
    main()
