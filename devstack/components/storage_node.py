"""A storage node of the quorum store: a small Postgres server that can also be frozen.

Frozen is the failure that a stopped server is not: every process of the server is stopped
with SIGSTOP (the postmaster first, so that it forks nothing more, then each child), so the
port still accepts TCP connections (the kernel queues them) but nothing answers: connections
and queries hang until the client's own timeouts, as with a machine that stops responding.
``thaw`` sends SIGCONT; ``up`` and ``down`` thaw a frozen node first (a stopped postmaster
would not even act on pg_ctl's shutdown signal).
"""

import os
import signal
from contextlib import suppress
from pathlib import Path
from typing import Any

from devstack import config, process
from devstack.components.postgres import PostgresServer
from devstack.workspace import Workspace

SIGNAL_SETTLE_S = 2.0

#: a storage node holds a few small tables: small memory, no replication of its own
NODE_SETTINGS = {
    "shared_buffers": "'16MB'",
    "max_connections": "100",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_replication_slots": "0",
    "wal_keep_size": "0",
}


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of a process (R, S, D, T for stopped, Z, ...)."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def children_of(pid: int) -> list[int]:
    """The pids whose parent is `pid` (a postmaster's backends and auxiliary processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return sorted(found)


class StorageNode(PostgresServer):
    """A quorum storage node: ``PostgresServer`` with small settings, the store's database,
    and ``freeze`` / ``thaw`` / ``frozen``."""

    given_by = "QUORUM_NODE_URLS"

    def __init__(
        self,
        workspace: Workspace,
        *,
        name: str,
        port: int,
        port_variable: str | None = None,
    ) -> None:
        super().__init__(
            workspace,
            name=name,
            port=port,
            settings=NODE_SETTINGS,
            databases=[config.QUORUM_DATABASE],
            port_variable=port_variable,
        )

    def frozen(self) -> bool:
        pid = self.pid()
        return pid is not None and process_state(pid) == "T"

    def _signal_all(self, signum: int) -> int:
        """Signal the postmaster and its children; wait (briefly) until the kernel shows them
        stopped (SIGSTOP) or running (SIGCONT): delivery is asynchronous."""
        pid = self.pid()
        if pid is None:
            return 0
        pids = [pid, *children_of(pid)]
        if signum == signal.SIGCONT:
            pids.reverse()
        for target in pids:
            with suppress(ProcessLookupError):
                os.kill(target, signum)
        want_stopped = signum == signal.SIGSTOP

        def settled() -> bool:
            states = [process_state(target) for target in pids]
            return all(state is None or (state == "T") == want_stopped for state in states)

        process.wait_until(settled, SIGNAL_SETTLE_S, interval=0.01)
        return len(pids)

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every child; nothing when the server does not run."""
        with self.workspace.lock():
            count = self._signal_all(signal.SIGSTOP)
        self.echo(
            f"{self.name} frozen ({count} processes)" if count else f"{self.name} not running"
        )

    def thaw(self) -> None:
        """SIGCONT every process of the server (harmless when none is stopped)."""
        with self.workspace.lock():
            count = self._signal_all(signal.SIGCONT)
        if count:
            self.echo(f"{self.name} thawed")

    def _up(self) -> None:
        self._signal_all(signal.SIGCONT)
        super()._up()

    def _down(self) -> None:
        self._signal_all(signal.SIGCONT)
        super()._down()

    def status_details(self, pid: int | None) -> dict[str, Any]:
        return {"frozen": pid is not None and process_state(pid) == "T"}
