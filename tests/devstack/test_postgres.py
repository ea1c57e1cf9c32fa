"""The generic Postgres server component (what the primary and future region or quorum
servers are): its own data directory, port and settings, in a temp dir."""

from collections.abc import Iterator

import pytest

from devstack.components import PostgresServer
from devstack.errors import StackError
from devstack.process import pid_alive, port_open
from devstack.workspace import Workspace
from tests.devstack.conftest import free_ports, quiet, scratch

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with scratch() as base_dir:
        workspace = Workspace(base_dir / "stack", honor_given_urls=False, echo=quiet)
        component = PostgresServer(
            workspace,
            name="region_test",
            port=free_ports(1)[0],
            settings={"wal_level": "logical"},
            databases=["regional"],
        )
        try:
            component.up()
            yield component
        finally:
            component.down()


@pytest.fixture
def up(server: PostgresServer) -> PostgresServer:
    server.up()
    return server


def _show(server: PostgresServer, setting: str) -> str:
    with server.connect() as conn:
        (value,) = conn.execute(f"SHOW {setting}").fetchone()
    return value


def test_up_initialises_and_starts_a_server_on_its_port(up):
    status = up.status()

    assert status == {"given": False, "running": True, "pid": up.pid(), "port": up.port}
    assert (up.data_dir / "PG_VERSION").exists()


def test_the_given_settings_apply(up):
    assert _show(up, "wal_level") == "logical"


def test_the_given_databases_exist(up):
    with up.connect("regional") as conn:
        (name,) = conn.execute("SELECT current_database()").fetchone()

    assert name == "regional"


def test_the_server_listens_on_loopback_tcp_only(up):
    assert _show(up, "listen_addresses") == "127.0.0.1"
    assert _show(up, "unix_socket_directories") == ""


def test_down_stops_the_server(up):
    pid = up.pid()

    up.down()

    assert not pid_alive(pid)
    assert not port_open(up.port)
    assert up.status()["running"] is False


def test_data_survives_down_and_up(up):
    with up.connect("regional", autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (note text)")
        conn.execute("TRUNCATE kept")
        conn.execute("INSERT INTO kept VALUES ('still here')")

    up.down()
    up.up()

    with up.connect("regional") as conn:
        assert conn.execute("SELECT note FROM kept").fetchall() == [("still here",)]


def test_a_changed_setting_reloads_the_running_server_without_a_restart(up):
    pid = up.pid()
    up.settings["work_mem"] = "'7MB'"
    try:
        up.up()
        applied = _show(up, "work_mem")
    finally:
        del up.settings["work_mem"]
        up.up()

    assert applied == "7MB"
    assert up.pid() == pid


def test_up_refuses_a_running_server_configured_for_another_port(up):
    moved = PostgresServer(up.workspace, name=up.name, port=free_ports(1)[0])

    with pytest.raises(StackError, match=f"already running on port {up.port}"):
        moved.up()


def test_logs_show_the_server_ready(up):
    assert "database system is ready to accept connections" in up.logs(50)
