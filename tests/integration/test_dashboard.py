"""The ops dashboard in a real headless Chromium: it lists every model, shows a breaker opening live,
draws each model's last hour, and asks for the ops key when the router requires one."""

from __future__ import annotations

import math
import random
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import openai
import pytest
from openai import OpenAI

from router.api.series import SeriesReport
from router.clock import FakeClock
from router.telemetry.record import RequestRecord
from router.telemetry.series import RESOLUTION, Series
from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router
from tests.integration.test_deployments import deployments_catalog

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


def test_dashboard_draws_each_models_last_hour(
    tight: Router, mock: Mock, page: Page, artifacts: Path
) -> None:
    console = Console(page)
    page.goto(tight.url + "/dashboard")
    expect(page.locator("#series-note")).to_contain_text("memory", timeout=SEEN_WITHIN_MS)
    mock.behaviour("gpt-5-mini", latency_ms=120)
    for _ in range(3):
        answer = tight.http.post("/v1/chat/completions", json={"model": "gpt-5-mini", "messages": USER})
        assert answer.status_code == 200
    streamed = tight.http.post(
        "/v1/chat/completions", json={"model": "gpt-5-mini", "messages": USER, "stream": True}
    )
    assert streamed.status_code == 200
    mock.fault("gpt-5-mini", {"kind": "status", "status": 500})
    failed = tight.http.post("/v1/chat/completions", json={"model": "gpt-5-mini", "messages": USER})
    assert failed.status_code >= 500

    card = page.locator('[data-model-series="gpt-5-mini"]')
    expect(card).to_contain_text("5 attempts", timeout=SEEN_WITHIN_MS)
    expect(card).to_contain_text("4 answers")
    expect(card).to_contain_text("1 error (20 %)")
    # Each chart is drawn: the answers and errors lines, and the latency percentiles (a line, or a
    # dot when only one minute has answers).
    for series in ("requests", "errors"):
        path = card.locator(f'svg[data-chart="traffic"] path[data-series="{series}"]')
        expect(path).to_have_attribute("d", re.compile(r"^M[\d. ]+(L[\d. ]+){59}$"))
    for series in ("p50", "p95"):
        drawn = card.locator(
            f'svg[data-chart="latency"] :is([data-series="{series}"], [data-dots="{series}"])'
        )
        assert any(re.match(r"^M\d", drawn.nth(i).get_attribute("d") or "") for i in range(drawn.count()))
    # The latest minute holds the traffic: the answers line ends above its baseline.
    ends = card.locator('svg[data-chart="traffic"] path[data-series="requests"]').get_attribute("d") or ""
    x_y = [tuple(map(float, point.split())) for point in ends[1:].split("L")]
    assert x_y[-1][1] < x_y[0][1] or x_y[-2][1] < x_y[0][1]
    assert card.locator("svg rect.hover title").count() == 120  # a tooltip for each minute of each chart
    # Models nobody called are listed, not drawn.
    expect(page.locator('[data-model-series="codex"]')).to_have_count(0)
    expect(page.locator("#series-idle")).to_contain_text("codex")
    # The spend panel shows the open router's spend, recorded as the anonymous key.
    expect(page.locator('[data-spend="key:anonymous"]')).to_contain_text("anonymous")
    card.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "dashboard-series.png"), full_page=True)
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(artifacts / "dashboard-series-dark.png"), full_page=True)
    assert not console.problems, "\n".join(console.messages)


def an_hour_of_series(models: list[str]) -> bytes:
    """The series answer after an hour of made-up traffic, recorded by the real store on a clock
    moved by hand: a steady model with an incident (errors, slow answers) at minutes 20 to 24, and its
    fallback, answering only then."""
    clock = FakeClock(time.time() - 3600)
    series = Series(clock)
    chance = random.Random(14)
    for minute in range(61):  # the last one is now
        if minute:
            clock.advance(60)
        incident = 20 <= minute < 25
        for _ in range(12 + int(6 * math.sin(minute / 5)) + chance.randrange(4)):
            if incident and chance.random() < 0.5:
                attempts = ("gpt-5-mini:server_error", "backup:ok")
                series.record(record("backup", 900 + chance.random() * 600, attempts))
            else:
                slow = 3.0 if incident else 1.0
                series.record(record("gpt-5-mini", slow * (300 + chance.expovariate(1 / 120)), ()))
    view = series.view(models)
    report = SeriesReport(
        scope="process",
        workers=1,
        note="Kept in this process's memory.",
        latency=RESOLUTION,
        **msgspec.structs.asdict(view),
    )
    return msgspec.json.encode(report)


def record(model: str, model_ms: float, attempts: tuple[str, ...]) -> RequestRecord:
    return RequestRecord(
        request_id="req",
        route="chat",
        key=None,
        model_asked="gpt-5-mini",
        stream=False,
        status=200,
        duration_ms=model_ms + 1,
        attempts=attempts or (f"{model}:ok",),
        model=model,
        model_ms=model_ms,
    )


def test_dashboard_draws_an_hour_with_an_incident_and_gaps(
    tight: Router, page: Page, artifacts: Path
) -> None:
    body = an_hour_of_series(model_ids(tight))
    page.route(
        re.compile(r"/model-health/series$"),
        lambda route: route.fulfill(status=200, content_type="application/json", body=body),
    )
    console = Console(page)
    page.goto(tight.url + "/dashboard")
    mini = page.locator('[data-model-series="gpt-5-mini"]')
    backup = page.locator('[data-model-series="backup"]')
    expect(mini).to_be_visible(timeout=SEEN_WITHIN_MS)
    expect(backup).to_be_visible()
    # gpt-5-mini: a line through every minute for each figure.
    for chart, series in (
        ("traffic", "requests"),
        ("traffic", "errors"),
        ("latency", "p50"),
        ("latency", "p95"),
    ):
        d = mini.locator(f'svg[data-chart="{chart}"] path[data-series="{series}"]').get_attribute("d") or ""
        assert d.count("M") == 1 and d.count("L") == 59, (series, d[:80])
    # backup answered only in the incident: one stretch of latency line, no minute before or after.
    p50 = backup.locator('svg[data-chart="latency"] path[data-series="p50"]').get_attribute("d") or ""
    assert p50.count("M") == 1 and p50.count("L") == 4
    expect(mini).to_contain_text("errors (")
    expect(backup).to_contain_text("0 errors")
    page.locator("#series-panel").screenshot(path=str(artifacts / "dashboard-hour.png"))
    page.emulate_media(color_scheme="dark")
    page.locator("#series-panel").screenshot(path=str(artifacts / "dashboard-hour-dark.png"))
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


def test_dashboard_shows_each_deployment_under_its_model(
    mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory, page: Page
) -> None:
    catalog = deployments_catalog(tmp_path_factory.mktemp("dashboard-deployments"))
    base = f"{mock_process.url}/openai/v1"
    env = {"ROUTER_EAST_BASE_URL": base, "ROUTER_WEST_BASE_URL": base}
    router = start_router(mock_process, artifacts, catalog, "router-dashboard-deployments", env=env)
    try:
        mock_process.reset()
        limited = {
            "kind": "status",
            "status": 429,
            "headers": {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "50s"},
        }
        mock_process.fault("dual-east", limited, times=-1)
        client = OpenAI(base_url=router.url + "/v1", api_key="k", max_retries=0, timeout=20)
        client.chat.completions.create(model="west/dual", messages=USER)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="east/dual", messages=USER)  # pinned: no other way
        console = Console(page)
        page.goto(router.url + "/dashboard")
        row = page.locator('tr[data-model="dual"]')
        east = row.locator('[data-deployment="east/dual"]')
        west = row.locator('[data-deployment="west/dual"]')
        expect(east).to_contain_text("quota 0% left, resets in", timeout=SEEN_WITHIN_MS)
        expect(west).to_contain_text(re.compile(r"west/dual · closed · quota \d+% left"))
        page.screenshot(path=str(artifacts / "dashboard-deployments.png"), full_page=True)
        assert not console.problems, "\n".join(console.messages)
    finally:
        router.process.stop()
        mock_process.reset()


SPEND_ACCESS = """
access:
  global: {budget: {daily_usd: 1.0}}
  model_limits:
    gpt-5-mini: {budget: {monthly_usd: 5.0}}
  keys:
    - {name: team-a, key_env: TEST_KEY_TEAM_A, budget: {daily_usd: 0.00002}, downgrade_at_pct: 50}
    - {name: team-b, key_env: TEST_KEY_TEAM_B}
"""


def test_dashboard_shows_spend_per_key_and_model_against_budgets(
    mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory, page: Page
) -> None:
    catalog = tmp_path_factory.mktemp("dashboard-spend") / "catalog.yaml"
    catalog.write_text(TEST_CATALOG.read_text() + SPEND_ACCESS)
    team_a, team_b = "rk-team-a-0123456789abcdef01", "rk-team-b-0123456789abcdef01"
    env = {"TEST_KEY_TEAM_A": team_a, "TEST_KEY_TEAM_B": team_b}
    router = start_router(mock_process, artifacts, catalog, "router-dashboard-spend", env=env)
    try:
        mock_process.reset()
        spent: dict[str, float] = {"team-a": 0.0, "team-b": 0.0}
        for name, key in (("team-a", team_a), ("team-b", team_b)):
            client = OpenAI(base_url=router.url + "/v1", api_key=key, max_retries=0, timeout=20)
            for _ in range(3):
                try:
                    raw = client.chat.completions.with_raw_response.create(
                        model="gpt-5-mini", messages=USER, max_tokens=3
                    )
                except openai.RateLimitError:
                    break  # team-a's tiny budget is spent
                spent[name] += float(raw.headers["x-router-cost-usd"])
        assert spent["team-a"] > 0 and spent["team-b"] > 0
        console = Console(page)
        page.goto(router.url + "/dashboard")
        a_row = page.locator('[data-spend="key:team-a"]')
        expect(a_row).to_contain_text("team-a", timeout=SEEN_WITHIN_MS)
        expect(a_row).to_contain_text("past 50%: strategies served as cost")
        daily = a_row.locator('[data-budget="team-a:daily"]')
        expect(daily).to_contain_text("of $0.000020")
        assert float(daily.get_attribute("data-share") or 0) > 0.5  # most of a tiny budget is gone
        b_row = page.locator('[data-spend="key:team-b"]')
        expect(b_row.locator("[data-budget]")).to_have_count(0)  # no budget: the amount alone
        model = page.locator('[data-spend="model:gpt-5-mini"]')
        expect(model.locator('[data-budget="gpt-5-mini:monthly"]')).to_contain_text("of $5.00")
        expect(page.locator('[data-budget="router:daily"]')).to_contain_text("of $1.00")
        page.locator("#spend-panel").screenshot(path=str(artifacts / "dashboard-spend.png"))
        page.screenshot(path=str(artifacts / "dashboard-spend-page.png"), full_page=True)
        assert not console.problems, "\n".join(console.messages)
    finally:
        router.process.stop()
        mock_process.reset()
