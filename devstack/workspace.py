"""The directory a stack lives in, shared by its components: layout, lock, account.

Layout under `base_dir`: one data directory per component (named after it), logs/<name>.log,
run/<name>.pid, a `.devstack` marker (so that `down --purge` deletes only a stack) and a lock.
"""

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from devstack import accounts
from devstack.accounts import Account

MARKER_FILE = ".devstack"


class Workspace:
    def __init__(
        self,
        base_dir: Path,
        *,
        honor_given_urls: bool = True,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.honor_given_urls = honor_given_urls
        self.echo = echo
        self.log_dir = self.base_dir / "logs"
        self.run_dir = self.base_dir / "run"
        self._thread_lock = threading.RLock()
        self._lock_depth = 0
        self._lock_handle: IO[str] | None = None
        self._account: Account | None = None
        self._opened_bin_dirs: set[Path] = set()

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def data_dir(self, name: str) -> Path:
        return self.base_dir / name

    @property
    def is_stack(self) -> bool:
        return (self.base_dir / MARKER_FILE).exists()

    def create(self) -> None:
        """The base directory, its marker, logs/ and run/ (idempotent)."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        (self.base_dir / MARKER_FILE).touch()
        for directory in (self.log_dir, self.run_dir):
            directory.mkdir(exist_ok=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise changes to this stack across processes (flock) and threads; reentrant,
        so that the orchestrator holds it across components that take it too."""
        with self._thread_lock:
            if self._lock_depth == 0:
                self.base_dir.mkdir(parents=True, exist_ok=True)
                self._lock_handle = open(self.base_dir / ".lock", "a")  # noqa: SIM115
                fcntl.flock(self._lock_handle, fcntl.LOCK_EX)
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0 and self._lock_handle is not None:
                    fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
                    self._lock_handle.close()
                    self._lock_handle = None

    def account(self, bin_dir: Path) -> Account:
        """Who runs the programs of `bin_dir`. Under root: the user who ran this stack before
        (the owner of run/), else the service account; it is granted what it needs: a way into
        the stack and the binaries, and ownership of logs/ and run/."""
        self.create()
        if os.geteuid() != 0:
            return accounts.current_account()
        if self._account is None:
            self._account = accounts.owner_account(self.run_dir) or accounts.service_account()
        account = self._account
        accounts.ensure_traversable(self.base_dir, account, self.echo)
        if bin_dir not in self._opened_bin_dirs:
            accounts.ensure_traversable(bin_dir, account, self.echo)
            if bin_dir.name == "bin" and bin_dir.parent.name == "pginstall":
                accounts.ensure_readable_tree(bin_dir.parent, account)
            self._opened_bin_dirs.add(bin_dir)
        for directory in (self.log_dir, self.run_dir):
            account.own(directory)
            for child in directory.iterdir():
                account.own(child)
        return account

    def account_of(self, path: Path) -> Account:
        """Who may act on what `path` belongs to (pg_ctl refuses root): its owner under root."""
        if os.geteuid() == 0:
            return accounts.owner_account(path) or accounts.current_account()
        return accounts.current_account()
