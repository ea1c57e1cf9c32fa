"""The quorum store's tests run on real storage nodes: the stack's ``quorum`` group (five
Postgres servers and the link proxy in front of them), started for the session if it did not
run and stopped afterwards if it was started here, with this run's own database on each node
(``test_statelab_quorum<suffix>``, see config/settings/test.py), dropped at the end.

Every test leaves the nodes as it found them: all up, no delay, no cut (``nodes_restored``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from quorum.client import health, node_call, pools_close
from quorum.conf import conf
from quorum.control import node_state_set, nodes_list
from quorum.services import quorum_schema_setup
from quorum.storage import StoredVersion, hints_read, versions_read

NODE_START_TIMEOUT_S = 120


def _admin_connect(name: str) -> psycopg.Connection:
    address = conf().node(name)
    return psycopg.connect(
        **address.with_database("postgres").conninfo(), autocommit=True, connect_timeout=10
    )


@pytest.fixture(scope="session")
def quorum_nodes() -> Iterator[None]:
    """The nodes running and this run's database on each, with the schema; afterwards the
    database dropped and the group stopped if this session started it."""
    if conf().node_control != "processes":
        pytest.skip("the quorum tests stop and freeze node processes: embedded nodes only")
    from devstack.stack import default_stack

    stack = default_stack(echo=lambda _line: None)
    components = stack.select(["quorum"])
    started_here = any(component.pid() is None for component in components)
    stack.up(["quorum"])
    for name in conf().node_names:
        node_state_set(node=name, state="up")
    database = conf().nodes[0].dbname
    for name in conf().node_names:
        with _admin_connect(name) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    assert set(quorum_schema_setup().values()) == {"ok"}
    yield
    pools_close()
    for name in conf().node_names:
        with contextlib.suppress(Exception):
            node_state_set(node=name, state="up")
        with contextlib.suppress(psycopg.Error), _admin_connect(name) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
    if started_here:
        stack.down(["quorum"])


@pytest.fixture
def nodes_restored(quorum_nodes) -> Iterator[None]:
    """Every node up (no delay, no cut, running) before and after the test, and this process's
    view of the nodes' health forgotten."""
    _all_up()
    yield
    _all_up()


def _all_up() -> None:
    for state in nodes_list():
        if state.state != "up":
            node_state_set(node=state.name, state="up")
    health().forget()


@pytest.fixture
def key_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def keys_where(prefix: str, count: int, predicate, *, n: int = 3) -> list[str]:
    """`count` keys named ``<prefix>-<i>`` whose preference list (of N) satisfies `predicate`."""
    ring = conf().ring()
    found = []
    index = 0
    while len(found) < count:
        key = f"{prefix}-{index}"
        if predicate(ring.preference_list(key, n)):
            found.append(key)
        index += 1
        assert index < 100_000, "no such keys"
    return found


def stored_on(node: str, key: str) -> list[StoredVersion]:
    """What `node` stores for `key`, read straight from its database."""
    return node_call(conf().node(node), lambda conn: versions_read(conn, key=key), timeout_s=10)


def hints_on(node: str) -> list:
    return node_call(conf().node(node), lambda conn: hints_read(conn, limit=10_000), timeout_s=10)
