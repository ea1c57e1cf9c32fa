"""The OS account the stack's processes run as.

Postgres refuses to run as root, so under root every process of the stack runs as a system
user (``statelab``, created if missing, else ``nobody``) that owns the stack's directories;
otherwise processes run as whoever starts the stack.
"""

import os
import pwd
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SERVICE_USER = "statelab"
FALLBACK_USER = "nobody"


@dataclass(frozen=True)
class Account:
    """An OS user; uid None means "whoever we are"."""

    name: str
    uid: int | None = None
    gid: int | None = None

    @property
    def switches(self) -> bool:
        """True when processes started as this account need a user switch."""
        return self.uid is not None and self.uid != os.geteuid()

    def own(self, path: Path) -> None:
        if self.switches:
            os.chown(path, self.uid, self.gid)

    def can_traverse(self, path: Path) -> bool:
        st = path.stat()
        if st.st_uid == self.uid:
            return bool(st.st_mode & stat.S_IXUSR)
        if st.st_gid in os.getgrouplist(self.name, self.gid):
            return bool(st.st_mode & stat.S_IXGRP)
        return bool(st.st_mode & stat.S_IXOTH)


def current_account() -> Account:
    return Account(pwd.getpwuid(os.geteuid()).pw_name)


def service_account() -> Account:
    """Under root: the `statelab` system user, created if missing, else `nobody`."""
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        try:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    SERVICE_USER,
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )
            entry = pwd.getpwnam(SERVICE_USER)
        except (OSError, subprocess.SubprocessError, KeyError):
            entry = pwd.getpwnam(FALLBACK_USER)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def owner_account(path: Path) -> Account | None:
    """The non-root user owning `path`; None when root owns it."""
    st = path.stat()
    if st.st_uid == 0:
        return None
    try:
        name = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        name = str(st.st_uid)
    return Account(name, st.st_uid, st.st_gid)


def ensure_traversable(path: Path, account: Account, echo: Callable[[str], None]) -> None:
    """Add o+x to the ancestors of `path` (and to it) that `account` cannot enter."""
    for directory in [path, *path.parents]:
        if not account.can_traverse(directory):
            directory.chmod(directory.stat().st_mode | stat.S_IXOTH)
            echo(f"chmod o+x {directory} (so that {account.name} can reach the stack)")


def ensure_readable_tree(root: Path, account: Account) -> None:
    """Make files under `root` world-readable (directories and executables world-enterable)
    where they are not, e.g. the lib/ and share/ Postgres reads at run time."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode) or st.st_uid == account.uid:
                continue
            wanted = stat.S_IROTH
            if stat.S_ISDIR(st.st_mode) or st.st_mode & stat.S_IXUSR:
                wanted |= stat.S_IXOTH
            if st.st_mode & wanted != wanted:
                path.chmod(st.st_mode | wanted)
