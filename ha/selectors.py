"""Reads of the cluster: its mode, leader, members, timeline history, and etcd's members."""

from __future__ import annotations

from typing import Any

from ha.errors import HaUnavailable
from ha.etcd import etcd_client
from ha.modes import mode_of, synchronous_commit_of
from ha.patroni import Member, patroni_client
from ha.transport import MemberError


def _member_view(member: Member) -> dict[str, Any]:
    return {
        "name": member.name,
        "role": member.role,
        "state": member.state,
        "timeline": member.timeline,
        "lag_bytes": 0 if member.is_leader else member.lag_bytes,
        "synchronous": member.is_synchronous,
        "host": member.host,
        "port": member.port,
        "receive_lsn": member.receive_lsn,
        "replay_lsn": member.replay_lsn,
    }


def _history_view(entries: list[list[Any]]) -> list[dict[str, Any]]:
    """Patroni's ``/history``: which timeline ended where, when, and who took over."""
    history = []
    for entry in entries:
        padded = [*entry, None, None, None, None, None][:5]
        timeline, switch_lsn, reason, at, new_leader = padded
        history.append(
            {
                "timeline": timeline,
                "switch_lsn": switch_lsn,
                "reason": reason,
                "at": at,
                "new_leader": new_leader,
            }
        )
    return history


def ha_status(*, with_etcd: bool = True) -> dict[str, Any]:
    """The cluster now: ``mode``, ``leader``, ``timeline``, ``members`` (name, role, state,
    timeline, lag in bytes), the timeline ``history``, and etcd's members (Raft term, index,
    who leads) when ``with_etcd``."""
    client = patroni_client()
    members = client.cluster()
    config = client.dynamic_config()
    leader = next((member for member in members if member.is_leader), None)
    try:
        history = _history_view(client.history())
    except HaUnavailable:
        history = []
    status: dict[str, Any] = {
        "mode": mode_of(config),
        "sync_node_count": int(config.get("synchronous_node_count", 1)),
        "synchronous_commit": synchronous_commit_of(config),
        "leader": leader.name if leader is not None else None,
        "timeline": leader.timeline if leader is not None else None,
        "members": [_member_view(member) for member in members],
        "history": history,
        "ttl": config.get("ttl"),
        "loop_wait": config.get("loop_wait"),
    }
    if with_etcd:
        status["etcd"] = etcd_members()
    return status


def etcd_members() -> list[dict[str, Any]]:
    """Each etcd member's status (reachable or not), for the status and the Lab."""
    try:
        return etcd_client().members_status()
    except (HaUnavailable, MemberError) as error:
        return [{"ok": False, "error": str(error)}]
