"""The operator's routes on the shared router: /help as JSON and as a page, the router's own OpenAPI
document, /health with its components and traffic, liveness, and /metrics in Prometheus form."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from router.api.openapi import ENDPOINTS
from tests.integration.conftest import Mock, Router, start_router

USER: list[Any] = [{"role": "user", "content": "hi"}]


def test_help_lists_endpoints_strategies_models_auth_and_examples(router: Router) -> None:
    for path in ("/help", "/v1/help"):
        doc = router.http.get(path).json()
        assert {e["path"] for e in doc["endpoints"]} >= {"/v1/chat/completions", "/v1/responses", "/health"}
        strategies = {s["name"]: s["optimises"] for s in doc["strategies"]}
        assert set(strategies) == {
            "fast",
            "speed",
            "fast-flex",
            "balanced",
            "balanced-flex",
            "quality",
            "cost",
        }
        assert "latency" in strategies["fast"] and "cost" in strategies["cost"]
        mini = next(m for m in doc["models"] if m["id"] == "gpt-5-mini")
        assert mini["provider"] == "openai" and mini["context_window"] == 400000
        azure = next(m for m in doc["models"] if m["id"] == "azure-legacy-mini")
        assert (azure["provider"], azure["provider_kind"]) == ("azure-legacy", "azure")
        assert (
            mini["price_per_1m_tokens"]["input"] == 0.25
            and mini["price_per_1m_tokens"]["flex_input"] == 0.125
        )
        assert doc["aliases"]["mini"] == {"model": "gpt-5-mini"}
        assert doc["auth"]["keys_required"] is False
        assert doc["router"]["base_url"] == router.url + "/v1"
        assert router.url + "/v1" in doc["examples"]["curl"] and "base_url" in doc["examples"]["openai_sdk"]
        assert "/v1" in doc["examples"]["n8n"] and "HTTPS" in doc["examples"]["cursor"]


def test_help_is_a_readable_page_for_a_browser(router: Router) -> None:
    page = router.http.get("/help", headers={"accept": "text/html,application/xhtml+xml"})
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    text = page.text
    assert "<title>Router — help</title>" in text
    assert "<code>gpt-5-mini</code>" in text and "Strategy keywords" in text and "/dashboard" in text
    assert text.count("<tr>") > 20


def test_the_router_serves_a_valid_openapi_document_of_its_own_api(router: Router) -> None:
    document = router.http.get("/openapi.json").json()
    validate(document)
    assert set(document["paths"]) == {path for _, path, _ in ENDPOINTS}
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    assert chat["responses"]["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    # Every documented GET route exists on the live router.
    for method, path, _ in ENDPOINTS:
        if method == "GET" and "{" not in path:
            assert router.http.get(path).status_code == 200, path


def test_health_reports_components_and_counts_traffic(router: Router, mock: Mock) -> None:
    before = router.http.get("/health").json()
    assert before["status"] in ("ok", "degraded")
    components = before["components"]
    assert set(components) == {"catalog", "store", "providers", "models", "breakers"}
    assert components["catalog"]["models"] >= 10 and components["store"]["backend"] == "memory"
    assert "keyless" in components["providers"]["missing"]
    assert components["models"]["routable"] < components["models"]["total"]
    for _ in range(3):
        router.http.post("/v1/chat/completions", json={"model": "gpt-5-mini", "messages": USER})
    after = router.http.get("/health").json()
    assert after["traffic"]["requests"] >= before["traffic"]["requests"] + 3
    assert after["traffic"]["overhead_ms_p50"] is not None and after["traffic"]["requests_per_s"] > 0
    assert after["uptime_s"] > before["uptime_s"] and after["version"]
    assert router.http.get("/health/live").json() == {"status": "ok"}


def test_metrics_count_what_was_served(router: Router, mock: Mock) -> None:
    router.http.post("/v1/chat/completions", json={"model": "mini", "messages": USER})
    scraped = router.http.get("/metrics")
    assert scraped.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = scraped.text
    assert re.search(
        r'router_requests_total\{[^}]*model="gpt-5-mini",model_asked="mini"[^}]*status="200"', text
    )
    assert 'router_tokens_total{kind="input",model="gpt-5-mini"}' in text
    assert "router_overhead_seconds_bucket" in text and "router_breaker_state" in text


def test_metrics_pass_promtool(router: Router, mock: Mock) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian's prometheus package; .ci/run installs it)")
    router.http.post("/v1/chat/completions", json={"model": "gpt-5-mini", "messages": USER})
    exposition = router.http.get("/metrics").content
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def test_one_request_line_carries_every_field_an_operator_reads(router: Router, mock: Mock) -> None:
    raw = router.http.post(
        "/v1/chat/completions",
        json={
            "model": "fast",
            "messages": [{"role": "user", "content": "secret-prompt-text words=3"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    request_id = raw.headers["x-request-id"]
    line = None
    deadline = time.monotonic() + 5
    while line is None and time.monotonic() < deadline:
        line = next((entry for entry in log_lines(router) if entry.get("request_id") == request_id), None)
        time.sleep(0.05)
    assert line is not None
    for field in (
        "key",
        "model_asked",
        "model",
        "provider",
        "strategy",
        "attempts",
        "status",
        "duration_ms",
        "ttft_ms",
        "overhead_ms",
        "upstream_ms",
        "model_ms",
        "tokens_in",
        "tokens_out",
        "cost_usd",
    ):
        assert field in line, field
    assert line["strategy"] == "fast" and line["status"] == 200 and line["attempts"][-1].endswith(":ok")
    assert 0 <= line["overhead_ms"] <= line["ttft_ms"] <= line["duration_ms"]
    # The serving model's own time: the stream's whole length, less the router's time before it.
    assert 0 < line["model_ms"] <= line["duration_ms"] - line["overhead_ms"] + 0.05
    assert "secret-prompt-text" not in router.logs() and "lorem" not in router.logs()


def log_lines(router: Router) -> list[dict[str, Any]]:
    entries = []
    for text in router.logs().splitlines():
        if text.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                entries.append(json.loads(text))
    return entries


def test_health_is_503_when_nothing_can_be_routed(
    mock_process: Mock, artifacts: Path, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        """
providers:
  keyless:
    kind: openai
    base_url: https://keyless.invalid/v1
    api_key_env: TEST_NEVER_SET_KEY
models:
  needs-key:
    provider: keyless
    context_window: 8000
    max_output: 1000
    price: {input: 1, output: 1}
    quality: 50
    speed: {ttft_ms: 500, tokens_per_s: 50}
"""
    )
    router = start_router(mock_process, artifacts, catalog, "router-unroutable")
    try:
        answer = router.http.get("/health")
        assert answer.status_code == 503
        report = answer.json()
        assert report["status"] == "unhealthy"
        assert report["components"]["models"] == {"status": "unhealthy", "routable": 0, "total": 1}
        assert report["components"]["providers"]["missing"] == {"keyless": "TEST_NEVER_SET_KEY"}
        assert router.http.get("/health/live").status_code == 200
    finally:
        router.process.stop()
