"""Postgres servers from the pgserver wheel's binaries: a generic server and the primary."""

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from devstack import config, process
from devstack.accounts import Account
from devstack.binaries import postgres_bin_dir
from devstack.components.base import Component
from devstack.errors import StackError
from devstack.pgconf import quote, write_if_changed, write_managed_block
from devstack.workspace import Workspace

PG_TIMEOUT_S = 60
HBA = (
    "# devstack: TCP from localhost only, password (SCRAM) required\n"
    f"host all all {config.HOST}/32 scram-sha-256\n"
    f"host replication all {config.HOST}/32 scram-sha-256\n"
)


def connect(port: int, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection:
    """A psycopg connection to one of the stack's servers, as the stack's Postgres user."""
    return psycopg.connect(
        host=config.HOST,
        port=port,
        user=config.PG_USER,
        password=config.PG_PASSWORD,
        dbname=dbname,
        connect_timeout=5,
        **kwargs,
    )


class PostgresServer(Component):
    """A Postgres 16 server in data directory <base>/<name>, listening on 127.0.0.1:`port`
    only, password (SCRAM) required, created by initdb, with `databases` created in it.

    postgresql.conf ends with a block of settings the stack manages (the defaults below,
    updated by `settings`, e.g. ``{"wal_level": "logical"}``); `up` rewrites the block and
    reloads a running server whose configuration changed.
    """

    given_by = "DATABASE_URL"

    def __init__(
        self,
        workspace: Workspace,
        *,
        name: str,
        port: int,
        settings: Mapping[str, str] | None = None,
        databases: Sequence[str] = (),
        port_variable: str | None = None,
    ) -> None:
        super().__init__(workspace, name=name, port=port)
        self.settings = dict(settings or {})
        self.databases = tuple(databases)
        self.port_variable = port_variable

    # ---- what the server is ----------------------------------------------------------

    def server_settings(self) -> dict[str, str]:
        """The managed block's settings."""
        return {
            "listen_addresses": quote(config.HOST),
            "port": str(self.port),
            "unix_socket_directories": "''",
            "cluster_name": quote(f"statelab_{self.name}"),
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "wal_keep_size": "'512MB'",
            "hot_standby": "on",
            "max_connections": "300",
            "shared_buffers": "'128MB'",
            "logging_collector": "off",
            **self.settings,
        }

    def describe(self) -> str:
        where = super().describe()
        return f"{where}  databases: {', '.join(self.databases)}" if self.databases else where

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection:
        return connect(self.port, dbname, **kwargs)

    def pid(self) -> int | None:
        return process.read_pid(self.data_dir / "postmaster.pid")

    def running_port(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, ValueError, IndexError):
            return None

    # ---- steps that subclasses refine --------------------------------------------------

    def create(self, bin_dir: Path, account: Account) -> None:
        """Make the data directory (here: initdb)."""
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(mode=0o700)
        account.own(self.data_dir)
        pwfile = self.workspace.run_dir / f"{self.name}-initdb.pw"
        pwfile.write_text(config.PG_PASSWORD + "\n")
        pwfile.chmod(0o600)
        account.own(pwfile)
        argv = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            config.PG_USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        self.echo(f"initdb {self.data_dir}")
        try:
            self.run(argv, account, timeout=PG_TIMEOUT_S + 30)
        except StackError:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise
        finally:
            pwfile.unlink(missing_ok=True)

    def configure(self, account: Account) -> bool:
        """Bring the configuration files up to date; True when one changed."""
        changed = write_managed_block(self.data_dir / "postgresql.conf", self.server_settings())
        changed |= write_if_changed(self.data_dir / "pg_hba.conf", HBA)
        return changed

    def on_ready(self) -> None:
        """After the server runs (started or reused): create the missing databases."""
        if not self.databases:
            return
        try:
            with self.connect(autocommit=True) as conn:
                existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
                for name in self.databases:
                    if name not in existing:
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                        self.echo(f"created database {name}")
        except psycopg.Error as exc:
            raise StackError(
                self.name, f"could not create the databases: {exc}", log_path=self.log_path
            ) from None

    def started_message(self) -> str:
        return f"{self.name} started on {config.HOST}:{self.port}"

    # ---- up and down -----------------------------------------------------------------

    def _pg_ctl(self, bin_dir: Path, account: Account, *args: str) -> None:
        argv = [str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]
        self.run(argv, account, timeout=PG_TIMEOUT_S + 30)

    def _reuse(self, bin_dir: Path, account: Account, *, conf_changed: bool) -> bool:
        """True when the server already runs (then it is reused, reloaded if needed)."""
        pid = self.pid()
        if pid is None:
            return False
        running_port = self.running_port()
        if running_port is not None and running_port != self.port:
            raise StackError(
                self.name,
                f"already running on port {running_port}, but port {self.port} is configured; "
                "run `python -m devstack down` first",
                log_path=self.log_path,
            )
        if conf_changed:
            self._pg_ctl(bin_dir, account, "reload")
        self.echo(f"{self.name} already running on {config.HOST}:{self.port} (pid {pid})")
        return True

    def _up(self) -> None:
        bin_dir = postgres_bin_dir()
        account = self.workspace.account(bin_dir)
        if not (self.data_dir / "PG_VERSION").exists() and self.pid() is None:
            self.create(bin_dir, account)
        changed = self.configure(account)
        if self._reuse(bin_dir, account, conf_changed=changed):
            self.on_ready()
            return
        process.check_port_free(self.name, self.port, self.port_variable)
        self._pg_ctl(
            bin_dir, account, "-l", str(self.log_path), "-w", "-t", str(PG_TIMEOUT_S), "start"
        )
        self.on_ready()
        self.echo(self.started_message())

    def _down(self) -> None:
        pid = self.pid()
        if pid is None:
            self.echo(f"{self.name} not running")
            return
        bin_dir = postgres_bin_dir()
        account = self.workspace.account_of(self.data_dir)
        stop = ("stop", "-w", "-t", str(PG_TIMEOUT_S), "-m")
        try:
            self._pg_ctl(bin_dir, account, *stop, "fast")
        except StackError:
            if self.pid() is None:
                raise
            self.echo(f"{self.name}: fast shutdown failed, trying immediate")
            self._pg_ctl(bin_dir, account, *stop, "immediate")
        if not process.wait_pid_gone(pid, 10):
            raise StackError(
                self.name, f"postmaster pid {pid} still alive after stop", log_path=self.log_path
            )
        self.echo(f"{self.name} stopped (pid {pid})")


class PostgresPrimary(PostgresServer):
    """The primary: every database of the topology (default, accounts, ledger, shards)."""

    def __init__(self, workspace: Workspace, *, port: int, shard_count: int) -> None:
        super().__init__(
            workspace,
            name="primary",
            port=port,
            databases=list(config.database_names(shard_count).values()),
            port_variable="STATELAB_PG_PORT",
        )
        self.shard_count = shard_count
