"""What every component of the stack is, and the generic long-running process.

A component is one server process with a name, a group, a port and the same four verbs:
``up()`` (idempotent: reuse what runs, start what is stopped, create what is missing),
``down()``, ``status() -> dict`` and ``logs(lines)``.
"""

import os
import shutil
import signal
import subprocess
import sys
from abc import ABC, abstractmethod
from contextlib import suppress
from pathlib import Path
from typing import Any

from devstack import config, process
from devstack.accounts import Account
from devstack.errors import LOG_TAIL_LINES, StackError, log_tail
from devstack.workspace import Workspace


class Component(ABC):
    """One server of the stack, living in `workspace` under its own name.

    Subclasses implement ``pid()``, ``_up()`` and ``_down()``; the public verbs add what every
    component shares: the stack's lock, the layout, and "given by a URL variable, start nothing".
    """

    #: the URL variable that, when set, means "provided elsewhere: do not start this one"
    given_by: str | None = None
    #: the STATELAB_* variable that moves the port, named when the port is taken
    port_variable: str | None = None

    def __init__(self, workspace: Workspace, *, name: str, port: int) -> None:
        self.workspace = workspace
        self.name = name
        self.port = port
        self.group = ""  # set by the stack from the group that registered the component
        self.depends_on: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {config.HOST}:{self.port}>"

    @property
    def data_dir(self) -> Path:
        return self.workspace.data_dir(self.name)

    @property
    def log_path(self) -> Path:
        return self.workspace.log_path(self.name)

    @property
    def given(self) -> bool:
        """True when the URL variable says this server is provided elsewhere."""
        return bool(
            self.workspace.honor_given_urls and self.given_by and os.environ.get(self.given_by)
        )

    def echo(self, line: str) -> None:
        self.workspace.echo(line)

    @abstractmethod
    def pid(self) -> int | None:
        """The pid of the running server, None when it does not run."""

    @abstractmethod
    def _up(self) -> None:
        """Create what is missing, reuse the running server or start it; under the lock."""

    @abstractmethod
    def _down(self) -> None:
        """Stop the server if it runs; under the lock."""

    def up(self) -> None:
        """Start this component unless it runs; create it first if it does not exist."""
        if self.given:
            self.echo(
                f"{self.name}: {self.given_by} is set, using it; "
                f"not starting the embedded {self.name}"
            )
            return
        with self.workspace.lock():
            self.workspace.create()
            self._up()

    def down(self) -> None:
        """Stop this component (given by a URL variable or not); its data stays."""
        if not self.workspace.base_dir.exists():
            self.echo(f"{self.name} not running")
            return
        with self.workspace.lock():
            self._down()

    def purge(self) -> None:
        """Stop this component and delete its data, log and pid file."""
        with self.workspace.lock():
            self._down()
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.log_path.unlink(missing_ok=True)
            self.workspace.pid_path(self.name).unlink(missing_ok=True)
            self.echo(f"purged {self.name}")

    def status(self) -> dict[str, Any]:
        """given (by URL variables), running, pid, port, and what the component adds."""
        pid = self.pid()
        return {
            "given": self.given,
            "running": pid is not None,
            "pid": pid,
            "port": self.port,
            **self.status_details(pid),
        }

    def status_details(self, pid: int | None) -> dict[str, Any]:
        """Component-specific status fields; present (None) even when it does not run."""
        return {}

    def logs(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last `lines` lines of this component's log."""
        return log_tail(self.log_path, lines)

    def describe(self) -> str:
        """One line for humans: where it listens and what matters about it."""
        return f"{config.HOST}:{self.port}"

    def run(
        self,
        argv: list[str],
        account: Account,
        *,
        timeout: float,
        env: dict[str, str] | None = None,
    ) -> str:
        """Run one command of this component to its end, failing with its log's tail."""
        return process.run(
            self.name,
            argv,
            account=account,
            cwd=self.workspace.base_dir,
            home=self.workspace.run_dir,
            timeout=timeout,
            env=env,
            log_path=self.log_path,
        )


class Daemon(Component):
    """A long-running program that stays in the foreground: started detached in its own
    session, output appended to logs/<name>.log, pid written to run/<name>.pid, ready when
    ``ready()`` holds, stopped by ``request_stop`` (SIGTERM) and SIGKILL if that is ignored.

    Subclasses give ``binary`` and ``command()``; they may refine ``ready()`` (default: the
    port accepts connections) and ``request_stop()``.
    """

    start_timeout_s: float = 15
    stop_timeout_s: float = 15
    #: what ``ready()`` checks, for error messages ("does not <readiness> on port N")
    readiness = "accept connections"

    @property
    @abstractmethod
    def binary(self) -> Path:
        """The program's executable (its directory is made reachable for the account)."""

    @abstractmethod
    def command(self) -> list[str]:
        """The argv that runs the program in the foreground."""

    def ready(self) -> bool:
        return process.port_open(self.port)

    def request_stop(self, pid: int) -> None:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    @property
    def pid_path(self) -> Path:
        return self.workspace.pid_path(self.name)

    def pid(self) -> int | None:
        return process.read_pid(self.pid_path)

    def _wait_ready(self, child: subprocess.Popen | None = None) -> bool:
        def settled() -> bool:
            exited = self.pid() is None or (child is not None and child.poll() is not None)
            return exited or self.ready()

        process.wait_until(settled, self.start_timeout_s)
        return self.pid() is not None and self.ready()

    def _up(self) -> None:
        binary = self.binary
        account = self.workspace.account(binary.parent)
        self.data_dir.mkdir(exist_ok=True)
        account.own(self.data_dir)
        pid = self.pid()
        if pid is not None:
            if not self._wait_ready():
                raise StackError(
                    self.name,
                    f"pid {pid} from {self.pid_path} is alive but does not {self.readiness} "
                    f"on port {self.port}",
                    log_path=self.log_path,
                )
            self.echo(f"{self.name} already running on {config.HOST}:{self.port} (pid {pid})")
            return
        self.pid_path.unlink(missing_ok=True)
        process.check_port_free(self.name, self.port, self.port_variable)
        argv = self.command()
        child = process.spawn(
            self.name,
            argv,
            account=account,
            cwd=self.data_dir,
            home=self.workspace.run_dir,
            log_path=self.log_path,
        )
        self.pid_path.write_text(f"{child.pid}\n")
        account.own(self.pid_path)
        if not self._wait_ready(child):
            problem = (
                f"exited with status {child.returncode} before it would {self.readiness}"
                if child.poll() is not None
                else f"does not {self.readiness} on port {self.port} "
                f"after {self.start_timeout_s:.0f}s"
            )
            self._down()
            raise StackError(self.name, problem, command=argv, log_path=self.log_path)
        self.echo(f"{self.name} started on {config.HOST}:{self.port} (pid {child.pid})")

    def kill(self) -> int | None:
        """SIGKILL the program (a crash: no shutdown of any kind); its pid, None when it did
        not run. ``up()`` starts it again."""
        pid = self.pid()
        if pid is None:
            return None
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not process.wait_pid_gone(pid, process.KILL_WAIT_S):
            raise StackError(self.name, f"pid {pid} survived SIGKILL", log_path=self.log_path)
        self.echo(f"{self.name} killed (pid {pid})")
        return pid

    def _down(self) -> None:
        pid = self.pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            self.echo(f"{self.name} not running")
            return
        process.terminate(
            self.name,
            pid,
            timeout=self.stop_timeout_s,
            log_path=self.log_path,
            echo=self.echo,
            request=lambda: self.request_stop(pid),
        )
        self.pid_path.unlink(missing_ok=True)
        self.echo(f"{self.name} stopped (pid {pid})")


class PythonDaemon(Daemon):
    """A Daemon that is a Python program run by this project's interpreter (the venv's, so its
    packages are there). Under root the program runs as the stack's account, which is granted
    a way to the interpreter the venv points at (for instance one under /root/.pyenv)."""

    @property
    def binary(self) -> Path:
        return Path(sys.executable)

    def _up(self) -> None:
        self.workspace.account(Path(sys.executable).resolve().parent)
        super()._up()
