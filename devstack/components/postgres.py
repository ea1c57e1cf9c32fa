"""Postgres servers from the pgserver wheel's binaries: a generic server, the primary, and a
streaming replica of another server."""

import shutil
import time
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
from devstack.pgconf import drop_auto_setting, quote, write_if_changed, write_managed_block
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


class StreamingReplica(PostgresServer):
    """A hot standby of `primary`: cloned by pg_basebackup through its own replication slot
    (``statelab_<name>``), streaming, replaying each record `apply_delay_ms` after its commit.

    `up` on a running replica with another `apply_delay_ms` reloads it with the new delay (no
    restart), and drops an ALTER SYSTEM value so that the configured delay applies again.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        name: str,
        port: int,
        primary: PostgresServer,
        apply_delay_ms: int = 0,
        port_variable: str | None = None,
    ) -> None:
        super().__init__(workspace, name=name, port=port, port_variable=port_variable)
        self.primary = primary
        self.apply_delay_ms = apply_delay_ms
        self.slot_name = f"statelab_{name}"
        self.depends_on = (primary.name,)

    def server_settings(self) -> dict[str, str]:
        conninfo = (
            f"host={config.HOST} port={self.primary.port} user={config.PG_USER} "
            f"password={config.PG_PASSWORD} application_name={self.slot_name}"
        )
        return {
            **super().server_settings(),
            "primary_conninfo": quote(conninfo),
            "primary_slot_name": quote(self.slot_name),
            "hot_standby_feedback": "on",
            "recovery_min_apply_delay": f"'{self.apply_delay_ms}ms'",
            "max_standby_streaming_delay": "'5s'",
            # the primary's view of replay_lsn is only as fresh as the standby's last report
            "wal_receiver_status_interval": "'1s'",
            "wal_retrieve_retry_interval": "'1s'",
        }

    def describe(self) -> str:
        return f"{super().describe()}  apply delay {self.apply_delay_ms} ms"

    def started_message(self) -> str:
        return (
            f"{super().started_message()}, streaming from the {self.primary.name} "
            f"(apply delay {self.apply_delay_ms} ms)"
        )

    def _up(self) -> None:
        if self.primary.pid() is None:
            raise StackError(
                self.name,
                f"needs {self.primary.name} running on port {self.primary.port}; start it "
                f"first (`python -m devstack up`)",
            )
        super()._up()

    def create(self, bin_dir: Path, account: Account) -> None:
        """Clone the primary through a fresh replication slot."""
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self._drop_stale_slot()
        self.data_dir.mkdir(mode=0o700)
        account.own(self.data_dir)
        argv = [
            str(bin_dir / "pg_basebackup"),
            "-h",
            config.HOST,
            "-p",
            str(self.primary.port),
            "-U",
            config.PG_USER,
            "-w",
            "-D",
            str(self.data_dir),
            "-X",
            "stream",
            "-C",
            "-S",
            self.slot_name,
            "--checkpoint=fast",
        ]
        self.echo(f"pg_basebackup {self.data_dir}")
        try:
            self.run(
                argv, account, timeout=PG_TIMEOUT_S + 30, env={"PGPASSWORD": config.PG_PASSWORD}
            )
        except StackError:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise

    def configure(self, account: Account) -> bool:
        changed = write_managed_block(self.data_dir / "postgresql.conf", self.server_settings())
        changed |= drop_auto_setting(
            self.data_dir / "postgresql.auto.conf", "recovery_min_apply_delay"
        )
        signal_file = self.data_dir / "standby.signal"
        if not signal_file.exists():
            signal_file.touch()
            account.own(signal_file)
        return changed

    def on_ready(self) -> None:
        """Wait until the primary sees this standby streaming through its slot."""
        deadline = time.monotonic() + PG_TIMEOUT_S
        query = (
            "SELECT r.state FROM pg_replication_slots s "
            "JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = %s"
        )
        with self.primary.connect(autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(query, (self.slot_name,)).fetchone()
                if row is not None and row[0] == "streaming":
                    return
                if self.pid() is None:
                    raise StackError(
                        self.name, "the standby exited while catching up", log_path=self.log_path
                    )
                time.sleep(0.1)
        raise StackError(self.name, f"not streaming after {PG_TIMEOUT_S}s", log_path=self.log_path)

    def _drop_stale_slot(self) -> None:
        with self.primary.connect(autocommit=True) as conn:
            row = conn.execute(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s",
                (self.slot_name,),
            ).fetchone()
            if row is None:
                return
            if row[0] is not None:
                raise StackError(
                    self.name,
                    f"replication slot {self.slot_name} is in use by walsender pid {row[0]}, "
                    f"but {self.data_dir} holds no replica: is another standby still running?",
                )
            conn.execute("SELECT pg_drop_replication_slot(%s)", (self.slot_name,))
            self.echo(f"dropped stale replication slot {self.slot_name}")

    def status_details(self, pid: int | None) -> dict[str, Any]:
        """Replay LSN on the standby; lag = the primary's current LSN minus that, in bytes."""
        progress: dict[str, Any] = {"replay_lsn": None, "lag_bytes": None, "apply_delay": None}
        if pid is None:
            return progress
        try:
            with self.connect(autocommit=True) as conn:
                replay_lsn, delay = conn.execute(
                    "SELECT pg_last_wal_replay_lsn()::text, "
                    "current_setting('recovery_min_apply_delay')"
                ).fetchone()
            progress.update(replay_lsn=replay_lsn, apply_delay=delay)
            if self.primary.pid() is not None and replay_lsn is not None:
                with self.primary.connect(autocommit=True) as conn:
                    (lag,) = conn.execute(
                        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint",
                        (replay_lsn,),
                    ).fetchone()
                progress["lag_bytes"] = max(0, lag)
        except psycopg.Error as exc:
            progress["error"] = str(exc).strip()
        return progress
