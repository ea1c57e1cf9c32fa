"""Real processes in temp dirs on free ports; no Django database is involved.

Stack directories are not under pytest's tmp_path: every new pytest session resets that tree
to mode 0700, which would lock the unprivileged user out of a stack started as root.
"""

import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from devstack import config
from devstack.components import Daemon
from devstack.config import StackConfig
from devstack.groups import GROUPS, Group
from devstack.stack import Stack
from devstack.workspace import Workspace

SERVE_FOREVER = """
import socket, sys, time
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    time.sleep(1)
"""


def free_ports(count: int) -> list[int]:
    with ExitStack() as sockets:
        bound = [sockets.enter_context(socket.socket()) for _ in range(count)]
        for sock in bound:
            sock.bind((config.HOST, 0))
        return [sock.getsockname()[1] for sock in bound]


def free_port_block(count: int) -> int:
    """The first of `count` consecutive ports that are all free now (groups that number their
    servers' ports from a base, such as quorum, need a block)."""
    for _ in range(200):
        (base,) = free_ports(1)
        if base + count >= 65536:
            continue
        with ExitStack() as sockets:
            try:
                for port in range(base, base + count):
                    sockets.enter_context(socket.socket()).bind((config.HOST, port))
            except OSError:
                continue
        return base
    raise RuntimeError(f"no block of {count} free ports found")


def quiet(_line: str) -> None:
    """An echo that prints nothing."""


class Listener(Daemon):
    """The smallest long-running program: a Python process that listens on its port."""

    def __init__(self, workspace: Workspace, *, name: str, port: int, code: str = SERVE_FOREVER):
        super().__init__(workspace, name=name, port=port)
        self.code = code

    @property
    def binary(self) -> Path:
        return Path(sys.executable)

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.code, str(self.port)]


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh temp directory, deleted afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="statelab-devstack-test-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    with scratch() as directory:
        yield directory


@pytest.fixture
def workspace(scratch_dir: Path) -> Workspace:
    return Workspace(scratch_dir / "stack", honor_given_urls=False, echo=quiet)


@pytest.fixture
def make_listener(workspace: Workspace) -> Iterator[Callable[..., Listener]]:
    """Builds Listener components (on free ports) and stops them all after the test."""
    made: list[Listener] = []

    def make(name: str = "listener", code: str = SERVE_FOREVER, **attributes: Any) -> Listener:
        component = Listener(workspace, name=name, port=free_ports(1)[0], code=code)
        for attribute, value in attributes.items():
            setattr(component, attribute, value)
        made.append(component)
        return component

    yield make
    for component in made:
        component.down()


#: The plain primary and its streaming replica (group single), then Redis (group core), both
#: started by a plain ``up``: the package's tests of Postgres servers and of the orchestrator.
SINGLE_AND_CORE = {
    "single": Group("single", GROUPS["single"].build, default=True),
    "core": Group("core", GROUPS["core"].build, default=True),
}


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    """The single and core groups (primary, replica_1, redis) in a temp dir on free ports,
    shared by the package's tests and purged at the end."""
    pg_port, replica_port, redis_port = free_ports(3)
    quorum_nodes = StackConfig().quorum_nodes
    with scratch() as base_dir:
        stack = Stack(
            StackConfig(
                base_dir=base_dir / "stack",
                pg_port=pg_port,
                replica_port=replica_port,
                redis_port=redis_port,
                replica_delay_ms=0,
                # Other groups' servers are not started here; their ports must still not be
                # those of a stack running on this machine (tests check ports after down).
                quorum_port=free_port_block(quorum_nodes),
                quorum_proxy_port=free_port_block(quorum_nodes + 1),
            ),
            honor_given_urls=False,
            echo=quiet,
            groups=SINGLE_AND_CORE,
        )
        try:
            stack.up()
            yield stack
        finally:
            stack.down(purge=True)


@pytest.fixture
def running(stack: Stack) -> Stack:
    """The package's stack, (re)started: cheap when it runs, so test order does not matter."""
    stack.up()
    return stack


CATCH_UP_TIMEOUT_S = 15


def wait_replica_caught_up(stack: Stack, replica: str = "replica_1") -> None:
    """Until the replica has replayed what the primary had written when this was called."""
    with stack.component("primary").connect(autocommit=True) as primary:
        (target,) = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    with stack.component(replica).connect(autocommit=True) as conn:
        while True:
            (behind,) = conn.execute(
                "SELECT pg_last_wal_replay_lsn() < %s::pg_lsn", (target,)
            ).fetchone()
            if not behind:
                return
            assert time.monotonic() < deadline, f"{replica} did not replay up to {target}"
            time.sleep(0.05)
