"""The State Lab's quorum panel in headless Chromium against a real gunicorn and the real
storage nodes: the ring, a key's preference list, the nodes' states with a staff switch that
really slows a node, and write-then-read pairs at a chosen W and R."""

from __future__ import annotations

import re

import pytest

from quorum.conf import conf
from quorum.control import node_get
from tests.factories import StaffFactory
from tests.lab.browser import ARTIFACTS, CHROMIUM_FLAGS, web_server
from tests.lab.test_browser import _log_in, chromium, playwright_api  # noqa: F401 - fixtures

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(180),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("nodes_restored"),
]


def test_staff_sees_the_ring_slows_a_node_and_measures_pairs_at_w1_r1(
    chromium,  # noqa: F811
    playwright_api,  # noqa: F811
    tmp_path,
):
    expect = playwright_api.expect
    staff = StaffFactory(username="quorum-lab-staff")
    ARTIFACTS.mkdir(exist_ok=True)
    with web_server(tmp_path) as server, playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            _log_in(page, server.base_url, staff.username)
            panel = page.locator("#panel-quorum")
            expect(panel.locator("#quorum-src")).to_contain_text("live", timeout=10_000)
            expect(panel.locator("#quorum-ring svg path")).to_have_count(
                len(conf().node_names) * conf().vnodes
            )
            expect(panel.locator("#quorum-pref li.preferred")).to_have_count(3)
            expect(panel.locator("#quorum-nodes tbody tr")).to_have_count(len(conf().node_names))
            expect(panel.locator("[data-testid=quorum-state-n2]")).to_have_text("UP")

            panel.locator("button[data-quorum-node=n2][data-state=slow]").click()
            expect(panel.locator("[data-testid=quorum-state-n2]")).to_have_text(
                "SLOW", timeout=10_000
            )

            panel.locator("#quorum-pairs").click()
            expect(panel.locator("#quorum-pairs-count")).to_have_text(
                re.compile(r"^([2-9]\d|\d{3,}) \("), timeout=30_000
            )
            panel.locator("#quorum-pairs").click()
            expect(panel.locator("#quorum-stale-rate")).to_have_text(re.compile(r"%$"))
            panel.screenshot(path=str(ARTIFACTS / "lab-quorum.png"))
        finally:
            browser.close()

    state = node_get(node="n2")
    assert (state.state, state.delay_ms, state.jitter_ms) == ("slow", 100, 100)
