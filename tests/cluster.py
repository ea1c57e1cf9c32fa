"""The embedded Patroni cluster, for tests that stop, kill or pause its members: which member
leads, which ones are standbys, which member a replica alias reaches now, and waits for the
cluster to settle."""

from __future__ import annotations

import time

from django.db import connections

from devstack.components import PatroniMember
from devstack.stack import default_stack
from ha.errors import HaUnavailable
from ha.patroni import Member, patroni_client

SETTLE_TIMEOUT_S = 90


def members() -> list[Member]:
    return patroni_client().cluster()


def leader() -> Member | None:
    return next((member for member in members() if member.is_leader), None)


def standbys() -> list[Member]:
    return [member for member in members() if not member.is_leader]


def component(name: str) -> PatroniMember:
    """The stack's component that runs member ``name``."""
    found = default_stack().component(name)
    assert isinstance(found, PatroniMember)
    return found


def member_behind(alias: str) -> str:
    """The member a database alias is connected to now (by the server's port)."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT inet_server_port()")
        port = cursor.fetchone()[0]
    return next(member.name for member in members() if member.port == port)


def cluster_settled(count: int = 3, timeout_s: float = SETTLE_TIMEOUT_S) -> Member:
    """Until one member leads and the others stream from it on its timeline; the leader."""
    deadline = time.monotonic() + timeout_s
    seen: list[Member] = []
    while time.monotonic() < deadline:
        try:
            seen = members()
        except HaUnavailable:
            time.sleep(0.2)
            continue
        leaders = [member for member in seen if member.is_leader and member.state == "running"]
        streaming = [
            member
            for member in seen
            if not member.is_leader
            and member.state == "streaming"
            and leaders
            and member.timeline == leaders[0].timeline
        ]
        if len(leaders) == 1 and len(streaming) == count - 1:
            return leaders[0]
        time.sleep(0.2)
    raise AssertionError(f"the cluster did not settle in {timeout_s} s: {seen}")
