"""Strategy routing end to end: live latency moves `fast`, prompt size moves `cost`; cost headers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.integration.conftest import Mock, Router, start_router

CATALOG = """
providers:
  compat:
    kind: openai
    base_url: http://127.0.0.1:11434/v1
    timeouts: {connect: 1, read: 5, total: 5, first_token: 5}
models:
  quick:
    provider: compat
    upstream: quick-upstream
    context_window: 100000
    max_output: 4000
    price: {input: 1.0, output: 4.0}
    quality: 60
    speed: {ttft_ms: 100, tokens_per_s: 100}
  steady:
    provider: compat
    upstream: steady-upstream
    context_window: 100000
    max_output: 4000
    price: {input: 2.0, output: 8.0, cached_input: 0.5}
    flex_price: {input: 1.0, output: 4.0}
    quality: 70
    speed: {ttft_ms: 250, tokens_per_s: 100}
  tiny:
    provider: compat
    upstream: tiny-upstream
    context_window: 2000
    max_output: 500
    price: {input: 0.01, output: 0.02}
    quality: 30
    speed: {ttft_ms: 400, tokens_per_s: 50}
aliases:
  steady-flex: {model: steady, service_tier: flex}
"""


@pytest.fixture(scope="module")
def routed(mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    path = tmp_path_factory.mktemp("routing") / "catalog.yaml"
    path.write_text(CATALOG)
    router = start_router(mock_process, artifacts, path, "router-routing")
    try:
        yield router
    finally:
        router.process.stop()


def ask(router: Router, model: str, content: str = "hi", **extra: Any) -> Any:
    client = OpenAI(base_url=router.url + "/v1", api_key="k", max_retries=0, timeout=20)
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}], **extra
    )


def test_fast_moves_to_another_model_when_the_first_becomes_slow(routed: Router, mock: Mock) -> None:
    assert ask(routed, "fast", max_tokens=10).headers["x-router-model"] == "quick"
    mock.behaviour("quick-upstream", latency_ms=700)
    served = [ask(routed, "fast", max_tokens=10).headers["x-router-model"] for _ in range(8)]
    assert served[0] == "quick" and served[-1] == "steady"
    latency = next(m for m in routed.http.get("/model-health").json()["models"] if m["id"] == "quick")[
        "latency"
    ]
    assert latency["ttft_ms"] > 250 and latency["latency_p50_ms"] >= 600


def test_cost_changes_with_prompt_size_when_the_cheap_context_is_too_small(
    routed: Router, mock: Mock
) -> None:
    assert ask(routed, "cost", max_tokens=10).headers["x-router-model"] == "tiny"
    long_prompt = "word " * 2500  # about 3,100 estimated tokens: more than tiny's 2,000
    raw = ask(routed, "cost", long_prompt, max_tokens=10)
    assert raw.headers["x-router-model"] == "quick"
    assert raw.headers["x-router-strategy"] == "cost"


def test_cost_header_prices_the_actual_usage_at_the_served_tier(routed: Router, mock: Mock) -> None:
    raw = ask(routed, "steady", "say words=10")
    usage = raw.parse().usage
    expected = (usage.prompt_tokens * 2.0 + usage.completion_tokens * 8.0) / 1_000_000
    assert float(raw.headers["x-router-cost-usd"]) == pytest.approx(expected, rel=1e-6)
    flex = ask(routed, "steady-flex", "say words=10")
    assert flex.parse().service_tier == "flex"
    flex_usage = flex.parse().usage
    expected_flex = (flex_usage.prompt_tokens * 1.0 + flex_usage.completion_tokens * 4.0) / 1_000_000
    assert float(flex.headers["x-router-cost-usd"]) == pytest.approx(expected_flex, rel=1e-6)
    assert 0 <= float(raw.headers["x-router-overhead-ms"]) < 100


def upstream_calls(mock: Mock, upstream: str) -> list[dict[str, Any]]:
    return [r["body"] for r in mock.requests() if r["body"].get("model") == upstream]


def test_transient_failure_is_retried_on_the_same_model(routed: Router, mock: Mock) -> None:
    mock.fault("steady-upstream", {"kind": "status", "status": 500})
    raw = ask(routed, "steady")
    assert raw.headers["x-router-model"] == "steady" and raw.headers["x-router-attempts"] == "2"
    assert len(upstream_calls(mock, "steady-upstream")) == 2


def test_client_error_is_not_retried(routed: Router, mock: Mock) -> None:
    mock.fault("steady-upstream", {"kind": "status", "status": 400})
    with pytest.raises(openai.BadRequestError):
        ask(routed, "steady")
    assert len(upstream_calls(mock, "steady-upstream")) == 1


def test_retry_after_beyond_the_cap_is_not_waited_for(routed: Router, mock: Mock) -> None:
    mock.fault("steady-upstream", {"kind": "status", "status": 429, "retry_after": 30})
    with pytest.raises(openai.RateLimitError):
        ask(routed, "steady")
    assert len(upstream_calls(mock, "steady-upstream")) == 1


def test_flex_capacity_refusal_retries_at_standard_tier_without_tripping(routed: Router, mock: Mock) -> None:
    before = next(m for m in routed.http.get("/model-health").json()["models"] if m["id"] == "steady")
    mock.fault("steady-upstream", {"kind": "status", "status": 429, "message": "Resource unavailable"})
    raw = ask(routed, "steady-flex", "say words=10")
    tiers = [body.get("service_tier") for body in upstream_calls(mock, "steady-upstream")]
    assert tiers == ["flex", "default"]
    completion = raw.parse()
    assert completion.service_tier == "default"
    usage = completion.usage
    standard = (usage.prompt_tokens * 2.0 + usage.completion_tokens * 8.0) / 1_000_000
    assert float(raw.headers["x-router-cost-usd"]) == pytest.approx(standard, rel=1e-6)
    after = next(m for m in routed.http.get("/model-health").json()["models"] if m["id"] == "steady")
    assert after["breaker"]["failures_in_window"] == before["breaker"]["failures_in_window"]


def test_request_models_list_is_tried_in_order_after_model(routed: Router, mock: Mock) -> None:
    mock.fault("quick-upstream", {"kind": "status", "status": 503}, times=2)
    raw = ask(routed, "quick", extra_body={"models": ["tiny", "steady"]})
    assert raw.headers["x-router-model"] == "tiny"
    assert raw.headers["x-router-fallback-reason"] == "server_error"
    assert "models" not in upstream_calls(mock, "tiny-upstream")[-1]  # a router-only field
    with pytest.raises(openai.NotFoundError) as info:
        ask(routed, "quick", extra_body={"models": ["tiny", "no-such-model"]})
    assert info.value.param == "models[1]"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as bad:
        ask(routed, "quick", extra_body={"models": ["fast"]})
    assert bad.value.param == "models[0]" and "strategy" in bad.value.message


def test_route_explains_the_plan_without_calling_upstream(routed: Router, mock: Mock) -> None:
    before = len(mock.requests())
    body = {"model": "cost", "messages": [{"role": "user", "content": "word " * 2500}], "max_tokens": 10}
    plan = routed.http.post("/v1/route", json=body).json()
    assert plan["strategy"] == "cost"
    assert [c["model"] for c in plan["candidates"]][:2] == ["quick", "steady"]
    assert plan["candidates"][0]["expected_cost_usd"] > 0
    assert {"model": "tiny", "reason": plan["excluded"][0]["reason"], "kind": "size"} in plan["excluded"]
    assert "context window 2000" in plan["excluded"][0]["reason"]
    assert len(mock.requests()) == before
    bad = routed.http.post(
        "/v1/route", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]}
    )
    assert bad.status_code == 404 and bad.json()["error"]["code"] == "model_not_found"


def test_stream_cost_uses_the_tier_reported_in_the_stream(routed: Router, mock: Mock) -> None:
    client = OpenAI(base_url=routed.url + "/v1", api_key="k", max_retries=0, timeout=20)
    chunks = list(
        client.chat.completions.create(
            model="steady-flex",
            messages=[{"role": "user", "content": "say words=10"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and chunks[0].service_tier == "flex"
    expected = round((usage.prompt_tokens * 1.0 + usage.completion_tokens * 4.0) / 1_000_000, 8)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in routed.logs().splitlines() if '"model_asked":"steady-flex"' in x]
        streamed = [x for x in lines if x.get("stream")]
        if streamed:
            break
        time.sleep(0.1)
    assert streamed[-1]["cost_usd"] == pytest.approx(expected, rel=1e-6)


@pytest.fixture(scope="module")
def roomy(mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """The routing catalog behind a router that takes bodies of up to 32 MiB."""
    path = tmp_path_factory.mktemp("roomy") / "catalog.yaml"
    path.write_text(CATALOG)
    env = {"ROUTER_MAX_BODY_BYTES": str(32 * 1024 * 1024)}
    router = start_router(mock_process, artifacts, path, "router-roomy", env=env)
    try:
        yield router
    finally:
        router.process.stop()


HUGE = "word " * 400_000  # 2 MB: some 100,000 tokens or more, whatever the tokenizer


@pytest.mark.parametrize("model", ["cost", "fast", "quick", "tiny"])
def test_a_prompt_too_large_for_every_candidate_is_a_400_not_retried(
    roomy: Router, mock: Mock, model: str
) -> None:
    before = len(mock.requests())
    answer = roomy.http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": HUGE}], "models": ["steady"]},
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    assert "100000 tokens" in error["message"]  # the largest context among the candidates
    assert answer.headers["x-should-retry"] == "false"
    assert len(mock.requests()) == before  # no upstream was called
    # The official SDK raises BadRequestError at once: the 2 MB body is not sent again.
    client = OpenAI(base_url=roomy.url + "/v1", api_key="k", timeout=20)  # default retries
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": HUGE}])


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", {"model": "cost", "max_tokens": 100_000}, "max_tokens"),
        (
            "/v1/chat/completions",
            {"model": "quick", "max_completion_tokens": 10**30},
            "max_completion_tokens",
        ),
        ("/v1/chat/completions", {"model": "tiny", "max_tokens": 501, "models": ["quick"]}, None),
        ("/v1/responses", {"model": "balanced", "max_output_tokens": 100_000}, "max_output_tokens"),
        ("/v1/completions", {"model": "steady", "max_tokens": 10_000}, "max_tokens"),
    ],
)
def test_an_output_limit_over_every_candidates_max_output_is_a_400(
    routed: Router, path: str, body: dict[str, Any], param: str | None
) -> None:
    content: dict[str, Any] = (
        {"prompt": "hi"}
        if path.endswith("/completions") and "chat" not in path
        else {"input": "hi"}
        if path.endswith("responses")
        else {"messages": [{"role": "user", "content": "hi"}]}
    )
    answer = routed.http.post(path, json={**content, **body})
    if param is None:  # tiny cannot write 501 tokens, quick (in 'models') can: quick serves
        assert answer.status_code == 200 and answer.headers["x-router-model"] == "quick"
        return
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and error["code"] == "invalid_value"
    assert "at most 4000 tokens" in error["message"]
    assert answer.headers["x-should-retry"] == "false"
