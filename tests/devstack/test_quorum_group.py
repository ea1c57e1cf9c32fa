"""The quorum group's composition (no process is started here; tests/quorum runs it)."""

from devstack import config
from devstack.components import LinkProxy, StorageNode
from devstack.config import StackConfig
from devstack.stack import Stack
from tests.devstack.conftest import quiet


def _stack() -> Stack:
    return Stack(
        StackConfig(quorum_nodes=5, quorum_port=40100, quorum_proxy_port=40200), echo=quiet
    )


def test_the_quorum_group_is_not_started_by_default():
    assert not {component.group for component in _stack().select()} & {"quorum"}


def test_the_quorum_group_has_five_storage_nodes_and_their_proxy():
    components = _stack().select(["quorum"])

    nodes = [c for c in components if isinstance(c, StorageNode)]
    (proxy,) = [c for c in components if isinstance(c, LinkProxy)]
    assert [(node.name, node.port) for node in nodes] == [
        (f"quorum_n{i}", 40100 + i - 1) for i in range(1, 6)
    ]
    assert proxy.port == 40200
    assert proxy.routes == {f"n{i}": (40200 + i, 40100 + i - 1) for i in range(1, 6)}


def test_the_embedded_node_urls_go_through_the_proxy_routes():
    urls = config.embedded_env(quorum_nodes=5, quorum_proxy_port=40200)["QUORUM_NODE_URLS"]

    assert [url.rsplit(":", 1)[1] for url in urls.split(",")] == [
        f"{40200 + i}/{config.QUORUM_DATABASE}" for i in range(1, 6)
    ]


def test_the_nodes_and_the_proxy_are_not_started_when_the_node_urls_are_given(monkeypatch):
    monkeypatch.setenv("QUORUM_NODE_URLS", "postgres://u:p@elsewhere:5432/q")

    assert all(component.given for component in _stack().select(["quorum"]))
