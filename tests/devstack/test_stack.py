"""The orchestrator: the single and core groups with real processes (one stack for the
package), and group selection with small real listeners."""

import os
import subprocess
import sys
import uuid

import psycopg
import pytest

from devstack import config
from devstack.config import StackConfig
from devstack.errors import StackError
from devstack.groups import GROUPS, Group
from devstack.process import pid_alive, port_open
from devstack.stack import Stack
from tests.devstack.conftest import Listener, free_ports, quiet, wait_replica_caught_up

pytestmark = pytest.mark.stack

REPO_ROOT = config.REPO_ROOT


def _pids(stack: Stack) -> dict[str, int]:
    return {name: info["pid"] for name, info in stack.status().items()}


# ---- the core group ------------------------------------------------------------------


def test_embedded_env_points_every_alias_at_the_cluster_on_the_configured_ports() -> None:
    env = config.embedded_env(
        redis_port=3, shard_count=4, ha_pg_port=10, patroni_port=20, etcd_port=30
    )

    members = "127.0.0.1:10,127.0.0.1:11,127.0.0.1:12"
    leader = f"postgres://statelab:statelab@{members}"
    assert env["DATABASE_URL"] == f"{leader}/statelab?target_session_attrs=read-write"
    assert env["ACCOUNTS_DATABASE_URL"].startswith(f"{leader}/statelab_accounts?")
    assert env["LEDGER_DATABASE_URL"].startswith(f"{leader}/statelab_ledger?")
    assert env["SHARD_URLS"].count("target_session_attrs=read-write") == 4
    assert env["REDIS_URL"] == "redis://127.0.0.1:3/0"
    assert env["CELERY_BROKER_URL"] == "redis://127.0.0.1:3/1"
    assert env["STATELAB_PATRONI_URLS"].split(",") == [
        f"http://127.0.0.1:{port}" for port in (20, 21, 22)
    ]
    assert env["STATELAB_ETCD_URLS"].split(",") == [
        f"http://127.0.0.1:{port}" for port in (30, 31, 32)
    ]


def test_the_replica_urls_reach_two_different_standbys_wherever_the_leader_is() -> None:
    """Each replica alias tries its hosts in order for the first standby: with any one member
    leading, the aliases' first standbys differ."""
    orders = config.standby_orders([10, 11, 12])

    first_standbys = [
        [next(port for port in order if port != leader) for order in orders]
        for leader in (10, 11, 12)
    ]

    assert len(orders) == 2
    assert all(len(set(standbys)) == 2 for standbys in first_standbys)


def test_the_default_groups_are_redis_and_the_cluster() -> None:
    stack = Stack(StackConfig(), echo=quiet)

    assert [(c.name, c.group) for c in stack.select()] == [
        ("redis", "core"),
        ("etcd_1", "ha"),
        ("etcd_2", "ha"),
        ("etcd_3", "ha"),
        ("patroni_1", "ha"),
        ("patroni_2", "ha"),
        ("patroni_3", "ha"),
    ]


def test_up_creates_every_database_of_the_topology(running: Stack) -> None:
    with running.component("primary").connect() as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}

    assert set(config.database_names(running.config.shard_count).values()) <= existing


def test_a_second_up_reuses_the_running_processes(running: Stack) -> None:
    before = _pids(running)

    running.up()

    assert all(before.values()), before
    assert _pids(running) == before


def test_a_row_written_on_the_primary_appears_on_the_replica(running: Stack) -> None:
    primary, replica = running.component("primary"), running.component("replica_1")
    table = f"t_{uuid.uuid4().hex[:12]}"
    with primary.connect("statelab", autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (note text)")
        conn.execute(f"INSERT INTO {table} VALUES ('written on the primary')")  # noqa: S608
    try:
        wait_replica_caught_up(running)
        with replica.connect("statelab") as conn:
            rows = conn.execute(f"SELECT note FROM {table}").fetchall()  # noqa: S608
    finally:
        with primary.connect("statelab", autocommit=True) as conn:
            conn.execute(f"DROP TABLE {table}")

    assert rows == [("written on the primary",)]


def test_the_replica_refuses_writes(running: Stack) -> None:
    with (
        running.component("replica_1").connect("statelab") as replica,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="read-only"),
    ):
        replica.execute("CREATE TABLE must_not_exist (id int)")


def test_status_reports_every_component_running_and_the_replica_lag(running: Stack) -> None:
    status = running.status()

    assert {name: info["running"] for name, info in status.items()} == {
        "primary": True,
        "replica_1": True,
        "redis": True,
    }
    assert status["replica_1"]["replay_lsn"]
    assert isinstance(status["replica_1"]["lag_bytes"], int)
    assert status["replica_1"]["lag_bytes"] >= 0


def test_down_leaves_no_process_behind(running: Stack) -> None:
    pids = _pids(running)

    running.down()

    assert [pid for pid in pids.values() if pid_alive(pid)] == []
    ports = [component.port for component in running.components]
    assert [port for port in ports if port_open(port)] == []


def test_stopping_one_component_leaves_the_others_running_until_up_restarts_it(running: Stack):
    before = _pids(running)

    running.component("redis").down()
    stopped = {name: info["running"] for name, info in running.status().items()}
    running.up()

    assert stopped == {"primary": True, "replica_1": True, "redis": False}
    assert _pids(running)["primary"] == before["primary"]
    assert running.status()["redis"]["running"]


def test_an_unknown_component_is_refused_with_the_known_names(running: Stack) -> None:
    with pytest.raises(StackError, match="no component 'replica_9'; one of primary, replica_1"):
        running.component("replica_9")


# ---- groups --------------------------------------------------------------------------


@pytest.fixture
def grouped(workspace) -> Stack:
    """A stack of listeners: `base` (default) with `anchor`; `extra` with `leaf`, which
    depends on `anchor`; `other` with `loner`."""
    ports = iter(free_ports(3))

    def base(space, _config):
        return [Listener(space, name="anchor", port=next(ports))]

    def extra(space, _config):
        leaf = Listener(space, name="leaf", port=next(ports))
        leaf.depends_on = ("anchor",)
        return [leaf]

    def other(space, _config):
        return [Listener(space, name="loner", port=next(ports))]

    groups = {
        "base": Group("base", base, default=True),
        "extra": Group("extra", extra, default=False),
        "other": Group("other", other, default=False),
    }
    stack = Stack(
        StackConfig(base_dir=workspace.base_dir),
        honor_given_urls=False,
        echo=quiet,
        groups=groups,
    )
    yield stack
    stack.down()


def _running(stack: Stack) -> dict[str, bool]:
    return {c.name: c.status()["running"] for c in stack.components}


def test_up_without_groups_starts_the_default_groups_only(grouped: Stack) -> None:
    grouped.up()

    assert _running(grouped) == {"anchor": True, "leaf": False, "loner": False}


def test_up_of_a_group_starts_what_its_components_depend_on(grouped: Stack) -> None:
    grouped.up(["extra"])

    assert _running(grouped) == {"anchor": True, "leaf": True, "loner": False}


def test_down_of_a_group_stops_that_group_only(grouped: Stack) -> None:
    grouped.up(["all"])

    grouped.down(["extra"])

    assert _running(grouped) == {"anchor": True, "leaf": False, "loner": True}


def test_down_without_groups_stops_every_group(grouped: Stack) -> None:
    grouped.up(["all"])

    grouped.down()

    assert _running(grouped) == {"anchor": False, "leaf": False, "loner": False}


def test_status_without_groups_reports_the_default_groups(grouped: Stack) -> None:
    assert list(grouped.status()) == ["anchor"]


def test_an_unknown_group_is_refused_with_the_known_ones(grouped: Stack) -> None:
    with pytest.raises(StackError, match="no group 'nope'; one of base, extra, other, all"):
        grouped.up(["nope"])


def test_purging_a_group_deletes_its_data_and_keeps_the_others(grouped: Stack) -> None:
    grouped.up(["all"])

    grouped.down(["other"], purge=True)

    assert grouped.component("anchor").data_dir.exists()
    assert not grouped.component("loner").data_dir.exists()


def test_purging_refuses_a_directory_that_is_not_a_stack(scratch_dir) -> None:
    foreign = scratch_dir / "not-a-stack"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    stack = Stack(StackConfig(base_dir=foreign), honor_given_urls=False, echo=quiet)

    with pytest.raises(StackError, match="refusing to purge"):
        stack.down(purge=True)

    assert (foreign / "precious.txt").read_text() == "keep me"


def test_the_registered_groups_build_without_clashing_component_names() -> None:
    stack = Stack(StackConfig(), echo=quiet, groups=GROUPS)

    assert len({c.name for c in stack.components}) == len(stack.components)


# ---- the command line ----------------------------------------------------------------


def _devstack(*args: str, stack_dir) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            *config.POSTGRES_VARIABLES,
            *config.REDIS_VARIABLES,
            *config.ETCD_VARIABLES,
            *config.PATRONI_VARIABLES,
        }
    }
    environment["STATELAB_STACK_DIR"] = str(stack_dir)
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_status_of_a_stopped_stack_lists_every_default_component_and_exits_3(scratch_dir):
    result = _devstack("status", stack_dir=scratch_dir / "stack")

    rows = [line.split()[:2] for line in result.stdout.splitlines()[1:]]
    assert result.returncode == 3
    assert rows == [
        [name, "no"]
        for name in ("redis", "etcd_1", "etcd_2", "etcd_3", "patroni_1", "patroni_2", "patroni_3")
    ]


def test_the_command_line_names_an_unknown_group(scratch_dir) -> None:
    result = _devstack("up", "--group", "nope", stack_dir=scratch_dir / "stack")

    assert result.returncode == 1
    assert "devstack: stack: no group 'nope'" in result.stderr
