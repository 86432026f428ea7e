"""/metrics after a scripted mix of successes, fallbacks, a breaker trip and rate-limit rejections:
each is counted with the right labels, and promtool accepts the exposition."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router

POLICY = "  breaker: {consecutive_failures: 2, min_volume: 100, cooldown_s: 60, max_cooldown_s: 60}"
ACCESS = """
access:
  keys:
    - {name: busy, key_env: TEST_KEY_BUSY, requests_per_minute: 1, burst: 2}
    - {name: calm, key_env: TEST_KEY_CALM, requests_per_minute: 6000, burst: 1000}
"""
BUSY, CALM = "rk-busy-0123456789abcdef0123", "rk-calm-0123456789abcdef0123"
USER: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def counted(
    mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Router]:
    text = TEST_CATALOG.read_text()
    text = text.replace(text[text.index("  breaker:") :].splitlines()[0], POLICY) + ACCESS
    catalog = tmp_path_factory.mktemp("metrics") / "catalog.yaml"
    catalog.write_text(text)
    env = {"TEST_KEY_BUSY": BUSY, "TEST_KEY_CALM": CALM}
    router = start_router(mock_process, artifacts, catalog, "router-metrics", env=env)
    try:
        yield router
    finally:
        router.process.stop()


def chat(router: Router, key: str, model: str) -> httpx.Response:
    return router.http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": USER},
        headers={"authorization": f"Bearer {key}"},
    )


def scrape(router: Router) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    text = router.http.get("/metrics").text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return text, found


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def total(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


def test_a_scripted_mix_is_counted_with_the_right_labels(counted: Router, mock: Mock) -> None:
    # Successes.
    for _ in range(3):
        assert chat(counted, CALM, "gpt-5-mini").status_code == 200
    # Two fallbacks from a failing model: its breaker trips on the second.
    mock.fault("primary-upstream", {"kind": "status", "status": 500}, times=-1)
    for _ in range(2):
        answer = chat(counted, CALM, "primary")
        assert answer.headers["x-router-model"] == "backup"
    # A third request skips the open breaker.
    skipped = chat(counted, CALM, "primary")
    assert skipped.headers["x-router-attempts"] == "1"
    assert skipped.headers["x-router-fallback-reason"] == "breaker_open"
    # Rate limits: burst 2, then refusals.
    statuses = [chat(counted, BUSY, "gpt-5-mini").status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    time.sleep(0.1)
    text, found = scrape(counted)

    served = {"route": "chat", "model_asked": "gpt-5-mini", "model": "gpt-5-mini", "provider": "openai"}
    assert value(found, "router_requests_total", **served, strategy="", status="200", key="calm") == 3
    assert value(found, "router_requests_total", **served, strategy="", status="200", key="busy") == 2
    refused = {"route": "chat", "model_asked": "gpt-5-mini", "model": "", "provider": "", "strategy": ""}
    assert value(found, "router_requests_total", **refused, status="429", key="busy") == 2
    assert value(found, "router_rate_limit_rejections_total", key="busy", limit="key_requests") == 2

    fell_back = {"route": "chat", "model_asked": "primary", "model": "backup", "provider": "compat"}
    assert value(found, "router_requests_total", **fell_back, strategy="", status="200", key="calm") == 3
    # Two failed calls; the third request passed over the open breaker without a call.
    assert total(found, "router_attempts_total", model="primary") == 2
    assert value(found, "router_attempts_total", model="backup", outcome="ok") == 3
    assert total(found, "router_fallbacks_total") == 3
    assert value(found, "router_fallbacks_total", reason="breaker_open") == 1
    assert total(found, "router_upstream_errors_total", provider="openai") == 2

    assert value(found, "router_breaker_transitions_total", model="primary", to="open") == 1
    assert value(found, "router_breaker_state", model="primary") == 2
    assert value(found, "router_breaker_state", model="backup") == 0

    assert value(found, "router_request_duration_seconds_count", route="chat") == 3 + 3 + 4
    assert value(found, "router_upstream_duration_seconds_count", provider="compat", model="backup") == 3
    assert total(found, "router_tokens_total", model="gpt-5-mini", kind="input") > 0
    assert total(found, "router_cost_usd_total", model="gpt-5-mini", key="calm") > 0
    assert value(found, "router_models_routable") >= 1

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian's prometheus package; .ci/run installs it)")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
