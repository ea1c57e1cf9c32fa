"""Running the stack's programs: commands that finish, daemons that stay, pids, ports, stops.

Every failure is a StackError naming the component, the command and the end of the log.
"""

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack import config
from devstack.accounts import Account
from devstack.errors import StackError

KILL_WAIT_S = 5

_spawned: dict[int, subprocess.Popen] = {}


def pid_alive(pid: int) -> bool:
    """True when the process exists and is not a zombie (an unreaped daemon counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        proc_stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return proc_stat.rsplit(")", 1)[-1].split()[0] != "Z"


def read_pid(path: Path, line: int = 0) -> int | None:
    """The pid written on `line` of a pid file, when that process is alive."""
    try:
        pid = int(path.read_text().split("\n")[line])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def port_open(port: int, host: str = config.HOST) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def check_port_free(component: str, port: int, variable: str | None) -> None:
    """Fail, naming the variable that moves the port, when another process holds it."""
    if port_open(port):
        hint = f"choose another port with {variable}" if variable else "choose another port"
        raise StackError(
            component,
            f"port {config.HOST}:{port} is already taken by another process; stop it or {hint}",
        )


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_pid_gone(pid: int, timeout: float) -> bool:
    gone = wait_until(lambda: not pid_alive(pid), timeout)
    if gone and pid in _spawned:
        _spawned.pop(pid).wait(timeout=1)  # reap our own child, which is a zombie by now
    return gone


def _child_env(account: Account, home: Path, env: dict[str, str] | None) -> dict[str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    full_env.update(env or {})
    if account.switches:
        full_env.update(HOME=str(home), USER=account.name, LOGNAME=account.name)
    return full_env


def _identity(account: Account) -> dict[str, Any]:
    if not account.switches:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def run(
    component: str,
    argv: list[str],
    *,
    account: Account,
    cwd: Path,
    home: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> str:
    """Run a command to its end (as `account`) and return its output. The output goes through
    a temp file, not a pipe: pipes can be inherited by the daemons that pg_ctl leaves behind."""
    with tempfile.TemporaryFile("w+") as out:
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_child_env(account, home, env),
                cwd=cwd,
                timeout=timeout,
                check=False,
                text=True,
                **_identity(account),
            )
        except subprocess.TimeoutExpired:
            out.seek(0)
            raise StackError(
                component,
                f"timed out after {timeout:.0f}s",
                command=argv,
                log_path=log_path,
                output=out.read(),
            ) from None
        except OSError as exc:
            raise StackError(
                component, f"could not run: {exc}", command=argv, log_path=log_path
            ) from None
        out.seek(0)
        output = out.read()
    if proc.returncode != 0:
        raise StackError(
            component,
            f"failed with exit status {proc.returncode}",
            command=argv,
            log_path=log_path,
            output=output,
        )
    return output


def spawn(
    component: str,
    argv: list[str],
    *,
    account: Account,
    cwd: Path,
    home: Path,
    log_path: Path,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start a long-running program (as `account`) in its own session, so that it outlives
    this process and a Ctrl-C in this terminal; its output is appended to `log_path`."""
    with open(log_path, "a") as log:
        account.own(log_path)
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_child_env(account, home, env),
                cwd=cwd,
                start_new_session=True,
                **_identity(account),
            )
        except OSError as exc:
            raise StackError(
                component, f"could not run: {exc}", command=argv, log_path=log_path
            ) from None
    _spawned[process.pid] = process
    return process


def terminate(
    component: str,
    pid: int,
    *,
    timeout: float,
    log_path: Path,
    echo: Callable[[str], None],
    request: Callable[[], None] | None = None,
) -> None:
    """Stop a process: ask politely (`request`, else SIGTERM), wait `timeout` seconds, then
    SIGKILL; fail when even that does not end it."""
    if request is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    else:
        request()
    if wait_pid_gone(pid, timeout):
        return
    echo(f"{component} pid {pid} ignored the stop request, sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not wait_pid_gone(pid, KILL_WAIT_S):
        raise StackError(component, f"pid {pid} survived SIGKILL", log_path=log_path)
