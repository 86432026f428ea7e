"""The ops dashboard in a real headless Chromium: it lists every model, shows a breaker opening live, and
asks for the ops key when the router requires one."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from openai import OpenAI

from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
POLICY = (
    "  breaker: {consecutive_failures: 2, min_volume: 100, "
    "cooldown_s: 30, max_cooldown_s: 60, half_open_probes: 1}"
)
OPS_KEY = "ops-secret-123"
USER: list[Any] = [{"role": "user", "content": "hi"}]
TITLE = "Router — ops dashboard"
# How long the page may take to show a change: one 2 s poll, plus slack for a loaded CI machine.
SEEN_WITHIN_MS = 8000

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install playwright)"
)
if shutil.which(CHROMIUM) is None:
    pytest.skip(
        f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)", allow_module_level=True
    )
expect = sync_api.expect


class Console:
    """Everything the page said on its console, and every error it threw."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        self.problems: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

    def _message(self, message: ConsoleMessage) -> None:
        line = f"{message.type}: {message.text} ({message.location.get('url', '')})"
        self.messages.append(line)
        if message.type in ("error", "warning", "assert"):
            self.problems.append(line)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def policy_catalog(folder: Path) -> Path:
    text = TEST_CATALOG.read_text()
    catalog = folder / "catalog.yaml"
    catalog.write_text(text.replace(text[text.index("  breaker:") :].splitlines()[0], POLICY))
    return catalog


@pytest.fixture(scope="module")
def tight(mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    catalog = policy_catalog(tmp_path_factory.mktemp("dashboard"))
    router = start_router(mock_process, artifacts, catalog, "router-dashboard")
    try:
        yield router
    finally:
        router.process.stop()


def model_ids(router: Router, key: str | None = None) -> list[str]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    answer = router.http.get("/model-health", headers=headers)
    answer.raise_for_status()
    return [m["id"] for m in answer.json()["models"]]


def test_dashboard_lists_models_and_shows_a_breaker_opening(
    tight: Router, mock: Mock, page: Page, artifacts: Path
) -> None:
    served = tight.http.get("/dashboard")
    assert served.status_code == 200
    assert served.headers["content-type"] == "text/html; charset=utf-8"
    assert served.headers["cache-control"] == "no-cache"

    console = Console(page)
    page.goto(tight.url + "/dashboard")
    expect(page).to_have_title(TITLE)
    ids = model_ids(tight)
    assert "primary" in ids and "backup" in ids
    rows = page.locator("tbody tr[data-model]")
    expect(rows).to_have_count(len(ids), timeout=SEEN_WITHIN_MS)
    for model in ids:
        expect(page.locator(f'tr[data-model="{model}"]')).to_have_count(1)
    badge = page.locator('tr[data-model="primary"] [data-state]')
    expect(badge).to_have_attribute("data-state", "closed")
    expect(badge).to_have_text(re.compile("CLOSED"))
    expect(page.locator("#status")).to_have_text(re.compile("OK"))
    expect(page.locator("#fetcherror")).to_be_hidden()

    # Two failures in a row open primary's breaker; the router answers from backup each time.
    mock.fault("primary-upstream", {"kind": "status", "status": 500}, times=-1)
    client = OpenAI(base_url=tight.url + "/v1", api_key="k", max_retries=0, timeout=20)
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="primary", messages=USER)
        assert raw.headers["x-router-model"] == "backup"

    expect(badge).to_have_attribute("data-state", "open", timeout=SEEN_WITHIN_MS)
    expect(badge).to_have_text(re.compile("OPEN"))
    countdown = page.locator('tr[data-model="primary"] [data-countdown]')
    expect(countdown).to_have_text(re.compile(r"^\d+(\.\d)? s$"))
    first = float(countdown.inner_text().removesuffix(" s"))
    assert 0 < first <= 30
    page.wait_for_timeout(1200)
    assert float(countdown.inner_text().removesuffix(" s")) < first  # it counts down between polls
    # Open breakers sort first; the last error is shown with its status.
    expect(rows.first).to_have_attribute("data-model", "primary")
    expect(page.locator('tr[data-model="primary"]')).to_contain_text("500")
    expect(page.locator('tr[data-model="backup"] [data-state]')).to_have_attribute("data-state", "closed")
    expect(page.locator("#status")).to_have_text(re.compile("DEGRADED"))
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
    assert not console.problems, "\n".join(console.messages)


def test_dashboard_asks_for_the_ops_key(
    mock: Mock, page: Page, artifacts: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    router = start_router(
        mock, artifacts, policy_catalog(tmp_path), "router-dashboard-key", env={"ROUTER_OPS_KEY": OPS_KEY}
    )
    request.addfinalizer(router.process.stop)
    assert router.http.get("/model-health").status_code == 401
    ids = model_ids(router, OPS_KEY)

    console = Console(page)
    page.goto(router.url + "/dashboard")
    expect(page).to_have_title(TITLE)
    form = page.locator("#keyform")
    rows = page.locator("tbody tr[data-model]")
    # The page learns from the public /help that a key is needed, and asks before calling an ops route.
    expect(form).to_be_visible(timeout=SEEN_WITHIN_MS)
    expect(rows).to_have_count(0)
    assert not console.problems, "\n".join(console.messages)

    # A wrong key: the ops routes answer 401 and the form asks again.
    page.locator("#opskey").fill("not-the-key")
    page.locator("#keysubmit").click()
    expect(page.locator("#keyhint")).to_contain_text("rejected", timeout=SEEN_WITHIN_MS)
    expect(form).to_be_visible()
    expect(rows).to_have_count(0)
    page.screenshot(path=str(artifacts / "dashboard-key.png"))

    page.locator("#opskey").fill(OPS_KEY)
    page.locator("#keysubmit").click()
    expect(form).to_be_hidden()
    expect(rows).to_have_count(len(ids), timeout=SEEN_WITHIN_MS)
    expect(page.locator('tr[data-model="primary"] [data-state]')).to_have_attribute("data-state", "closed")
    expect(page.locator("#fetcherror")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('router.opsKey')") == OPS_KEY

    # The key is kept for the session: a reload goes straight to the models.
    page.reload()
    expect(rows).to_have_count(len(ids), timeout=SEEN_WITHIN_MS)
    expect(form).to_be_hidden()
    # Only the browser's own log lines of the wrong key's 401 answers; the page itself said nothing.
    unexpected = [p for p in console.problems if "status of 401 (Unauthorized)" not in p]
    assert not unexpected, "\n".join(console.messages)
