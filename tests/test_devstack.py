"""The embedded stack with real processes: one stack per module, in a temp dir, on free ports.

No Django database is involved; the module starts and purges its own stack.
"""

import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from devstack import config
from devstack.stack import REPLICA_NAME, Stack, pid_alive, port_open

pytestmark = pytest.mark.stack

CATCH_UP_TIMEOUT_S = 15


def _free_ports(count: int) -> list[int]:
    with ExitStack() as sockets:
        bound = [sockets.enter_context(socket.socket()) for _ in range(count)]
        for sock in bound:
            sock.bind((config.HOST, 0))
        return [sock.getsockname()[1] for sock in bound]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Not under pytest's tmp_path: every new pytest session resets that tree to mode 0700,
    which would lock the unprivileged Postgres user out of a stack started as root."""
    pg_port, replica_port, redis_port = _free_ports(3)
    base_dir = Path(tempfile.mkdtemp(prefix="statelab-devstack-test-"))
    stack = Stack(
        base_dir / "stack",
        pg_port,
        replica_port,
        redis_port,
        honor_given_urls=False,
        echo=lambda _line: None,
    )
    try:
        stack.up()
        yield stack
    finally:
        stack.down(purge=True)
        shutil.rmtree(base_dir, ignore_errors=True)


@pytest.fixture
def running(stack: Stack) -> Stack:
    """The module's stack, (re)started: cheap when it runs, so test order does not matter."""
    stack.up()
    return stack


def _pids(stack: Stack) -> dict[str, int]:
    return {name: info["pid"] for name, info in stack.status().items()}


def _wait_replica_caught_up(stack: Stack) -> None:
    with stack.connect(stack.pg_port, autocommit=True) as primary:
        (target,) = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    with stack.connect(stack.replica_port, autocommit=True) as replica:
        while True:
            (behind,) = replica.execute(
                "SELECT pg_last_wal_replay_lsn() < %s::pg_lsn", (target,)
            ).fetchone()
            if not behind:
                return
            assert time.monotonic() < deadline, f"replica did not replay up to {target}"
            time.sleep(0.05)


def test_embedded_env_points_every_alias_at_the_configured_ports() -> None:
    env = config.embedded_env(pg_port=1, replica_port=2, redis_port=3, shard_count=4)

    assert env["DATABASE_URL"] == "postgres://statelab:statelab@127.0.0.1:1/statelab"
    assert env["REPLICA_URLS"] == "postgres://statelab:statelab@127.0.0.1:2/statelab"
    assert env["ACCOUNTS_DATABASE_URL"].endswith(":1/statelab_accounts")
    assert env["LEDGER_DATABASE_URL"].endswith(":1/statelab_ledger")
    assert [url.rsplit("/", 1)[1] for url in env["SHARD_URLS"].split(",")] == [
        f"statelab_shard_{i}" for i in range(4)
    ]
    assert env["REDIS_URL"] == "redis://127.0.0.1:3/0"
    assert env["CELERY_BROKER_URL"] == "redis://127.0.0.1:3/1"


def test_up_creates_every_database_of_the_topology(running: Stack) -> None:
    with running.connect(running.pg_port) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}

    assert set(config.database_names(running.shard_count).values()) <= existing


def test_a_second_up_reuses_the_running_processes(running: Stack) -> None:
    before = _pids(running)

    running.up()

    assert all(before.values()), before
    assert _pids(running) == before


def test_a_row_written_on_the_primary_appears_on_the_replica(running: Stack) -> None:
    table = f"t_{uuid.uuid4().hex[:12]}"
    with running.connect(running.pg_port, "statelab", autocommit=True) as primary:
        primary.execute(f"CREATE TABLE {table} (note text)")
        primary.execute(f"INSERT INTO {table} VALUES ('written on the primary')")  # noqa: S608
    try:
        _wait_replica_caught_up(running)
        with running.connect(running.replica_port, "statelab") as replica:
            rows = replica.execute(f"SELECT note FROM {table}").fetchall()  # noqa: S608
    finally:
        with running.connect(running.pg_port, "statelab", autocommit=True) as primary:
            primary.execute(f"DROP TABLE {table}")

    assert rows == [("written on the primary",)]


def test_the_replica_refuses_writes(running: Stack) -> None:
    with (
        running.connect(running.replica_port, "statelab") as replica,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="read-only"),
    ):
        replica.execute("CREATE TABLE must_not_exist (id int)")


def test_status_reports_every_component_running_and_the_replica_lag(running: Stack) -> None:
    status = running.status()

    assert {name: info["running"] for name, info in status.items()} == {
        "primary": True,
        REPLICA_NAME: True,
        "redis": True,
    }
    assert status[REPLICA_NAME]["replay_lsn"]
    assert isinstance(status[REPLICA_NAME]["lag_bytes"], int)
    assert status[REPLICA_NAME]["lag_bytes"] >= 0


def test_down_leaves_no_process_behind(running: Stack) -> None:
    pids = _pids(running)

    running.down()

    assert [pid for pid in pids.values() if pid_alive(pid)] == []
    ports = (running.pg_port, running.replica_port, running.redis_port)
    assert [port for port in ports if port_open(port)] == []


def test_stopping_one_component_leaves_the_others_running_until_up_restarts_it(running: Stack):
    before = _pids(running)

    running.stop("redis")
    stopped = {name: info["running"] for name, info in running.status().items()}
    running.up()

    assert stopped == {"primary": True, "replica_1": True, "redis": False}
    assert _pids(running)["primary"] == before["primary"]
    assert running.status()["redis"]["running"]
