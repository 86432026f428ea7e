"""One model through two deployments: traffic split by headroom, a rate-limited deployment left alone
until its reset, one deployment down with no client-visible failure, and ``provider/model`` pins."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router

USER: list[Any] = [{"role": "user", "content": "hi"}]
DEPLOYMENTS = """
  east:
    kind: openai
    base_url: https://east.invalid/v1
    api_key_env: TEST_OPENAI_KEY
    timeouts: {connect: 1, read: 2, total: 3, first_token: 1.5}
  west:
    kind: openai
    base_url: https://west.invalid/v1
    api_key_env: TEST_OPENAI_KEY
    timeouts: {connect: 1, read: 2, total: 3, first_token: 1.5}
"""
MODEL = """
  dual:
    context_window: 128000
    max_output: 16384
    price: {input: 1.0, output: 2.0}
    quality: 70
    speed: {ttft_ms: 300, tokens_per_s: 100}
    deployments:
      - {provider: east, upstream: dual-east, rpm: 30}
      - {provider: west, upstream: dual-west, rpm: 90, price: {input: 0.5, output: 1.0}}
"""


def deployments_catalog(folder: Path) -> Path:
    """The test catalog with the providers ``east`` and ``west`` and the model ``dual`` on both."""
    text = TEST_CATALOG.read_text()
    text = text.replace("providers:\n", "providers:" + DEPLOYMENTS, 1)
    text = text.replace("models:\n", "models:" + MODEL, 1)
    catalog = folder / "catalog.yaml"
    catalog.write_text(text)
    return catalog


@pytest.fixture()
def dual(mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """A router of its own for each test: the quotas it counts start empty."""
    catalog = deployments_catalog(tmp_path_factory.mktemp("deployments"))
    base = f"{mock_process.url}/openai/v1"
    env = {"ROUTER_EAST_BASE_URL": base, "ROUTER_WEST_BASE_URL": base}
    router = start_router(mock_process, artifacts, catalog, "router-deployments", env=env)
    try:
        yield router
    finally:
        router.process.stop()


def client(router: Router) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key="k", max_retries=0, timeout=20)


def served_by(mock: Mock, since: int) -> Counter[str]:
    return Counter(r["body"]["model"] for r in mock.requests()[since:])


def deployment_health(router: Router, deployment: str) -> dict[str, Any]:
    models = router.http.get("/model-health").json()["models"]
    model = next(m for m in models if m["id"] == "dual")
    found: dict[str, Any] = next(d for d in model["deployments"] if d["id"] == deployment)
    return found


def test_traffic_splits_by_headroom_and_stays_within_each_quota(dual: Router, mock: Mock) -> None:
    seen: Counter[str] = Counter()
    for _ in range(60):
        raw = client(dual).chat.completions.with_raw_response.create(model="dual", messages=USER)
        assert raw.headers["x-router-model"] == "dual"
        seen[raw.headers["x-router-deployment"]] += 1
        # Each deployment is priced at its own rates.
        provider = raw.headers["x-router-provider"]
        assert raw.headers["x-router-deployment"] == f"{provider}/dual"
    calls = served_by(mock, 0)
    assert calls == Counter({"dual-east": seen["east/dual"], "dual-west": seen["west/dual"]})
    # East may take 30 a minute, west 90: west, with three times the room, takes most of the traffic,
    # and east never goes past its quota.
    assert 0 < seen["east/dual"] <= 30
    assert seen["west/dual"] > seen["east/dual"]
    assert deployment_health(dual, "east/dual")["quota"]["rpm"] == 30


def test_a_429_with_no_requests_left_sends_traffic_elsewhere_until_its_reset(
    dual: Router, mock: Mock
) -> None:
    limited = {
        "kind": "status",
        "status": 429,
        "headers": {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "20s",
        },
        "code": "rate_limit_exceeded",
    }
    mock.fault("dual-east", limited, times=-1)
    # Until east is drawn and refuses, west serves some; every answer succeeds all the same.
    for _ in range(50):
        raw = client(dual).chat.completions.with_raw_response.create(model="dual", messages=USER)
        assert raw.headers["x-router-deployment"] == "west/dual"
        if "dual-east" in served_by(mock, 0):
            break
    else:
        pytest.fail("east was never drawn")
    east = deployment_health(dual, "east/dual")["quota"]
    assert east["headroom"] == 0.0 and 10.0 < east["resets_in_s"] <= 20.0
    before = len(mock.requests())
    for _ in range(10):
        raw = client(dual).chat.completions.with_raw_response.create(model="dual", messages=USER)
        assert raw.headers["x-router-deployment"] == "west/dual"
        assert raw.headers["x-router-attempts"] == "1"
    assert served_by(mock, before) == Counter({"dual-west": 10})  # east was left alone


def test_one_deployment_down_is_no_failure_for_clients(dual: Router, mock: Mock) -> None:
    mock.fault("dual-west", {"kind": "status", "status": 503}, times=-1)
    for stream in (False, True) * 5:
        if stream:
            chunks = list(client(dual).chat.completions.create(model="dual", messages=USER, stream=True))
            assert chunks and chunks[-1].choices and chunks[-1].choices[0].finish_reason == "stop"
        else:
            raw = client(dual).chat.completions.with_raw_response.create(model="dual", messages=USER)
            assert raw.headers["x-router-deployment"] == "east/dual"
    assert set(served_by(mock, 0)) <= {"dual-east", "dual-west"}


def test_provider_slash_model_pins_one_deployment(dual: Router, mock: Mock) -> None:
    for _ in range(5):
        raw = client(dual).chat.completions.with_raw_response.create(model="east/dual", messages=USER)
        assert raw.headers["x-router-deployment"] == "east/dual"
    assert served_by(mock, 0) == Counter({"dual-east": 5})
    listed = {m.id for m in client(dual).models.list()}
    assert {"dual", "east/dual", "west/dual"} <= listed


def test_route_ranks_the_deployments_and_the_log_names_them(dual: Router, mock: Mock) -> None:
    mock.fault("dual-east", {"kind": "status", "status": 429, "retry_after": 30}, times=-1)
    for _ in range(30):
        raw = client(dual).chat.completions.with_raw_response.create(model="dual", messages=USER)
        if raw.headers["x-router-attempts"] == "2":
            break  # east was drawn first, refused, and west served
    else:
        pytest.fail("east was never drawn first")
    explained = dual.http.post("/v1/route", json={"model": "dual", "messages": USER}).json()
    ranked = explained["candidates"][0]["deployments"]
    assert [d["id"] for d in ranked] == ["west/dual", "east/dual"]
    assert ranked[0]["first_chance"] == 1.0 and ranked[1]["first_chance"] == 0.0
    assert ranked[1]["headroom"] == 0.0 and 25 < ranked[1]["resets_in_s"] <= 30
    fell_back = logged_fallback(dual)
    assert fell_back["deployment"] == "west/dual" and fell_back["provider"] == "west"
    assert len(fell_back["attempts"]) == 2 and fell_back["attempts"][1] == "dual:ok"
    assert fell_back["attempt_deployments"] == ["east/dual", "west/dual"]
    scraped = metrics_text(dual)
    assert 'router_breaker_state{model="east/dual"}' in scraped
    assert re.search(r'router_upstream_errors_total\{kind="[a-z_]+",provider="east"\} [1-9]', scraped)
    assert re.search(r'router_requests_total\{[^}]*model="dual"[^}]*provider="west"[^}]*\} [1-9]', scraped)


def metrics_text(router: Router) -> str:
    """The metrics once the last requests are counted in them (they are flushed every second)."""
    deadline = time.monotonic() + 5
    while True:
        text = router.http.get("/metrics").text
        if "router_upstream_errors_total{" in text or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def logged_fallback(router: Router) -> dict[str, Any]:
    """The request line of the answer that fell back from one deployment to the other (the log is
    written in batches: it may take a moment to appear)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in router.logs().splitlines() if line.startswith("{")]
        found = [r for r in lines if r.get("route") == "chat" and len(r.get("attempt_deployments", ())) == 2]
        if found:
            line: dict[str, Any] = found[-1]
            return line
        time.sleep(0.1)
    pytest.fail("no request line names the two deployments of a fallback")
