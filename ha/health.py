"""The cluster's part of ``/readyz``: its members, roles, timeline and lag; etcd's quorum."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from ha.errors import HaUnavailable
from ha.etcd import EtcdClient
from ha.patroni import PatroniClient
from ha.transport import MemberError

TIMEOUT_S = 1.0


def ha_readiness() -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {}
    if settings.PATRONI_URLS:
        client = PatroniClient(
            settings.PATRONI_URLS, credentials=settings.PATRONI_CREDENTIALS, timeout=TIMEOUT_S
        )
        try:
            members = client.cluster()
        except HaUnavailable as error:
            checks["ha:cluster"] = {"ok": False, "error": error.detail}
        else:
            leader = next((member for member in members if member.is_leader), None)
            checks["ha:cluster"] = {
                "ok": leader is not None and leader.state == "running",
                "leader": leader.name if leader else None,
                "timeline": leader.timeline if leader else None,
                "members": [
                    {
                        "name": member.name,
                        "role": member.role,
                        "state": member.state,
                        "timeline": member.timeline,
                        "lag_bytes": 0 if member.is_leader else member.lag_bytes,
                    }
                    for member in members
                ],
            }
    if settings.ETCD_URLS:
        try:
            etcd_members = EtcdClient(settings.ETCD_URLS, timeout=TIMEOUT_S).members_status()
        except (HaUnavailable, MemberError) as error:
            etcd_members = [{"ok": False, "error": str(error)}]
        up = [member for member in etcd_members if member["ok"]]
        checks["etcd"] = {
            "ok": len(up) * 2 > len(settings.ETCD_URLS),
            "members": [
                {
                    key: member.get(key)
                    for key in ("url", "ok", "is_leader", "raft_term", "revision", "error")
                    if key in member
                }
                for member in etcd_members
            ],
        }
    return checks
