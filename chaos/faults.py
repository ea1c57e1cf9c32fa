"""Fault injectors: each breaks one thing for a while, then heals it.

Every injector is ``(context) -> detail`` and returns after healing, so the schedule can check
the invariants right after each fault.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import dataclass

import psycopg
import requests
from django.conf import settings
from django.db import connections

from core.db import alias_conninfo
from core.faults import faults_set
from devstack.stack import Stack
from ha.etcd import etcd_client, hashkv_compare
from ha.patroni import Member, patroni_client
from ha.services import ha_leader_kill
from loadtest.service import Service

SWITCH_ATTEMPTS = 10
LEADER_TIMEOUT_S = 60
SETTLE_TIMEOUT_S = 90
APPLICATION_DATABASES_SQL = """
SELECT pid FROM pg_stat_activity
WHERE datname = ANY(%s) AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""


@dataclass
class FaultContext:
    service: Service
    stack: Stack | None
    staff_token: str
    hold_s: float
    rng: random.Random
    crash_rounds: int = 0
    counter_key: str = ""

    def set_switches(self, values: dict) -> None:
        """PATCH the switches; retried, because an armed crash point may kill the very web
        worker that serves the call."""
        for attempt in range(SWITCH_ATTEMPTS):
            try:
                response = requests.patch(
                    self.service.base_url + "/api/faults/",
                    json=values,
                    headers={"Authorization": f"Token {self.staff_token}"},
                    timeout=10,
                )
                response.raise_for_status()
                return
            except requests.RequestException:
                if attempt == SWITCH_ATTEMPTS - 1:
                    raise
                time.sleep(0.5)

    def switch_choices(self, name: str) -> list[str]:
        response = requests.get(
            self.service.base_url + "/api/faults/",
            headers={"Authorization": f"Token {self.staff_token}"},
            timeout=10,
        )
        response.raise_for_status()
        return next(
            fault["choices"] for fault in response.json()["faults"] if fault["name"] == name
        )

    def workers(self) -> list[str]:
        return [name for name in self.service.processes if name.startswith("worker-")]


def kill_worker(context: FaultContext) -> str:
    name = context.rng.choice(context.workers())
    context.service.kill(name)
    time.sleep(context.hold_s)
    context.service.start(name)
    return f"SIGKILL {name}, restarted after {context.hold_s} s"


def pause_worker(context: FaultContext) -> str:
    name = context.rng.choice(context.workers())
    context.service.signal(name, signal.SIGSTOP)
    time.sleep(context.hold_s)
    context.service.signal(name, signal.SIGCONT)
    return f"SIGSTOP {name} for {context.hold_s} s"


def terminate_backends(context: FaultContext) -> str:
    names = [settings.DATABASES[alias]["NAME"] for alias in ("default", "accounts", "ledger")]
    with psycopg.connect(alias_conninfo("default"), autocommit=True) as connection:
        pids = [row[0] for row in connection.execute(APPLICATION_DATABASES_SQL, [names])]
        victims = context.rng.sample(pids, k=min(len(pids), 5))
        for pid in victims:
            connection.execute("SELECT pg_terminate_backend(%s)", [pid])
    return f"pg_terminate_backend of {len(victims)} of {len(pids)} connections"


def restart_redis(context: FaultContext) -> str:
    if context.stack is None:
        return "skipped: Redis is not the embedded stack's"
    redis = context.stack.component("redis")
    redis.down()
    time.sleep(context.hold_s)
    redis.up()
    return f"Redis stopped for {context.hold_s} s (cache and broker contents lost)"


def pause_redis(context: FaultContext) -> str:
    """A Redis blip under the profile writers: SIGSTOP, so that calls time out rather than
    being refused, for less than a second, then SIGCONT (nothing in Redis is lost)."""
    if context.stack is None:
        return "skipped: Redis is not the embedded stack's"
    pid = context.stack.component("redis").pid()
    if pid is None:
        return "skipped: Redis is not running"
    blip_s = context.rng.uniform(0.2, 0.8)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(blip_s)
    finally:
        os.kill(pid, signal.SIGCONT)
    return f"Redis frozen (SIGSTOP) for {blip_s:.2f} s during writes"


def stop_replica(context: FaultContext) -> str:
    """Stop one standby of the cluster (its Patroni and Postgres), then start it again."""
    if context.stack is None:
        return "skipped: the cluster is not the embedded stack's"
    name = context.rng.choice([member.name for member in cluster_members() if not member.is_leader])
    standby = context.stack.component(name)
    standby.down()
    time.sleep(context.hold_s)
    standby.up()
    return f"standby {name} stopped for {context.hold_s} s"


def pause_replay(context: FaultContext) -> str:
    with psycopg.connect(alias_conninfo("replica_1"), autocommit=True) as connection:
        connection.execute("SELECT pg_wal_replay_pause()")
        time.sleep(context.hold_s)
        connection.execute("SELECT pg_wal_replay_resume()")
    return f"replica replay paused for {context.hold_s} s"


def cluster_members() -> list[Member]:
    return patroni_client().cluster()


def _leader_name() -> str | None:
    return next((member.name for member in cluster_members() if member.is_leader), None)


def _leader_other_than(old: str | None, timeout_s: float) -> tuple[str | None, float]:
    """Until a member other than ``old`` leads: (its name, seconds waited); (None, timeout)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            leader = _leader_name()
        except Exception:  # the managers may not answer for a moment
            leader = None
        if leader is not None and leader != old:
            return leader, time.monotonic() - started
        time.sleep(0.1)
    return None, timeout_s


def _cluster_settled(timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            members = cluster_members()
        except Exception:
            members = []
        leaders = [m for m in members if m.is_leader and m.state == "running"]
        if leaders and all(
            m.is_leader or (m.state == "streaming" and m.timeline == leaders[0].timeline)
            for m in members
        ):
            return True
        time.sleep(0.5)
    return False


def _etcd_verdict() -> str:
    """etcd issue 13766: compare every member's hash of the keyspace after each kill."""
    result = hashkv_compare(etcd_client())
    return f"etcd hashkv {'equal' if result['equal'] else 'DIFFERENT'} at rev {result['revision']}"


def kill_leader(context: FaultContext) -> str:
    """SIGKILL of the cluster's leader's postmaster (as ``POST /api/ha/faults/kill-leader``
    does: through SQL on the leader, so it works in containers too); Patroni fails over and
    the old leader rejoins as a standby."""
    killed = ha_leader_kill()
    leader, waited = _leader_other_than(killed["leader"], LEADER_TIMEOUT_S)
    settled = _cluster_settled(SETTLE_TIMEOUT_S)
    return (
        f"SIGKILL of {killed['leader']}'s postmaster; {leader or 'no new leader'} leads after "
        f"{waited:.1f} s; {'settled' if settled else 'NOT settled'}; {_etcd_verdict()}"
    )


def pause_leader(context: FaultContext) -> str:
    """Freeze the leader (SIGSTOP of its Patroni and every Postgres process) until another
    member leads, then let the zombie come back: it must be demoted and rewound, and (in the
    synchronous modes) acknowledge no write meanwhile."""
    if context.stack is None:
        return "skipped: the cluster is not the embedded stack's"
    old = _leader_name()
    if old is None:
        return "skipped: no leader"
    member = context.stack.component(old)
    member.pause()
    try:
        leader, waited = _leader_other_than(old, LEADER_TIMEOUT_S)
        time.sleep(context.hold_s)
    finally:
        member.resume()
    settled = _cluster_settled(SETTLE_TIMEOUT_S)
    return (
        f"{old} frozen; {leader or 'no new leader'} leads after {waited:.1f} s; resumed "
        f"{context.hold_s} s later; {'settled' if settled else 'NOT settled'}; {_etcd_verdict()}"
    )


def credit_failures(context: FaultContext) -> str:
    context.set_switches({"saga_credit_failure_rate": 0.3})
    time.sleep(context.hold_s)
    context.set_switches({"saga_credit_failure_rate": 0.0})
    return f"credit failure rate 0.3 for {context.hold_s} s"


def crash_point(context: FaultContext) -> str:
    """Arms, in turn, every crash point of the saga and then every other one: a process that
    reaches an armed point dies there (SIGKILL), between a commit and what follows it."""
    choices = context.switch_choices("crash_points")
    saga = [point for point in choices if not point.startswith("sharding.")]
    others = [point for point in choices if point not in saga]
    context.crash_rounds += 1
    points = saga if context.crash_rounds % 2 or not others else others
    context.set_switches({"crash_points": points})
    time.sleep(context.hold_s)
    # Disarmed in the database, not through the API: while the points are armed, the web
    # workers die at them one request after another, and a PATCH waits behind their restarts
    # (it took 100 s of retries in a run).
    faults_set(values={"crash_points": []}, actor="chaos")
    for name in context.workers():
        if context.service.processes[name].poll() is not None:
            context.service.start(name)
    if context.service.processes["web"].poll() is not None:
        context.service.start("web")
    return f"crash points {', '.join(points)} armed for {context.hold_s} s"


def concurrent_bucket_moves(context: FaultContext) -> str:
    """Two moves of the counter key's bucket 50 ms apart, to two different shards, and a move
    of the next bucket at the same time, while the clients increment: one move per bucket
    goes ahead (the other is refused), the map switches cannot undo each other, and the
    final counters check finds every acknowledged increment."""
    from sharding.moves import bucket_move
    from sharding.placement import bucket_map_current, bucket_of

    bucket_map = bucket_map_current(force=True)
    bucket = bucket_of(context.counter_key, len(bucket_map.assignment))
    other = (bucket + 1) % len(bucket_map.assignment)
    elsewhere = [a for a in settings.SHARD_ALIASES if a != bucket_map.shard_of_bucket(bucket)]
    moves = [
        (bucket, elsewhere[0]),
        (bucket, elsewhere[-1]),
        (other, next(a for a in settings.SHARD_ALIASES if a != bucket_map.shard_of_bucket(other))),
    ]
    outcomes: dict[int, str] = {}

    def move(number: int, target_bucket: int, target: str) -> None:
        try:
            bucket_move(bucket=target_bucket, target=target)
            outcomes[number] = f"bucket {target_bucket} -> {target}: done"
        except Exception as error:
            outcomes[number] = f"bucket {target_bucket} -> {target}: {type(error).__name__}"
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=move, args=(number, *planned))
        for number, planned in enumerate(moves)
    ]
    threads[0].start()
    threads[2].start()
    time.sleep(0.05)
    threads[1].start()
    for thread in threads:
        thread.join(timeout=120)
    return "; ".join(outcomes[number] for number in sorted(outcomes))


SCHEDULE = (
    kill_worker,
    kill_leader,
    terminate_backends,
    credit_failures,
    concurrent_bucket_moves,
    restart_redis,
    pause_worker,
    pause_redis,
    stop_replica,
    pause_leader,
    crash_point,
    pause_replay,
)
