"""Access control end to end: API keys (401/403), rate limits (429 and the x-ratelimit headers, read
by the official SDK), the ops key, CORS, header and JSON bounds, on a router with an access section."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router

TEAM_KEY = "rk-team-0123456789abcdef0123"
TIGHT_KEY = "rk-tight-0123456789abcdef012"
TOKENS_KEY = "rk-tokens-0123456789abcdef01"
OPS_KEY = "rk-ops-0123456789abcdef01234"
ORIGIN = "https://app.example"
USER: list[Any] = [{"role": "user", "content": "hi"}]

ACCESS = f"""
access:
  defaults: {{requests_per_minute: 6000, burst: 1000}}
  ops_key_env: TEST_OPS_KEY
  keys:
    - {{name: team, key_env: TEST_KEY_TEAM, models: [gpt-5-mini, fast, primary, backup]}}
    - {{name: tight, key_env: TEST_KEY_TIGHT, requests_per_minute: 1, burst: 3}}
    - {{name: tokens, key_env: TEST_KEY_TOKENS, tokens_per_minute: 2000}}
    - {{name: unset, key_env: TEST_KEY_NEVER_SET}}
  model_limits:
    primary: {{requests_per_minute: 1, burst: 2}}
  cors: {{origins: ["{ORIGIN}"]}}
  max_headers: 60
"""


@pytest.fixture(scope="module")
def guarded(
    mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Router]:
    catalog = tmp_path_factory.mktemp("access") / "catalog.yaml"
    catalog.write_text(TEST_CATALOG.read_text() + ACCESS)
    env = {
        "TEST_KEY_TEAM": TEAM_KEY,
        "TEST_KEY_TIGHT": TIGHT_KEY,
        "TEST_KEY_TOKENS": TOKENS_KEY,
        "TEST_OPS_KEY": OPS_KEY,
        "TEST_KEY_NEVER_SET": "",
    }
    router = start_router(mock_process, artifacts, catalog, "router-access", env=env)
    try:
        yield router
    finally:
        router.process.stop()


def sdk(router: Router, key: str) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key=key, max_retries=0, timeout=20)


def test_a_wrong_or_missing_key_is_an_authentication_error(guarded: Router) -> None:
    with pytest.raises(openai.AuthenticationError) as wrong:
        sdk(guarded, "rk-not-a-key").chat.completions.create(model="gpt-5-mini", messages=USER)
    assert wrong.value.status_code == 401
    assert wrong.value.code == "invalid_api_key"
    assert "rk-not-a-key" not in wrong.value.message
    missing = httpx.post(guarded.url + "/v1/chat/completions", json={"model": "gpt-5-mini", "messages": USER})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert "x-request-id" in missing.headers
    # The paths without /v1 (n8n's base URL without it) are guarded the same way.
    bare = httpx.post(guarded.url + "/chat/completions", json={"model": "gpt-5-mini", "messages": USER})
    assert bare.status_code == 401
    assert httpx.get(guarded.url + "/v1/models").status_code == 401


def test_bearer_and_x_api_key_are_both_accepted(guarded: Router, mock: Mock) -> None:
    raw = sdk(guarded, TEAM_KEY).chat.completions.with_raw_response.create(model="gpt-5-mini", messages=USER)
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-ratelimit-limit-requests"] == "6000"
    assert int(raw.headers["x-ratelimit-remaining-requests"]) <= 999
    answer = httpx.post(
        guarded.url + "/v1/chat/completions",
        json={"model": "gpt-5-mini", "messages": USER},
        headers={"x-api-key": TEAM_KEY},
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    # Every model route takes the key, the Responses API included.
    response = sdk(guarded, TEAM_KEY).responses.create(model="gpt-5-mini", input="hi")
    assert response.output_text


def test_a_key_may_use_only_its_models(guarded: Router, mock: Mock) -> None:
    with pytest.raises(openai.PermissionDeniedError) as denied:
        sdk(guarded, TEAM_KEY).chat.completions.create(model="claude", messages=USER)
    assert denied.value.status_code == 403
    assert denied.value.code == "model_not_allowed"
    assert "'team'" in denied.value.message and "gpt-5-mini" in denied.value.message
    # An alias counts as the model it names; a fallback list is checked entry by entry.
    assert sdk(guarded, TEAM_KEY).chat.completions.create(model="mini", messages=USER).choices
    with pytest.raises(openai.PermissionDeniedError) as listed:
        sdk(guarded, TEAM_KEY).chat.completions.create(
            model="gpt-5-mini", messages=USER, extra_body={"models": ["gemini"]}
        )
    assert listed.value.param == "models[0]"


def test_over_the_request_limit_is_a_rate_limit_error_with_headers(guarded: Router, mock: Mock) -> None:
    client = sdk(guarded, TIGHT_KEY)
    admitted = 0
    with pytest.raises(openai.RateLimitError) as limited:
        for _ in range(5):
            client.chat.completions.create(model="gpt-5-mini", messages=USER)
            admitted += 1
    # /v1/models above is not a model call; the burst of 3 admits exactly three.
    assert admitted == 3
    error = limited.value
    assert error.status_code == 429 and error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    headers = error.response.headers
    assert headers["x-ratelimit-limit-requests"] == "1"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"].endswith(("s", "ms"))
    # What the SDK reads to decide when to retry: retry-after-ms, then retry-after.
    wait_ms = int(headers["retry-after-ms"])
    assert 1_000 <= wait_ms <= 60_000
    assert int(headers["retry-after"]) == -(-wait_ms // 1000)
    assert "x-should-retry" not in headers
    assert "try again in" in error.message
    metrics = httpx.get(guarded.url + "/metrics", headers={"authorization": f"Bearer {OPS_KEY}"}).text
    assert 'router_rate_limit_rejections_total{key="tight",limit="key_requests"} 1.0' in metrics
    assert (
        'router_requests_total{key="tight",model="gpt-5-mini",model_asked="gpt-5-mini",provider="openai",'
        'route="chat",status="200",strategy=""} 3.0'
    ) in metrics


def test_tokens_per_minute_refuses_a_request_larger_than_the_budget(guarded: Router, mock: Mock) -> None:
    client = sdk(guarded, TOKENS_KEY)
    raw = client.chat.completions.with_raw_response.create(model="gpt-5-mini", messages=USER)
    assert raw.headers["x-ratelimit-limit-tokens"] == "2000"
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) < 2000
    big = [{"role": "user", "content": "word " * 2500}]
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-5-mini", messages=big)
    assert limited.value.type == "tokens"
    assert "Request too large" in limited.value.message
    assert limited.value.response.headers["x-should-retry"] == "false"


def test_a_model_limit_moves_the_request_to_the_fallback(guarded: Router, mock: Mock) -> None:
    client = sdk(guarded, TEAM_KEY)
    served = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="primary", messages=USER)
        served.append(raw.headers["x-router-model"])
    assert served == ["primary", "primary", "backup"]
    assert raw.headers["x-router-fallback-reason"] == "rate_limited"
    # The limit says nothing about the model's health: its breaker stays closed.
    health = httpx.get(guarded.url + "/model-health", headers={"authorization": f"Bearer {OPS_KEY}"}).json()
    primary = next(m for m in health["models"] if m["id"] == "primary")
    assert primary["breaker"]["state"] == "closed" and primary["breaker"]["consecutive_failures"] == 0


def test_ops_routes_take_the_ops_key_and_help_is_public(guarded: Router) -> None:
    for path in ("/health", "/model-health"):
        assert httpx.get(guarded.url + path).status_code == 401
        assert (
            httpx.get(guarded.url + path, headers={"authorization": f"Bearer {TEAM_KEY}"}).status_code == 401
        )
        assert (
            httpx.get(guarded.url + path, headers={"authorization": f"Bearer {OPS_KEY}"}).status_code == 200
        )
    assert httpx.get(guarded.url + "/health/live").status_code == 200
    help_doc = httpx.get(guarded.url + "/help").json()
    assert help_doc["auth"]["keys_required"] is True
    health = httpx.get(guarded.url + "/health", headers={"x-api-key": OPS_KEY}).json()
    assert health["access"]["keys"] == ["team", "tight", "tokens"]
    assert any("'unset'" in w and "TEST_KEY_NEVER_SET" in w for w in health["warnings"])


def test_cors_preflight_and_answers_for_an_allowed_origin(guarded: Router) -> None:
    preflight = httpx.options(
        guarded.url + "/v1/chat/completions",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    assert "POST" in preflight.headers["access-control-allow-methods"]
    answer = httpx.post(
        guarded.url + "/v1/chat/completions",
        json={"model": "gpt-5-mini", "messages": USER},
        headers={"origin": ORIGIN, "authorization": f"Bearer {TEAM_KEY}"},
        timeout=20,
    )
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "x-ratelimit-remaining-requests" in answer.headers["access-control-expose-headers"]
    stranger = httpx.options(
        guarded.url + "/v1/chat/completions",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in stranger.headers


def test_too_many_headers_is_431(guarded: Router) -> None:
    headers = {f"x-filler-{i}": "v" for i in range(80)}
    answer = httpx.post(guarded.url + "/v1/chat/completions", json={}, headers=headers)
    assert answer.status_code == 431
    assert answer.json()["error"]["code"] == "request_header_fields_too_large"


@pytest.mark.parametrize("depth", [150, 5000])
def test_deeply_nested_json_is_a_400_not_a_crash(guarded: Router, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    body = (
        '{"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}], "metadata": ' + nested + "}"
    )
    answer = httpx.post(
        guarded.url + "/v1/chat/completions",
        content=body,
        headers={"authorization": f"Bearer {TEAM_KEY}", "content-type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "json_too_deep"


def test_the_request_log_names_the_key_and_never_holds_one(guarded: Router, mock: Mock) -> None:
    sdk(guarded, TEAM_KEY).chat.completions.create(model="gpt-5-mini", messages=USER)
    with pytest.raises(openai.AuthenticationError):
        sdk(guarded, "rk-leak-me-if-you-can-000000").chat.completions.create(
            model="gpt-5-mini", messages=USER
        )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and '"key":"team"' not in guarded.logs():
        time.sleep(0.1)
    logs = guarded.logs()
    assert '"key":"team"' in logs
    assert '"status":401' in logs
    for secret in (TEAM_KEY, TIGHT_KEY, OPS_KEY, "rk-leak-me-if-you-can"):
        assert secret not in logs


def test_router_api_key_alone_protects_the_router(mock_process: Mock, artifacts: Path) -> None:
    router = start_router(
        mock_process, artifacts, TEST_CATALOG, "router-default-key", env={"ROUTER_API_KEY": "k-default-123"}
    )
    try:
        with pytest.raises(openai.AuthenticationError):
            sdk(router, "wrong").chat.completions.create(model="gpt-5-mini", messages=USER)
        assert sdk(router, "k-default-123").chat.completions.create(model="gpt-5-mini", messages=USER).choices
        # Without an ops key the ops routes stay open, for probes and scrapers.
        assert httpx.get(router.url + "/health").json()["access"]["keys"] == ["default"]
    finally:
        router.process.stop()


def test_a_stored_response_belongs_to_the_key_that_made_it(guarded: Router, mock: Mock) -> None:
    created = sdk(guarded, TEAM_KEY).responses.create(model="gpt-5-mini", input="mine")
    assert sdk(guarded, TEAM_KEY).responses.retrieve(created.id).id == created.id
    other = sdk(guarded, TOKENS_KEY)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(created.id)
    with pytest.raises(openai.BadRequestError) as continued:
        other.responses.create(model="gpt-5-mini", input="yours?", previous_response_id=created.id)
    assert continued.value.code == "previous_response_not_found"
    sdk(guarded, TEAM_KEY).responses.delete(created.id)


def test_a_key_lists_only_the_models_it_may_use(guarded: Router) -> None:
    listed = {m.id for m in sdk(guarded, TEAM_KEY).models.list()}
    assert listed == {"gpt-5-mini", "mini", "mini-flex", "fast", "primary", "backup"}
    assert "claude" in {m.id for m in sdk(guarded, TOKENS_KEY).models.list()}
