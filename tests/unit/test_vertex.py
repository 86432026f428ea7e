"""Vertex AI's adapter pieces: URLs per location and publisher, the Claude body (no model, Vertex's
version), the bearer headers, the mapping of both error envelopes, and the credentials errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from router.catalog import Provider, parse_catalog
from router.errors import RouterError
from router.providers._anthropic_request import build_body as claude_body
from router.providers._google_auth import GoogleCredentials
from router.providers._tokens import Grant, StaticToken, TokenError
from router.providers.base import UpstreamCall
from router.providers.vertex import (
    ANTHROPIC_VERSION,
    VertexCalls,
    VertexClaude,
    VertexGemini,
    map_error,
    no_token,
)
from router.types import ChatRequest

CATALOG_TEXT = """
providers:
  east: {kind: vertex, project: my-project, region: us-east5}
  world: {kind: vertex, project: my-project, region: global}
  europe: {kind: vertex, project: my-project, region: eu}
models:
  claude: {provider: east, upstream: claude-sonnet-4-5@20250929, context_window: 200000, max_output: 64000,
           quality: 90, price: {input: 3, output: 15}, speed: {ttft_ms: 900, tokens_per_s: 70}}
  flash: {provider: world, upstream: gemini-2.5-flash, context_window: 1000000, max_output: 65536,
          quality: 74, price: {input: 0.3, output: 2.5}, speed: {ttft_ms: 600, tokens_per_s: 200}}
"""
TOKEN_ENV = {"ROUTER_EAST_ACCESS_TOKEN": "ya29.east", "ROUTER_WORLD_ACCESS_TOKEN": "ya29.world"}
CATALOG = parse_catalog(CATALOG_TEXT, TOKEN_ENV)
RESOURCE_EXHAUSTED = {
    "error": {
        "code": 429,
        "message": "Resource exhausted, please try again later.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
    }
}


class Tokens:
    """A token source that counts refusals."""

    def __init__(self) -> None:
        self.refusals = 0

    async def grant(self) -> Grant:
        return Grant("ya29.kept", quota_project="billing-project")

    def refused(self) -> None:
        self.refusals += 1

    async def aclose(self) -> None:
        return None


def calls(name: str, tokens: Any = None) -> VertexCalls:
    provider = CATALOG.providers[name]
    return VertexCalls(provider, tokens or StaticToken(provider.api_key or ""))


def mapped(
    status: int, body: object, provider: str = "east", headers: dict[str, str] | None = None
) -> RouterError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return map_error(status, raw, headers or {}, CATALOG.providers[provider], StaticToken("t"))


# --- URLs, bodies, headers -------------------------------------------------------------------------


def test_urls_name_the_project_the_location_and_the_publisher() -> None:
    claude = VertexClaude(calls("east"))
    prefix = "https://us-east5-aiplatform.googleapis.com/v1/projects/my-project/locations/us-east5/publishers"
    assert claude.url("claude-sonnet-4-5@20250929", stream=False) == (
        f"{prefix}/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    )
    assert claude.url("claude-sonnet-4-5@20250929", stream=True).endswith(":streamRawPredict")
    gemini = VertexGemini(calls("world"))
    assert gemini.url("gemini-2.5-flash", "streamGenerateContent?alt=sse") == (
        "https://aiplatform.googleapis.com/v1/projects/my-project/locations/global/publishers/google/"
        "models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    europe = parse_catalog(CATALOG_TEXT, {}).providers["europe"]
    assert europe.base_url == "https://aiplatform.eu.rep.googleapis.com"


def test_the_base_url_override_keeps_the_resource_path() -> None:
    moved = parse_catalog(CATALOG_TEXT, {**TOKEN_ENV, "ROUTER_EAST_BASE_URL": "http://127.0.0.1:9/vertex"})
    url = VertexGemini(VertexCalls(moved.providers["east"], StaticToken("t"))).url("gemini-2.5-pro", "x")
    assert (
        url
        == "http://127.0.0.1:9/vertex/v1/projects/my-project/locations/us-east5/publishers/google/models/gemini-2.5-pro:x"
    )


def test_the_claude_body_names_vertex_s_version_instead_of_the_model() -> None:
    request = msgspec.convert(
        {"model": "claude", "messages": [{"role": "user", "content": "hi"}]}, ChatRequest
    )
    model = CATALOG.models["claude"]
    call = UpstreamCall(request=request, model=model, provider=CATALOG.provider_of(model), request_id="r")
    body = json.loads(claude_body(call, stream=True, version=VertexClaude(calls("east")).body_version))
    assert "model" not in body
    assert next(iter(body)) == "anthropic_version" and body["anthropic_version"] == ANTHROPIC_VERSION
    assert body["stream"] is True and body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}
    ]


async def test_headers_carry_the_bearer_token_and_the_quota_project() -> None:
    static = await VertexClaude(calls("east")).headers(stream=True)
    assert static["authorization"] == "Bearer ya29.east" and static["accept"] == "text/event-stream"
    assert "x-goog-user-project" not in static and "x-api-key" not in static
    kept = await VertexGemini(calls("world", Tokens())).headers()
    assert kept["authorization"] == "Bearer ya29.kept" and kept["x-goog-user-project"] == "billing-project"


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapped", [False, True], ids=["object", "array"])
def test_resource_exhausted_is_a_retryable_429_with_its_delay(wrapped: bool) -> None:
    error = mapped(429, [RESOURCE_EXHAUSTED] if wrapped else RESOURCE_EXHAUSTED)
    assert (error.status, error.code, error.retry_after) == (429, "RESOURCE_EXHAUSTED", 7.0)
    assert error.may_fall_back and error.counts_against_breaker and error.client_should_retry
    plain = {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}
    assert mapped(429, plain, headers={"retry-after": "12"}).retry_after == 12.0


def test_a_refused_token_is_dropped_and_the_error_names_what_to_fix() -> None:
    tokens = Tokens()
    body = {
        "error": {
            "code": 401,
            "message": "Request had invalid authentication credentials.",
            "status": "UNAUTHENTICATED",
        }
    }
    error = map_error(401, json.dumps(body).encode(), {}, CATALOG.providers["east"], tokens)
    assert tokens.refusals == 1
    assert (error.status, error.code, error.may_fall_back) == (502, "upstream_auth_failed", True)
    assert "the access token in ROUTER_EAST_ACCESS_TOKEN" in error.message
    assert "gcloud auth print-access-token" in error.message


def test_a_403_names_the_role_and_the_api_to_enable() -> None:
    body = {"error": {"code": 403, "message": "Permission denied", "status": "PERMISSION_DENIED"}}
    error = mapped(403, body)
    assert error.status == 502 and "roles/aiplatform.user" in error.message
    assert "aiplatform.googleapis.com" in error.message and "project 'my-project'" in error.message


@pytest.mark.parametrize(
    ("status", "name"), [(404, "NOT_FOUND"), (400, "FAILED_PRECONDITION")], ids=["not-found", "not-enabled"]
)
def test_a_wrong_model_or_region_is_the_catalog_s_fault(status: int, name: str) -> None:
    error = mapped(
        status, {"error": {"code": status, "message": "Publisher Model not found", "status": name}}
    )
    assert (error.status, error.code, error.may_fall_back) == (502, "upstream_misconfigured", True)
    assert "region 'us-east5' of project 'my-project'" in error.message and "@" in error.message


def test_claude_s_own_errors_keep_anthropic_s_meaning() -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert (mapped(529, overloaded).status, mapped(529, overloaded).code) == (503, "overloaded")
    invalid = {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}}
    error = mapped(400, invalid)
    assert (error.status, error.error_type, error.may_fall_back) == (400, "invalid_request_error", False)
    google = mapped(400, {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}})
    assert (google.status, google.code) == (400, "INVALID_ARGUMENT")
    assert mapped(503, b"<html>unavailable</html>").status == 503


@pytest.mark.parametrize(
    ("env", "source", "fix"),
    [
        (
            {"ROUTER_EAST_ACCESS_TOKEN": "t"},
            "the access token in ROUTER_EAST_ACCESS_TOKEN",
            "gcloud auth print-access-token",
        ),
        (
            {"GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json"},
            "the key file GOOGLE_APPLICATION_CREDENTIALS names",
            "service account key",
        ),
        ({}, "application default credentials", "gcloud auth application-default login"),
    ],
    ids=["token", "file", "default"],
)
def test_no_token_says_where_the_credentials_came_from_and_what_to_do(
    env: dict[str, str], source: str, fix: str
) -> None:
    provider: Provider = parse_catalog(CATALOG_TEXT, env).providers["east"]
    error = no_token(provider, "invalid_grant: account not found")
    assert error.status == 502 and error.code == "upstream_auth_failed"
    assert source in error.message and fix in error.message and "account not found" in error.message


def test_google_auth_failures_are_token_errors_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match=r"No such file|not found|does not exist"):
        GoogleCredentials(str(tmp_path / "missing.json"))()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com"}))
    with pytest.raises(TokenError) as info:
        GoogleCredentials(str(broken))()
    assert "not in the expected format, missing fields token_uri" in str(info.value)
