"""The cluster's managers: Patroni's REST API, one per member (``PATRONI_URLS``).

Reads ask the members in turn until one answers; writes (dynamic configuration, switchover)
go to one member, which records them in etcd for every member to apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from ha.errors import HaNotManaged, HaRefused, HaUnavailable
from ha.transport import MemberError, json_request

TIMEOUT_S = 3.0
SWITCHOVER_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Member:
    """One member as the cluster reports it (``GET /cluster``)."""

    name: str
    role: str
    state: str
    host: str
    port: int
    api_url: str
    timeline: int | None
    lag_bytes: int | None
    receive_lsn: str | None = None
    replay_lsn: str | None = None

    @property
    def is_leader(self) -> bool:
        return self.role in {"leader", "master", "primary", "standby_leader"}

    @property
    def is_synchronous(self) -> bool:
        return self.role in {"sync_standby", "quorum_standby"}

    @classmethod
    def from_cluster(cls, data: dict[str, Any]) -> Member:
        lag = data.get("lag")
        return cls(
            name=str(data.get("name", "")),
            role=str(data.get("role", "")),
            state=str(data.get("state", "")),
            host=str(data.get("host", "")),
            port=int(data.get("port") or 0),
            api_url=str(data.get("api_url", "")).removesuffix("/patroni"),
            timeline=int(data["timeline"]) if data.get("timeline") is not None else None,
            lag_bytes=int(lag) if isinstance(lag, int) else None,
            receive_lsn=data.get("receive_lsn"),
            replay_lsn=data.get("replay_lsn"),
        )


class PatroniClient:
    """Patroni's REST API over the members at ``urls``."""

    def __init__(
        self, urls: list[str], *, credentials: tuple[str, str], timeout: float = TIMEOUT_S
    ) -> None:
        if not urls:
            raise HaNotManaged(
                "No Patroni cluster is configured (STATELAB_PATRONI_URLS): this Postgres is "
                "not managed by this service."
            )
        self.urls = list(urls)
        self.credentials = credentials
        self.timeout = timeout

    def _get(self, path: str) -> Any:
        """The first member's answer to GET ``path`` (any member knows the cluster)."""
        errors = []
        for url in self.urls:
            try:
                status, body = json_request(url + path, timeout=self.timeout)
            except MemberError as error:
                errors.append(f"{url}: {error}")
                continue
            if status == 200:
                return body
            errors.append(f"{url}: HTTP {status}")
        raise HaUnavailable("No Patroni member answered: " + "; ".join(errors), members=errors)

    def cluster(self) -> list[Member]:
        """The members as ``GET /cluster`` reports them."""
        body = self._get("/cluster")
        return [Member.from_cluster(member) for member in body.get("members", [])]

    def dynamic_config(self) -> dict[str, Any]:
        return self._get("/config")

    def history(self) -> list[list[Any]]:
        """``[[timeline, switch LSN (bytes), reason, when, new leader], ...]``."""
        body = self._get("/history")
        return body if isinstance(body, list) else []

    def _write(self, method: str, path: str, body: dict, *, timeout: float) -> Any:
        errors = []
        for url in self.urls:
            try:
                status, answer = json_request(
                    url + path,
                    method=method,
                    body=body,
                    timeout=timeout,
                    credentials=self.credentials,
                )
            except MemberError as error:
                errors.append(f"{url}: {error}")
                continue
            if 200 <= status < 300:
                return answer
            if status in {400, 412}:
                raise HaRefused(f"Patroni refused: {answer}", patroni_status=status)
            errors.append(f"{url}: HTTP {status} {answer}")
        raise HaUnavailable("No Patroni member took the change: " + "; ".join(errors))

    def config_patch(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge ``patch`` into the dynamic configuration (every member applies it within a
        loop_wait); returns the new configuration."""
        return self._write("PATCH", "/config", patch, timeout=self.timeout)

    def switchover(self, *, leader: str, candidate: str | None) -> str:
        body = {"leader": leader, **({"candidate": candidate} if candidate else {})}
        return str(self._write("POST", "/switchover", body, timeout=SWITCHOVER_TIMEOUT_S))


def patroni_client() -> PatroniClient:
    return PatroniClient(settings.PATRONI_URLS, credentials=settings.PATRONI_CREDENTIALS)
