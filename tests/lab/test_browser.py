"""The State Lab page in a real browser: headless Chromium against the real service
(gunicorn, a Celery worker and beat, the test databases, the streaming replica)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from accounts.services import account_deposit
from core.faults import faults_get
from lab.views import PAIRS_PER_LEVEL, TRANSFER_BURST
from ledger.models import Transfer
from sharding.hotkeys import HEAT_RANGES, bucket_range_of
from tests.factories import TEST_PASSWORD, StaffFactory, UserFactory
from tests.lab.browser import (
    ARTIFACTS,
    CHROMIUM_FLAGS,
    WebServer,
    chromium_ensure,
    web_server,
)
from tests.saga.conftest import broker_purge, celery_beat
from tests.saga.factories import AccountFactory
from tests.servers import free_port
from tests.workers import celery_worker

DATABASES = ["default", "accounts", "ledger", *settings.SHARD_ALIASES]
BURST = TRANSFER_BURST
PAIRS = PAIRS_PER_LEVEL
TERMINAL_COUNT_JS = """() => ["completed", "compensated", "failed"].reduce((sum, state) =>
    sum + Number(document.querySelector(`[data-testid=state-${state}]`).textContent
    .replace(/,/g, "")), 0)"""

SET_HIDDEN_JS = """(hidden) => {
    Object.defineProperty(document, "hidden", {value: hidden, configurable: true});
    document.dispatchEvent(new Event("visibilitychange"));
}"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.timeout(180),
    pytest.mark.django_db(databases=DATABASES, transaction=True),
]


def _bucket_range_label(key: str) -> str:
    """How the page names the bucket range of ``key`` in the per-range heat map."""
    index, buckets = bucket_range_of(key), settings.SHARDING["buckets"]
    first, last = index * buckets // HEAT_RANGES, (index + 1) * buckets // HEAT_RANGES - 1
    return f"buckets {first}\u2013{last}"


@pytest.fixture(scope="module")
def chromium() -> str:
    path, reason = chromium_ensure()
    if path is None:
        pytest.skip(f"headless Chromium unavailable: {reason}")
    return path


@pytest.fixture(scope="module")
def playwright_api():
    return pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed (dev extra)"
    )


@pytest.fixture
def service(tmp_path, monkeypatch):
    """Web, worker and beat as ``make run`` starts them: one metrics folder for web and worker,
    so the worker's counters (compensations) reach /metrics."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    broker_purge()
    server = WebServer(tmp_path)  # starts now; it loads while the worker starts
    try:
        with celery_worker(tmp_path, concurrency=2, name="lab"), celery_beat(tmp_path):
            server.wait_ready()
            yield server
    finally:
        server.stop()


@pytest.fixture
def staff():
    return StaffFactory(username="lab-staff")


@pytest.fixture
def demo_account():
    account = AccountFactory(owner_id=UserFactory(username="lab-alice").pk)
    account_deposit(account_id=account.id, amount="100.00")
    return account


def _terminal_count(page) -> int:
    return int(page.evaluate(TERMINAL_COUNT_JS))


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(base_url + "/lab/")
    page.fill("#id_username", username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/lab/")


def test_staff_watches_every_panel_flips_a_fault_and_sees_a_transfer_burst_settle(
    chromium, playwright_api, service, staff, demo_account
):
    expect = playwright_api.expect
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            _log_in(page, service.base_url, staff.username)

            expect(page.locator("#poll-status")).to_contain_text("live", timeout=10_000)
            expect(page.locator("[data-testid=state-pending]")).to_have_text("0")
            expect(page.locator("[data-testid=conservation]")).to_have_text(
                "Invariants hold", timeout=15_000
            )
            expect(page.locator("#replica-lag h3").first).to_contain_text("replica_1: up")
            expect(page.locator("#shard-table tbody tr")).to_have_count(len(settings.SHARD_ALIASES))
            expect(page.locator("#shard-heat svg rect").first).to_be_attached()
            expect(page.locator("#shard-range-heat svg rect")).to_have_count(
                len(settings.SHARD_ALIASES) * HEAT_RANGES
            )
            expect(page.locator("#deps-summary")).to_contain_text("dependencies ok")
            expect(page.locator("#deps-list li.down")).to_have_count(0)
            expect(page.locator("#faults .fault").first).to_be_visible()
            assert _terminal_count(page) == 0

            page.fill("#fault-saga_credit_failure_rate", "0.1")
            page.click("button[data-fault=saga_credit_failure_rate]")
            expect(
                page.locator(".fault", has=page.locator("#fault-saga_credit_failure_rate"))
            ).to_contain_text("set to 0.1")

            page.click("#burst-transfers")
            expect(page.locator("#burst-transfers-out")).to_contain_text(
                f"accepted: {BURST}", timeout=40_000
            )
            page.wait_for_function(f"() => ({TERMINAL_COUNT_JS})() >= {BURST}", timeout=60_000)
            expect(page.locator("[data-testid=conservation]")).to_have_text(
                "Invariants hold", timeout=15_000
            )
            # "20 started" contains "0 started": match the whole count.
            expect(page.locator("#saga-compensations")).not_to_have_text(re.compile(r"^0 started"))
            page.screenshot(path=str(ARTIFACTS / "lab-1280x800.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=str(ARTIFACTS / "lab-390x844.png"), full_page=True)
        finally:
            browser.close()

    # Database checks only once the browser is gone: Playwright's sync API runs an event loop
    # in this thread, and Django refuses database calls from inside one.
    assert faults_get(fresh=True)["saga_credit_failure_rate"] == 0.1
    shown = Transfer.objects.using("ledger").filter(state__in=list(Transfer.TERMINAL)).count()
    assert shown == BURST
    compensated = Transfer.objects.using("ledger").filter(state=Transfer.State.COMPENSATED)
    assert compensated.exists()


def test_page_names_a_dead_dependency_pauses_when_hidden_and_goes_stale_when_polls_fail(
    chromium, playwright_api, tmp_path, staff
):
    expect = playwright_api.expect
    ARTIFACTS.mkdir(exist_ok=True)
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with (
        web_server(tmp_path, REDIS_URL=dead_redis) as server,
        playwright_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            _log_in(page, server.base_url, staff.username)
            expect(page.locator("#deps-summary")).to_contain_text("DOWN: redis", timeout=10_000)
            expect(page.locator("#deps-list li.down")).to_contain_text("redis")
            expect(page.locator("#panel-saga .src")).not_to_contain_text("STALE")

            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.evaluate(SET_HIDDEN_JS, True)
            expect(page.locator("#poll-status")).to_have_text("paused (tab hidden)")
            requests.clear()
            page.wait_for_timeout(2500)
            assert requests == []
            page.evaluate(SET_HIDDEN_JS, False)
            expect(page.locator("#poll-status")).to_contain_text("live")
            assert any(url.endswith("/metrics") for url in requests)

            server.stop()

            expect(page.locator("#poll-status")).to_contain_text("STALE", timeout=10_000)
            expect(page.locator("#panel-saga .src")).to_contain_text("metrics: STALE")
            page.screenshot(path=str(ARTIFACTS / "lab-stale.png"))
        finally:
            browser.close()


def test_storm_and_write_then_read_pairs_show_what_the_api_answered(
    chromium, playwright_api, tmp_path, staff
):
    expect = playwright_api.expect
    ARTIFACTS.mkdir(exist_ok=True)
    with web_server(tmp_path) as server, playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            _log_in(page, server.base_url, staff.username)
            page.click("#burst-storm")
            expect(page.locator("#burst-storm-out")).to_contain_text("celebrity =", timeout=30_000)
            storm = page.locator("#burst-storm-out").text_content()
            expect(page.locator("#shard-range-busiest")).to_contain_text(
                _bucket_range_label("celebrity"), timeout=10_000
            )
            page.click("#burst-pairs")
            expect(page.locator("#burst-pairs-out table")).to_be_visible(timeout=60_000)
            page.locator("#panel-controls").screenshot(path=str(ARTIFACTS / "lab-bursts.png"))
            pairs = {
                row.locator("th").text_content(): [
                    cell.text_content() for cell in row.locator("td").all()
                ]
                for row in page.locator("#burst-pairs-out tbody tr").all()
            }
        finally:
            browser.close()

    accepted = sum(int(n) for n in re.findall(r"celebrity on shard_\d+: (\d+)", storm))
    assert accepted > 0
    assert f"celebrity = {accepted:,}" in storm, storm
    strong, session = pairs["strong"], pairs["session"]
    assert strong[:2] == [str(PAIRS), "0"]
    assert strong[2] == f"primary: {PAIRS}"
    assert session[:2] == [str(PAIRS), "0"]
    assert pairs["eventual"][0] == str(PAIRS)
    assert all(row[3] == "0" for row in pairs.values())
