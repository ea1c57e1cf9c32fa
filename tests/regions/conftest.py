"""Real regions: the stack's regions group (started here when it does not run, and stopped
again at the end), the suite's own database in each region (REGION_URLS of the test settings:
``test_statelab_region``), created with its publications and subscriptions, dropped at the end.

The link proxy is the stack's: a test that cuts links heals them all when it ends.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from devstack import config as stack_config
from devstack.stack import default_stack
from regions.conf import REGION_NAMES
from regions.convergence import converged
from regions.db import pools_close
from regions.links import LINKS, link_control
from regions.merkle import roots
from regions.schema import regions_database_drop, regions_setup
from tests.factories import StaffFactory

TEST_SLOT_WAL_KEEP_MB = 16
CONVERGE_TIMEOUT_S = 30


def _links_reset() -> None:
    control = link_control()
    for link in LINKS:
        control.set(link, cut=False, delay_ms=0)


@pytest.fixture(scope="session")
def regions_up() -> Iterator[None]:
    """The regions group running (started here if needed, with a small WAL bound) and the
    test database set up in every region."""
    stack = default_stack(region_slot_wal_keep_mb=TEST_SLOT_WAL_KEEP_MB)
    components = stack.select(["regions"])
    started = not stack_config.regions_given() and any(c.pid() is None for c in components)
    if started:
        stack.up(["regions"])
    try:
        _links_reset()
        report = regions_setup()
        assert set(report.links.values()) <= {"ok", "created", "recreated"}, report.links
        yield
    finally:
        try:
            _links_reset()
            pools_close()
            regions_database_drop()
        finally:
            if started:
                stack.down(["regions"])


@pytest.fixture
def regions(regions_up, db) -> Iterator[None]:
    """Every link healed and undelayed after the test (the proxy outlives tests)."""
    yield
    _links_reset()


@pytest.fixture
def key() -> str:
    """A key no other test writes."""
    return f"k{uuid.uuid4().hex[:12]}"


@pytest.fixture
def staff_client() -> APIClient:
    client = APIClient()
    client.force_authenticate(StaffFactory())
    return client


def partition(client: APIClient, *groups: list[str]) -> None:
    response = client.put("/api/regions/network", {"groups": list(groups)}, format="json")
    assert response.status_code == 200, response.content


def heal(client: APIClient) -> None:
    partition(client, list(REGION_NAMES))


def wait_converged(timeout_s: float = CONVERGE_TIMEOUT_S) -> dict[str, str | None]:
    """Until every region has the same Merkle root."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = roots()
        if converged(found):
            return found
        assert time.monotonic() < deadline, f"regions did not converge: {found}"
        time.sleep(0.1)


def wait_until(predicate: Callable[[], Any], timeout_s: float = CONVERGE_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)
