"""The HA benchmark: what each replication mode guarantees and costs, measured on the embedded
cluster (etcd x3, Patroni x3) with real kills.

- Acknowledged writes lost when the leader's postmaster is SIGKILLed during a write loop, per
  mode, over several trials, from recorded histories (``histories/writes-*.jsonl``).
- The zombie: the leader frozen until another leads, a write sent to it meanwhile; whether it
  was acknowledged (async may; the synchronous modes must not) and whether it was kept.
- Commit latency p50/p99 per mode with one standby's apply delay raised: ``FIRST 2`` with
  remote_apply follows the slowest standby, ``ANY 1`` the fastest.
- Failover: time from the kill to the first acknowledged write (median over the trials).
- The state machine on etcd: operations per second on three members, the longest gap
  without an acknowledged operation across an etcd leader's kill, acknowledged operations
  lost (``histories/smr-*.jsonl``).

``run(duration_s, out_dir)`` returns the figures (and writes ``ha.json``); the duration scales
the trials and the measuring windows. ``python -m loadtest.ha_bench [--duration 120]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from loadtest.extras import Extra, ExtraResult

ROOT = Path(__file__).resolve().parent.parent
MODES = ("async", "sync", "sync_apply", "strict", "quorum")
WRITERS = 8
APPLY_DELAY_MS = 200
SCRATCH_DATABASE = "statelab_ha_bench"


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def scratch_conninfo(database: str = SCRATCH_DATABASE) -> dict[str, Any]:
    """A fresh, empty ``database`` on the cluster (dropped first if it exists), and the
    connection parameters that reach it on the leader, wherever it is."""
    from django.conf import settings
    from psycopg import sql

    from ha.services import leader_connection

    with leader_connection() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    default = settings.DATABASES["default"]
    return {
        "host": default["HOST"],
        "port": default["PORT"],
        "user": default["USER"],
        "password": default["PASSWORD"],
        "dbname": database,
        "target_session_attrs": "read-write",
        "connect_timeout": 2,
    }


def leader_name() -> str | None:
    from ha.patroni import patroni_client

    try:
        members = patroni_client().cluster()
    except Exception:
        return None
    return next((m.name for m in members if m.is_leader and m.state == "running"), None)


def new_leader(old: str | None, timeout_s: float = 60) -> tuple[str | None, float]:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        leader = leader_name()
        if leader is not None and leader != old:
            return leader, time.monotonic() - started
        time.sleep(0.05)
    return None, timeout_s


def cluster_settled(timeout_s: float = 120) -> bool:
    from ha.patroni import patroni_client

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            members = patroni_client().cluster()
        except Exception:
            members = []
        leaders = [m for m in members if m.is_leader and m.state == "running"]
        if (
            len(members) == 3
            and len(leaders) == 1
            and all(
                m.is_leader or (m.state == "streaming" and m.timeline == leaders[0].timeline)
                for m in members
            )
        ):
            return True
        time.sleep(0.3)
    return False


def etcd_equal() -> bool:
    from ha.etcd import etcd_client, hashkv_compare

    return bool(hashkv_compare(etcd_client())["equal"])


# ---- lost acknowledged writes and failover time ------------------------------------------


def kill_trial(conninfo: dict, mode: str, trial: int, histories: Path) -> dict[str, Any]:
    """One write loop across a SIGKILL of the leader's postmaster in ``mode``."""
    from ha.services import ha_leader_kill, ha_mode_set
    from loadtest.ha_workload import (
        History,
        SqlWriteLoop,
        lost_acknowledged_writes,
        sql_final_reads,
        unknown_writes_found,
    )

    ha_mode_set(mode=mode)
    history = History()
    loop = SqlWriteLoop(
        conninfo, history, writers=WRITERS, prefix=f"{mode}-{trial}-", timeout_s=3
    ).start()
    time.sleep(2)
    killed_at = history.now()
    killed = ha_leader_kill()
    leader, elected_after_s = new_leader(killed["leader"])
    time.sleep(2)
    loop.stop()
    settled = cluster_settled()
    sql_final_reads(conninfo, history, loop.keys)
    path = history.write(histories / f"writes-{mode}-{trial}.jsonl")
    outage = loop.outage_after(killed_at)
    unknown, unknown_kept = unknown_writes_found(history.events)
    acknowledged = sum(1 for e in history.events if e["f"] == "write" and e["type"] == "ok")
    return {
        "mode": mode,
        "trial": trial,
        "killed": killed["leader"],
        "new_leader": leader,
        "leader_elected_after_s": round(elected_after_s, 3),
        "first_write_after_kill_s": (
            round((outage[1] - killed_at) / 1e9, 3) if outage is not None else None
        ),
        "write_outage_s": round((outage[1] - outage[0]) / 1e9, 3) if outage is not None else None,
        "acknowledged": acknowledged,
        "lost_acknowledged": len(lost_acknowledged_writes(history.events)),
        "unknown_outcome": unknown,
        "unknown_kept": unknown_kept,
        "settled": settled,
        "etcd_hashkv_equal": etcd_equal(),
        "history": str(path.relative_to(histories.parent)),
    }


def zombie_trial(conninfo: dict, mode: str) -> dict[str, Any]:
    """The leader frozen (SIGSTOP) until another leads; a write on a connection held to it,
    sent while it is frozen; then it comes back. Acknowledged? Kept?"""
    import psycopg

    from devstack.stack import default_stack
    from ha.services import ha_mode_set

    ha_mode_set(mode=mode)
    old = leader_name()
    member = default_stack().component(old)
    direct = {**conninfo, "host": "127.0.0.1", "port": member.port, "target_session_attrs": "any"}
    key = f"zombie-{mode}-{time.monotonic_ns()}"
    outcome: dict[str, Any] = {}
    held = psycopg.connect(**direct, autocommit=True)

    def write() -> None:
        try:
            held.execute("INSERT INTO ha_writes (key, value) VALUES (%s, 1)", (key,))
            outcome["acknowledged_after_s"] = round(time.monotonic() - resumed_at[0], 3)
        except psycopg.Error as error:
            outcome["error"] = type(error).__name__

    resumed_at = [0.0]
    member.pause()
    try:
        leader, elected_after_s = new_leader(old)
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        time.sleep(0.5)
    finally:
        resumed_at[0] = time.monotonic()
        member.resume()
    writer.join(timeout=30)
    held.close()
    settled = cluster_settled()
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        kept = conn.execute("SELECT 1 FROM ha_writes WHERE key = %s", (key,)).fetchone()
    return {
        "mode": mode,
        "frozen": old,
        "new_leader": leader,
        "leader_elected_after_s": round(elected_after_s, 3),
        "acknowledged": "acknowledged_after_s" in outcome,
        "kept": kept is not None,
        "lost_acknowledged": int("acknowledged_after_s" in outcome and kept is None),
        **outcome,
        "settled": settled,
        "etcd_hashkv_equal": etcd_equal(),
    }


# ---- commit latency with one slow standby ---------------------------------------------------


LATENCY_CASES = (
    ("async", {"mode": "async"}),
    ("sync FIRST 1 (flush)", {"mode": "sync"}),
    ("quorum ANY 1 (flush)", {"mode": "quorum"}),
    ("sync_apply FIRST 1", {"mode": "sync_apply"}),
    ("sync_apply FIRST 2", {"mode": "sync_apply", "sync_node_count": 2}),
    ("quorum ANY 1 remote_apply", {"mode": "quorum", "synchronous_commit": "remote_apply"}),
)


def commit_latencies(conninfo: dict, window_s: float) -> dict[str, Any]:
    """Sequential single-row commits on the leader for ``window_s`` per case, with one
    standby's apply delay at ``APPLY_DELAY_MS``."""
    import psycopg

    from devstack.stack import default_stack
    from ha.patroni import patroni_client
    from ha.services import ha_mode_set

    members = patroni_client().cluster()
    slow = next(m.name for m in members if not m.is_leader)
    component = default_stack().component(slow)
    component.set_apply_delay(APPLY_DELAY_MS)
    time.sleep(2)
    results: dict[str, Any] = {"slow_standby": slow, "apply_delay_ms": APPLY_DELAY_MS}
    try:
        for label, mode in LATENCY_CASES:
            status = ha_mode_set(**mode)
            synchronous = [m["name"] for m in status["members"] if m["synchronous"]]
            samples = []
            with psycopg.connect(**conninfo, autocommit=True) as conn:
                deadline = time.monotonic() + window_s
                number = 0
                while time.monotonic() < deadline:
                    number += 1
                    started = time.perf_counter()
                    conn.execute(
                        "INSERT INTO ha_writes (key, value) VALUES (%s, %s)",
                        (f"latency-{label}-{time.monotonic_ns()}", number),
                    )
                    samples.append((time.perf_counter() - started) * 1000)
            results[label] = {
                "commits": len(samples),
                "p50_ms": round(_percentile(samples, 0.5) or 0, 2),
                "p99_ms": round(_percentile(samples, 0.99) or 0, 2),
                "synchronous_standbys": synchronous,
            }
    finally:
        component.set_apply_delay(0)
        ha_mode_set(mode="async")
    return results


# ---- the saga across a failover ---------------------------------------------------------------


TERMINAL = {"completed", "failed", "compensated"}


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _funded_accounts(base: str, user: dict, staff: dict) -> list[int]:
    import requests

    accounts = []
    for _ in range(2):
        created = requests.post(
            f"{base}/api/accounts/", json={"currency": "EUR"}, headers=user, timeout=10
        )
        created.raise_for_status()
        account = created.json()["id"]
        requests.post(
            f"{base}/api/accounts/{account}/deposits/",
            json={"amount": "1000.00"},
            headers=staff,
            timeout=10,
        ).raise_for_status()
        accounts.append(account)
    return accounts


class TransferPoster(threading.Thread):
    """Posts one-cent transfers until stopped; an unknown answer (timeout, 5xx) is retried
    with the same Idempotency-Key, as a client should."""

    def __init__(self, base: str, headers: dict, accounts: list[int]) -> None:
        super().__init__(daemon=True)
        self.base, self.headers, self.accounts = base, headers, accounts
        self.accepted: list[tuple[float, str]] = []
        self.outcomes = {"accepted": 0, "refused": 0, "unknown_then_retried": 0, "gave_up": 0}
        self.stopped = threading.Event()

    def run(self) -> None:
        import uuid

        import requests

        session = requests.Session()
        session.headers.update(self.headers)
        body = {
            "source": self.accounts[0],
            "destination": self.accounts[1],
            "amount": "0.01",
            "currency": "EUR",
        }
        while not self.stopped.is_set():
            key = str(uuid.uuid4())
            for attempt in range(20):
                try:
                    response = session.post(
                        f"{self.base}/api/transfers/",
                        json=body,
                        headers={"Idempotency-Key": key},
                        timeout=5,
                    )
                except requests.RequestException:
                    response = None
                if response is not None and response.status_code < 500:
                    if response.status_code in {200, 201, 202}:
                        self.outcomes["accepted"] += 1
                        self.accepted.append((time.monotonic(), response.json()["id"]))
                    else:
                        self.outcomes["refused"] += 1
                    break
                if attempt == 0:
                    self.outcomes["unknown_then_retried"] += 1
                time.sleep(0.25)
            else:
                self.outcomes["gave_up"] += 1
            time.sleep(0.05)


def _states_when_terminal(base: str, headers: dict, transfers: list[str]) -> dict[str, str]:
    """Poll the transfers until every one is terminal (or 180 s pass); their last states."""
    import requests

    states: dict[str, str] = {}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for transfer in transfers:
            if states.get(transfer) in TERMINAL:
                continue
            try:
                answer = requests.get(
                    f"{base}/api/transfers/{transfer}/", headers=headers, timeout=5
                )
            except requests.RequestException:
                continue
            if answer.ok:
                states[transfer] = answer.json()["state"]
        if all(states.get(t) in TERMINAL for t in transfers):
            break
        time.sleep(1)
    return states


def saga_across_failover(window_s: float, log_dir: Path) -> dict[str, Any]:
    """The whole service (gunicorn, a Celery worker, beat) in sync mode; transfers posted
    through the API while the leader's postmaster is SIGKILLed; then how long until every
    accepted transfer is terminal, and whether the books reconcile."""
    import requests
    from django.core.management import call_command

    from ha.services import ha_leader_kill, ha_mode_set
    from loadtest.service import service_running

    call_command("migrate_all", verbosity=0)
    call_command("seed_demo", verbosity=0)
    ha_mode_set(mode="sync")
    log_dir.mkdir(parents=True, exist_ok=True)
    with service_running(_free_port(), log_dir, web_workers=2, celery_workers=1) as service:
        staff = {"Authorization": f"Token {service.tokens['admin']}"}
        alice = {"Authorization": f"Token {service.tokens['alice']}"}
        poster = TransferPoster(
            service.base_url, alice, _funded_accounts(service.base_url, alice, staff)
        )
        poster.start()
        time.sleep(window_s)
        killed_at = time.monotonic()
        killed = ha_leader_kill()
        leader, elected_after_s = new_leader(killed["leader"])
        time.sleep(window_s)
        poster.stopped.set()
        poster.join(timeout=120)
        transfers = [transfer for _, transfer in poster.accepted]
        states = _states_when_terminal(service.base_url, alice, transfers)
        terminal_after_s = round(time.monotonic() - killed_at, 1)
        reconciliation = requests.get(
            f"{service.base_url}/api/ledger/reconciliation/", headers=staff, timeout=60
        ).json()
    ha_mode_set(mode="async")
    after_kill = [at for at, _ in poster.accepted if at > killed_at]
    tally: dict[str, int] = {}
    for state in states.values():
        tally[state] = tally.get(state, 0) + 1
    return {
        "mode": "sync",
        "killed": killed["leader"],
        "new_leader": leader,
        "leader_elected_after_s": round(elected_after_s, 3),
        "first_transfer_accepted_after_kill_s": (
            round(after_kill[0] - killed_at, 3) if after_kill else None
        ),
        "posts": poster.outcomes,
        "states": tally,
        "all_terminal": all(states.get(t) in TERMINAL for t in transfers),
        "all_terminal_within_s_of_the_kill": terminal_after_s,
        "reconciliation_ok": bool(reconciliation.get("ok")),
        "settled": cluster_settled(),
        "etcd_hashkv_equal": etcd_equal(),
    }


# ---- the state machine on etcd ------------------------------------------------------------------


def smr_figures(window_s: float, histories: Path) -> dict[str, Any]:
    """Throughput without faults, then an etcd leader's SIGKILL (and restart) under load."""
    from devstack.components import EtcdMember
    from devstack.stack import default_stack
    from ha.etcd import etcd_client
    from ha.smr import StateMachine
    from loadtest.ha_workload import History, SmrLoop, smr_check

    machine = StateMachine(etcd_client())
    steady = History()
    loop = SmrLoop(machine, steady, clients=4, prefix=f"bench-{time.monotonic_ns()}").start()
    time.sleep(window_s)
    loop.stop()
    steady.write(histories / "smr-steady.jsonl")
    ops_per_s = loop.completed / window_s

    history = History()
    loop = SmrLoop(machine, history, clients=4, prefix=f"bench-kill-{time.monotonic_ns()}").start()
    time.sleep(window_s / 2)
    members = [c for c in default_stack().components if isinstance(c, EtcdMember)]
    leader = next(m for m in members if m.status_details(m.pid()).get("is_leader"))
    killed_at = history.now()
    leader.kill()
    time.sleep(2)
    leader.up()
    time.sleep(window_s / 2)
    loop.stop()
    history.write(histories / "smr-kill.jsonl")
    # The longest stretch without an acknowledged operation that ends after the kill and
    # starts within 10 s of it: operations already in flight may still be acknowledged
    # just after the kill, before the members notice the leader is gone.
    acknowledged = sorted(loop.acknowledged_at)
    gaps = [
        (later - earlier) / 1e9
        for earlier, later in itertools.pairwise(acknowledged)
        if later > killed_at and earlier < killed_at + 10e9
    ]
    gap_s = max(gaps, default=None)
    final = machine.read(loop.counter).value or 0
    verdict = smr_check(history.events, final, loop.counter)
    return {
        "clients": 4,
        "ops_per_s": round(ops_per_s, 1),
        "killed": leader.name,
        "unavailable_window_s": round(gap_s, 3) if gap_s is not None else None,
        "acknowledged_ops_lost": verdict["lost_increments"],
        "check": verdict,
        "etcd_hashkv_equal": etcd_equal(),
    }


# ---- the whole run -------------------------------------------------------------------------------


def run(duration_s: float, out_dir: Path) -> dict[str, Any]:
    """Every HA figure; ``duration_s`` scales the trials (1 per mode below 120 s, else 3) and
    the measuring windows. Histories go to ``out_dir/histories``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    histories = out_dir / "histories"
    histories.mkdir(exist_ok=True)
    trials = 1 if duration_s < 120 else 3
    window_s = max(3.0, min(10.0, duration_s / 20))
    if not cluster_settled():
        raise RuntimeError("the cluster is not settled (one leader, two streaming standbys)")
    from loadtest.ha_workload import writes_table_create

    conninfo = scratch_conninfo()
    writes_table_create(conninfo)
    figures: dict[str, Any] = {"trials_per_mode": trials, "writers": WRITERS}
    path = out_dir / "ha.json"

    def section(name: str, measure) -> None:
        """One figure; a failure is recorded under its name and the others still run."""
        try:
            figures[name] = measure()
        except Exception as error:  # a benchmark reports what broke, and goes on
            figures[name] = {"error": f"{type(error).__name__}: {error}"}
        cluster_settled()
        path.write_text(json.dumps(figures, indent=2, default=str))

    section(
        "kills",
        lambda: [
            kill_trial(conninfo, mode, trial, histories)
            for trial in range(1, trials + 1)
            for mode in MODES
        ],
    )
    kills = figures["kills"] if isinstance(figures["kills"], list) else []
    figures["lost_acknowledged_by_mode"] = {
        mode: [k["lost_acknowledged"] for k in kills if k["mode"] == mode] for mode in MODES
    }
    first_writes = [k["first_write_after_kill_s"] for k in kills if k["first_write_after_kill_s"]]
    figures["failover_first_write_median_s"] = (
        round(statistics.median(first_writes), 3) if first_writes else None
    )
    outages = [k["write_outage_s"] for k in kills if k["write_outage_s"] is not None]
    figures["write_outage_median_s"] = round(statistics.median(outages), 3) if outages else None
    elections = [k["leader_elected_after_s"] for k in kills]
    figures["leader_elected_median_s"] = (
        round(statistics.median(elections), 3) if elections else None
    )
    section("zombie", lambda: [zombie_trial(conninfo, mode) for mode in ("async", "sync")])
    section("commit_latency", lambda: commit_latencies(conninfo, window_s))
    section("smr", lambda: smr_figures(window_s, histories))
    section("saga", lambda: saga_across_failover(max(window_s, 5.0), out_dir / "service"))
    from ha.services import ha_mode_set

    ha_mode_set(mode="async")
    return figures


def ha_extra(*, service: Any, scale: float, work_dir: Path) -> ExtraResult:
    """``make bench``'s extra (``loadtest/plan.py``): the whole HA benchmark in a process of
    its own (it kills and freezes the cluster's leader under the running service, which
    must ride through), ``120 * scale`` seconds' worth of trials."""
    import subprocess
    import sys

    out = work_dir / "ha"
    subprocess.run(
        [sys.executable, "-m", "loadtest.ha_bench", "--duration", str(120 * scale), "--out", out],
        cwd=ROOT,
        env=os.environ.copy(),
        check=True,
        timeout=3600,
    )
    newest = max(out.glob("*/ha.json"), key=lambda path: path.stat().st_mtime)
    figures = json.loads(newest.read_text())
    scalars = {
        key: value
        for key, value in figures.items()
        if key != "kills" and (value is None or isinstance(value, int | float | str | bool))
    }
    details = {key: value for key, value in figures.items() if key not in scalars}
    return ExtraResult(figures=scalars, details=details)


HA = Extra(
    "ha",
    ha_extra,
    "failover time, acknowledged writes lost per mode, the SMR's unavailable window",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="statelab HA benchmark")
    parser.add_argument("--duration", type=float, default=120, help="seconds (scales trials)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "ha")
    options = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    figures = run(options.duration, options.out / stamp)
    print(json.dumps({k: v for k, v in figures.items() if k != "kills"}, indent=2, default=str))
    print(f"\nfigures and histories: {options.out / stamp}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
