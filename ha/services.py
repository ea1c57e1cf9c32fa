"""Changes to the cluster: its replication mode, a switchover, the leader's death (a fault),
and the standbys' apply delay."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import psycopg
from django.conf import settings

from core.db import row_one
from ha.errors import HaRefused, HaUnavailable
from ha.modes import ASYNC, QUORUM, mode_patch
from ha.patroni import patroni_client
from ha.selectors import ha_status

MODE_TIMEOUT_S = 15.0
CONNECT_TIMEOUT_S = 3


def leader_connection(dbname: str = "postgres") -> psycopg.Connection:
    """A connection of its own to whichever member leads (``DATABASE_URL``'s hosts, the first
    read-write one), autocommit: never one a request's transaction uses."""
    database = settings.DATABASES["default"]
    options = {
        key: value
        for key, value in database.get("OPTIONS", {}).items()
        if key not in {"connect_timeout", "target_session_attrs"}
    }
    return psycopg.connect(
        host=database["HOST"],
        port=database["PORT"],
        user=database["USER"],
        password=database["PASSWORD"],
        dbname=dbname,
        target_session_attrs="read-write",
        connect_timeout=CONNECT_TIMEOUT_S,
        autocommit=True,
        **options,
    )


def _leader_settings() -> tuple[str, str]:
    with leader_connection() as conn:
        names = row_one(conn.execute("SHOW synchronous_standby_names"))[0]
        commit = row_one(conn.execute("SHOW synchronous_commit"))[0]
    return names, commit


def _in_force(mode: str, commit: str, settings_now: tuple[str, str]) -> bool:
    names, commit_now = settings_now
    if commit_now != commit:
        return False
    if mode == ASYNC:
        return names == ""
    if mode == QUORUM:
        return names.upper().startswith("ANY")
    return names != ""


def _synchronous_standbys_ready(sync_node_count: int) -> bool:
    """True when Patroni has marked as many synchronous standbys as it can (the count asked
    for, or every streaming standby when fewer): failover then goes to one of them only."""
    members = patroni_client().cluster()
    streaming = [m for m in members if not m.is_leader and m.state in {"streaming", "running"}]
    synchronous = [m for m in members if m.is_synchronous]
    return len(synchronous) >= min(sync_node_count, len(streaming))


def ha_mode_set(
    *,
    mode: str,
    sync_node_count: int = 1,
    synchronous_commit: str | None = None,
    timeout_s: float = MODE_TIMEOUT_S,
) -> dict[str, Any]:
    """Put ``mode`` in force through Patroni's dynamic configuration and wait until the leader
    runs with it (its ``synchronous_standby_names`` and ``synchronous_commit``) and, in the
    synchronous modes, Patroni has named the synchronous standbys; returns the cluster's
    status."""
    patch = mode_patch(mode, sync_node_count=sync_node_count, synchronous_commit=synchronous_commit)
    patroni_client().config_patch(patch)
    commit = patch["postgresql"]["parameters"]["synchronous_commit"]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if _in_force(mode, commit, _leader_settings()) and (
                mode == ASYNC or _synchronous_standbys_ready(sync_node_count)
            ):
                break
        except (psycopg.Error, HaUnavailable):
            pass
        if time.monotonic() > deadline:
            raise HaUnavailable(
                f"The leader did not take mode {mode} within {timeout_s:.0f} s; Patroni has it "
                "in its configuration and applies it once a leader runs."
            )
        time.sleep(0.1)
    return ha_status(with_etcd=False)


def ha_switchover(*, candidate: str | None = None) -> dict[str, Any]:
    """Hand the leadership over (a clean switchover: the leader stops, the candidate, or the
    healthiest standby, is promoted, the old leader follows it); returns the new status."""
    client = patroni_client()
    members = client.cluster()
    leader = next((member for member in members if member.is_leader), None)
    if leader is None:
        raise HaRefused("The cluster has no leader to switch over from.")
    names = {member.name for member in members}
    if candidate is not None and (candidate not in names or candidate == leader.name):
        raise HaRefused(
            f"{candidate!r} is not a standby of this cluster.",
            standbys=sorted(names - {leader.name}),
        )
    message = client.switchover(leader=leader.name, candidate=candidate)
    return {"message": message, **ha_status(with_etcd=False)}


def ha_leader_kill() -> dict[str, Any]:
    """SIGKILL of the leader's postmaster, from inside: as the superuser on the leader,
    ``COPY ... TO PROGRAM 'kill -9 <pid>'`` (the pid from its postmaster.pid). Works wherever
    the service reaches the leader as a superuser, embedded or in containers; Patroni's API
    has no kill (only clean restarts and switchovers), and a crash is the point."""
    try:
        with leader_connection() as conn:
            port, pid = row_one(
                conn.execute(
                    "SELECT inet_server_port(), "
                    "split_part(pg_read_file('postmaster.pid'), E'\\n', 1)::int"
                )
            )
            leader = _leader_name()
            killed_at = time.time()
            # the backend may be ended with its postmaster before it answers
            with contextlib.suppress(psycopg.Error):
                conn.execute(f"COPY (SELECT 1) TO PROGRAM 'kill -9 {int(pid)}'")
    except psycopg.Error as error:
        raise HaUnavailable(f"Could not reach the leader as its superuser: {error}") from None
    return {"leader": leader, "port": port, "postmaster_pid": pid, "killed_at": killed_at}


def _leader_name() -> str | None:
    try:
        members = patroni_client().cluster()
    except HaUnavailable:
        return None
    return next((member.name for member in members if member.is_leader), None)


def standby_apply_delay_set(alias: str, delay_ms: int) -> None:
    """The standbys' apply delay, for the consistency app (``set_replica_apply_delay``):
    Patroni owns the members' configuration (it undoes ALTER SYSTEM), so the delay goes into
    its dynamic configuration, which every standby applies (``alias`` names one of them: all
    get it)."""
    patroni_client().config_patch(
        {"postgresql": {"parameters": {"recovery_min_apply_delay": f"{int(delay_ms)}ms"}}}
    )
