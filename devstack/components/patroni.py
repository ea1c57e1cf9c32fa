"""A Patroni member: the manager of one Postgres server of a cluster whose leader is elected
in etcd. Patroni runs the pgserver wheel's binaries: initdb on the member that bootstraps the
cluster, pg_basebackup on the others, pg_rewind when a former leader rejoins."""

import base64
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

from devstack import config, process
from devstack.binaries import postgres_bin_dir
from devstack.components.base import PythonDaemon
from devstack.components.etcd import etcd_healthy
from devstack.errors import StackError
from devstack.workspace import Workspace

HTTP_TIMEOUT_S = 2.0
LEADER_TIMEOUT_S = 90

#: Patroni's timings (dynamic configuration). ttl is the leader key's lease: the longest a
#: dead leader keeps it (20 s is Patroni's minimum); loop_wait the pause between HA cycles;
#: retry_timeout how long etcd or Postgres may fail before Patroni demotes. Patroni's rule:
#: loop_wait + 2 * retry_timeout <= ttl. primary_start_timeout 0: a leader whose Postgres
#: crashed is failed over at once rather than restarted in place.
TIMINGS = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3, "primary_start_timeout": 0}

#: Settings every member must share (Patroni keeps them in the dynamic configuration). Small:
#: max_connections counts the web workers' threads, the Celery workers, beat, the test
#: processes and their aliases on the leader (default, accounts, ledger, four shards each).
SHARED_PARAMETERS = {
    "max_connections": 200,
    "max_wal_senders": 10,
    "max_replication_slots": 10,
    "max_worker_processes": 8,
    "wal_level": "replica",
    "hot_standby": "on",
    "wal_log_hints": "on",
    "wal_keep_size": "256MB",
    "synchronous_commit": "on",
}


def patroni_request(
    url: str,
    method: str = "GET",
    body: dict | None = None,
    *,
    timeout: float = HTTP_TIMEOUT_S,
) -> tuple[int, Any]:
    """One call to a Patroni REST API: (status, parsed JSON or text). Unsafe methods carry
    the stack's credentials (the API requires them)."""
    headers = {"Content-Type": "application/json"}
    if method != "GET":
        credentials = f"{config.PG_USER}:{config.PG_PASSWORD}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
    request = urllib.request.Request(  # noqa: S310 - http to the stack's members
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


class PatroniMember(PythonDaemon):
    """One member of the Patroni cluster ``config.HA_SCOPE``: Patroni (run by this project's
    interpreter) on its REST port `api_port`, managing Postgres on 127.0.0.1:`port` in
    <base>/<name>/pgdata.

    The member that finds no cluster in etcd bootstraps it (initdb with the stack's
    credentials, SCRAM over TCP); the others clone the leader. After the member is up, the
    service's databases are created on the leader if missing. `apply_delay_ms` delays this
    member's replay while it is a standby (``set_apply_delay`` changes it at run time).
    """

    given_by = "DATABASE_URL"
    port_variable = "STATELAB_HA_PG_PORT"
    readiness = "run Postgres (Patroni /health)"
    start_timeout_s = 120
    stop_timeout_s = 60

    def __init__(
        self,
        workspace: Workspace,
        *,
        name: str,
        port: int,
        api_port: int,
        etcd_urls: Sequence[str],
        databases: Sequence[str] = (),
        etcd_members: Sequence[str] = (),
        apply_delay_ms: int = 0,
    ) -> None:
        super().__init__(workspace, name=name, port=port)
        self.api_port = api_port
        self.etcd_urls = list(etcd_urls)
        self.databases = tuple(databases)
        self.apply_delay_ms = apply_delay_ms
        self.depends_on = tuple(etcd_members)

    # ---- where things are --------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://{config.HOST}:{self.api_port}"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "patroni.yml"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "socket"

    # ---- the configuration -----------------------------------------------------------

    def patroni_config(self) -> dict[str, Any]:
        """Patroni's configuration (YAML is a superset of JSON: written as JSON)."""
        credentials = {"username": config.PG_USER, "password": config.PG_PASSWORD}
        hba = [
            "local all all trust",
            f"host all all {config.HOST}/32 scram-sha-256",
            f"host replication all {config.HOST}/32 scram-sha-256",
        ]
        local_parameters: dict[str, Any] = {
            "unix_socket_directories": str(self.socket_dir),
            "shared_buffers": "64MB",
            "logging_collector": "off",
            "hot_standby_feedback": "on",
            "max_standby_streaming_delay": "5s",
            # the leader's view of replay_lsn is only as fresh as the standby's last report
            "wal_receiver_status_interval": "1s",
            "wal_retrieve_retry_interval": "1s",
        }
        if self.apply_delay_ms:
            # this member's own delay; else the cluster's (dynamic configuration) applies
            local_parameters["recovery_min_apply_delay"] = f"{self.apply_delay_ms}ms"
        return {
            "scope": config.HA_SCOPE,
            "namespace": "/statelab/",
            "name": self.name,
            "log": {"level": "WARNING", "format": "%(asctime)s %(levelname)s: %(message)s"},
            "restapi": {
                "listen": f"{config.HOST}:{self.api_port}",
                "connect_address": f"{config.HOST}:{self.api_port}",
                "authentication": credentials,
            },
            "etcd3": {
                "hosts": [url.removeprefix("http://") for url in self.etcd_urls],
                "protocol": "http",
            },
            "bootstrap": {
                "dcs": {
                    **TIMINGS,
                    "maximum_lag_on_failover": 1024 * 1024,
                    "synchronous_mode": False,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "parameters": SHARED_PARAMETERS,
                    },
                },
                "initdb": [
                    {"encoding": "UTF8"},
                    {"locale": "C"},
                    {"auth-host": "scram-sha-256"},
                    {"auth-local": "trust"},
                ],
            },
            "postgresql": {
                "listen": f"{config.HOST}:{self.port}",
                "connect_address": f"{config.HOST}:{self.port}",
                "data_dir": str(self.pgdata),
                "bin_dir": str(postgres_bin_dir()),
                "pgpass": str(self.data_dir / "pgpass"),
                "use_unix_socket": True,
                "authentication": {
                    "superuser": credentials,
                    "replication": credentials,
                    "rewind": credentials,
                },
                "pg_hba": hba,
                # a clone asks the leader for a checkpoint: now, not spread over minutes
                "basebackup": [{"checkpoint": "fast"}],
                "parameters": local_parameters,
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False},
        }

    def write_config(self) -> bool:
        """Write patroni.yml when it changed; True then."""
        text = json.dumps(self.patroni_config(), indent=2) + "\n"
        if self.config_path.exists() and self.config_path.read_text() == text:
            return False
        self.config_path.write_text(text)
        self.config_path.chmod(0o600)
        self.workspace.account(self.binary.parent).own(self.config_path)
        return True

    def command(self) -> list[str]:
        return [str(self.binary), "-m", "patroni", str(self.config_path)]

    # ---- up, ready, down ---------------------------------------------------------------

    def ready(self) -> bool:
        try:
            status, _ = patroni_request(self.api_url + "/health")
        except OSError:
            return False
        return status == 200

    def _up(self) -> None:
        if not etcd_healthy(self.etcd_urls):
            raise StackError(
                self.name,
                f"etcd has no quorum at {', '.join(self.etcd_urls)}: start the etcd members "
                "first (`python -m devstack up --group ha`)",
            )
        account = self.workspace.account(self.binary.parent)
        self.workspace.account(postgres_bin_dir())
        self.data_dir.mkdir(exist_ok=True)
        self.data_dir.chmod(0o700)
        account.own(self.data_dir)
        self.socket_dir.mkdir(exist_ok=True)
        self.socket_dir.chmod(0o700)
        account.own(self.socket_dir)
        changed = self.write_config()
        if changed and self.pid() is not None:
            self.reload()
        super()._up()
        self.databases_ensure()

    def reload(self) -> None:
        """Make Patroni re-read patroni.yml (SIGHUP)."""
        pid = self.pid()
        if pid is not None:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)

    def set_apply_delay(self, delay_ms: int) -> None:
        """This member's replay delay while it is a standby, applied by Patroni at run time
        (patroni.yml rewritten, Patroni reloaded; Postgres reloads, no restart)."""
        self.apply_delay_ms = max(0, int(delay_ms))
        if self.write_config():
            self.reload()

    def databases_ensure(self) -> None:
        """Create the service's databases on the leader if missing (once per cluster)."""
        if not self.databases:
            return
        deadline = time.monotonic() + LEADER_TIMEOUT_S
        while True:
            try:
                with self.leader_connection() as conn:
                    existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
                    for name in self.databases:
                        if name not in existing:
                            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                            self.echo(f"created database {name} on the leader")
                return
            except psycopg.Error as error:
                if time.monotonic() > deadline:
                    raise StackError(
                        self.name,
                        f"could not create the databases on the leader: {error}",
                        log_path=self.log_path,
                    ) from None
                time.sleep(0.5)

    def leader_connection(self) -> psycopg.Connection:
        """A connection to whichever member leads (libpq finds it: read-write)."""
        hosts = ",".join(config.HOST for _ in self.cluster_ports())
        ports = ",".join(str(port) for port in self.cluster_ports())
        return psycopg.connect(
            host=hosts,
            port=ports,
            user=config.PG_USER,
            password=config.PG_PASSWORD,
            dbname="postgres",
            target_session_attrs="read-write",
            connect_timeout=3,
            autocommit=True,
        )

    def cluster_ports(self) -> list[int]:
        """The Postgres ports of every member, as the cluster knows them (else this one)."""
        try:
            status, body = patroni_request(self.api_url + "/cluster")
        except OSError:
            return [self.port]
        if status != 200 or not isinstance(body, dict):
            return [self.port]
        return [int(member["port"]) for member in body.get("members", [])] or [self.port]

    def postmaster_pid(self) -> int | None:
        """The pid of the Postgres server this member runs (postmaster.pid), when alive."""
        return process.read_pid(self.pgdata / "postmaster.pid")

    def kill_postmaster(self) -> int | None:
        """SIGKILL of this member's postmaster (Patroni lives on and reacts); its pid."""
        pid = self.postmaster_pid()
        if pid is not None:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pid

    def pause(self) -> list[int]:
        """Freeze the member (SIGSTOP): Patroni, the postmaster and each of its children
        (backends, walsenders, ...: each leads a session of its own, so no group signal
        reaches them all), as a machine that stops answering without dying. Returns the
        pids signalled."""
        return self._signal_all(signal.SIGSTOP)

    def resume(self) -> list[int]:
        """SIGCONT to everything ``pause`` stopped (and what the postmaster has now)."""
        return self._signal_all(signal.SIGCONT)

    def _signal_all(self, signum: int) -> list[int]:
        pids = []
        postmaster = self.postmaster_pid()
        if postmaster is not None:
            pids.append(postmaster)
            with suppress(psutil.Error):
                pids += [child.pid for child in psutil.Process(postmaster).children()]
        patroni = self.pid()
        if patroni is not None:
            pids.append(patroni)
        signalled = []
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signum)
                signalled.append(pid)
        return signalled

    # ---- status ------------------------------------------------------------------------

    def status_details(self, pid: int | None) -> dict[str, Any]:
        """Role, state, timeline and lag as Patroni reports this member."""
        details: dict[str, Any] = {
            "role": None,
            "state": None,
            "timeline": None,
            "postmaster_pid": self.postmaster_pid(),
        }
        if pid is None:
            return details
        try:
            _, body = patroni_request(self.api_url + "/patroni")
        except OSError as error:
            return {**details, "error": str(error)}
        if isinstance(body, dict):
            details.update(
                role=body.get("role"), state=body.get("state"), timeline=body.get("timeline")
            )
        return details

    def describe(self) -> str:
        return f"{super().describe()} (Postgres), Patroni API :{self.api_port}"
