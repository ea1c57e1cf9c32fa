"""The link proxy as a real process: bytes pass, a delay is felt, a cut severs and refuses."""

import socket
import time
from collections.abc import Iterator

import pytest

from devstack.components import LinkProxy
from devstack.workspace import Workspace
from tests.devstack.conftest import free_ports

pytestmark = pytest.mark.stack

ECHO_SERVER = """
import socket, sys, threading
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
def echo(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
while True:
    conn, _ = server.accept()
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
"""


@pytest.fixture
def echo_port(make_listener) -> int:
    listener = make_listener(name="echo", code=ECHO_SERVER)
    listener.up()
    return listener.port


def _started_proxy(workspace: Workspace, echo_port: int, **options) -> LinkProxy:
    control, listen = free_ports(2)
    component = LinkProxy(
        workspace, name="links", port=control, routes={"a->b": (listen, echo_port)}, **options
    )
    component.up()
    return component


@pytest.fixture
def proxy(workspace: Workspace, echo_port: int) -> Iterator[LinkProxy]:
    component = _started_proxy(workspace, echo_port)
    yield component
    component.down()


HOLD_MS = 400


@pytest.fixture
def holding_proxy(workspace: Workspace, echo_port: int) -> Iterator[LinkProxy]:
    """A proxy that holds a new connection to a cut route HOLD_MS before resetting it."""
    component = _started_proxy(workspace, echo_port, refuse_after_ms=HOLD_MS)
    yield component
    component.down()


def _round_trip(port: int, payload: bytes = b"ping") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(payload)
        received = b""
        while len(received) < len(payload):
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        return received


def _send_and_receive(conn: socket.socket, data: bytes) -> bytes:
    """What comes back for `data` on an open connection; b"" when the connection is gone."""
    try:
        conn.sendall(data)
        return conn.recv(len(data))
    except (ConnectionResetError, BrokenPipeError):
        return b""


def _listen_port(proxy: LinkProxy) -> int:
    return proxy.routes["a->b"][0]


def test_bytes_pass_through_a_route_unchanged(proxy):
    payload = bytes(range(256)) * 1000

    assert _round_trip(_listen_port(proxy), payload) == payload


def test_status_reports_each_route_and_what_it_forwarded(proxy):
    _round_trip(_listen_port(proxy))

    route = proxy.status()["routes"]["a->b"]

    assert (route["delay_ms"], route["cut"], route["connections_total"]) == (0, False, 1)
    assert route["bytes_forwarded"] == 8


def test_a_delay_holds_every_chunk_in_each_direction(proxy):
    proxy.control().set("a->b", delay_ms=150)

    started = time.monotonic()
    _round_trip(_listen_port(proxy))

    assert time.monotonic() - started >= 0.3


def test_a_cut_route_refuses_new_connections(proxy):
    proxy.control().set("a->b", cut=True)

    assert _round_trip(_listen_port(proxy)) == b""
    assert proxy.control().status()["a->b"]["refused_total"] == 1


def test_a_cut_route_holds_a_new_connection_before_resetting_it(holding_proxy):
    holding_proxy.control().set("a->b", cut=True)

    started = time.monotonic()
    answer = _round_trip(_listen_port(holding_proxy))

    assert (answer, time.monotonic() - started >= HOLD_MS / 1000) == (b"", True)
    assert holding_proxy.control().status()["a->b"]["refused_total"] == 1


def test_a_connection_held_while_cut_is_carried_when_the_route_heals(holding_proxy):
    holding_proxy.control().set("a->b", cut=True)
    with socket.create_connection(("127.0.0.1", _listen_port(holding_proxy)), timeout=5) as conn:
        conn.sendall(b"ping")

        holding_proxy.control().set("a->b", cut=False)

        assert conn.recv(4) == b"ping"
    assert holding_proxy.control().status()["a->b"]["refused_total"] == 0


def test_a_cut_severs_the_open_connections(proxy):
    with socket.create_connection(("127.0.0.1", _listen_port(proxy)), timeout=5) as conn:
        conn.sendall(b"x")
        assert conn.recv(1) == b"x"

        proxy.control().set("a->b", cut=True)

        assert _send_and_receive(conn, b"y") == b""


def test_a_healed_route_carries_bytes_again(proxy):
    proxy.control().set("a->b", cut=True)

    proxy.control().set("a->b", cut=False)

    assert _round_trip(_listen_port(proxy)) == b"ping"


def test_a_bad_setting_is_refused_and_changes_nothing(proxy):
    with pytest.raises(ValueError, match="delay_ms"):
        proxy.control().set("a->b", delay_ms=-1)

    assert proxy.control().status()["a->b"]["delay_ms"] == 0


def test_an_unknown_route_is_refused(proxy):
    with pytest.raises(ValueError, match="unknown route"):
        proxy.control().set("nowhere", cut=True)


def test_down_stops_the_proxy(proxy):
    proxy.down()

    assert proxy.status()["running"] is False


def test_jitter_holds_each_chunk_a_random_share_more_than_the_delay(proxy):
    proxy.control().set("a->b", delay_ms=20, jitter_ms=200)
    durations = []
    for _ in range(8):
        started = time.monotonic()
        _round_trip(_listen_port(proxy))
        durations.append(time.monotonic() - started)

    assert min(durations) >= 0.04
    assert max(durations) - min(durations) > 0.05
    assert proxy.control().status()["a->b"]["jitter_ms"] == 200


def test_a_route_may_target_another_host():
    from devstack.linkproxy import parse_route

    route = parse_route("n1=6001:quorum-n1:5432")

    assert (route.listen_port, route.target_host, route.target_port) == (6001, "quorum-n1", 5432)
    assert parse_route("n2=6002:5432").target_host == "127.0.0.1"
