"""A streaming replica (hot standby) of another Postgres server of the stack."""

import shutil
import time
from pathlib import Path
from typing import Any

import psycopg

from devstack import config
from devstack.accounts import Account
from devstack.components.postgres import PG_TIMEOUT_S, PostgresServer
from devstack.errors import StackError
from devstack.pgconf import drop_auto_setting, quote, write_managed_block
from devstack.workspace import Workspace


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
