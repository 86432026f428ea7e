"""Azure's dialect of the OpenAI wire format: URLs, credentials, error mapping and stream tidying."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from router.catalog import parse_catalog
from router.errors import ContentFiltered, UpstreamStatusError
from router.providers.azure import AzureDialect, map_error, tidy_chunks
from router.providers.base import UpstreamCall
from router.types import ChatChunk, ChatRequest

CATALOG = parse_catalog(
    """
providers:
  v1: {kind: azure, base_url: "https://res.openai.azure.com/", api_key_env: K}
  v1-preview: {kind: azure, base_url: "https://res.openai.azure.com", api_key_env: K, api_version: preview}
  legacy: {kind: azure, base_url: "https://res.openai.azure.com", api_key_env: K, api: deployments,
           api_version: 2024-10-21}
  entra: {kind: azure, base_url: "https://res.services.ai.azure.com", api_key_env: T, auth: entra,
          api: deployments, api_version: "2025-04-01-preview", headers: {x-team: blue}}
models:
  mini: {provider: v1, upstream: my-deployment, context_window: 400000, max_output: 128000,
         quality: 70, price: {input: 1, output: 5}, speed: {ttft_ms: 600, tokens_per_s: 120}}
""",
    {"K": "azure-secret-key-0123456789", "T": "eyJ0b2tlbg.eyJhdWQ.c2ln"},
)
FILTERED = (
    b'{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI\'s content '
    b'management policy.","type":null,"param":"prompt","code":"content_filter","status":400,'
    b'"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":'
    b'{"violence":{"filtered":true,"severity":"medium"}}}}}'
)


def dialect(name: str) -> AzureDialect:
    return AzureDialect(CATALOG.providers[name])


@pytest.mark.parametrize(
    ("provider", "api", "url"),
    [
        ("v1", "chat", "https://res.openai.azure.com/openai/v1/chat/completions"),
        ("v1", "responses", "https://res.openai.azure.com/openai/v1/responses"),
        ("v1-preview", "embeddings", "https://res.openai.azure.com/openai/v1/embeddings?api-version=preview"),
        (
            "legacy",
            "chat",
            "https://res.openai.azure.com/openai/deployments/my%2Fdeployment/chat/completions?api-version=2024-10-21",
        ),
        (
            "legacy",
            "embeddings",
            "https://res.openai.azure.com/openai/deployments/my%2Fdeployment/embeddings?api-version=2024-10-21",
        ),
        (
            "entra",
            "responses",
            "https://res.services.ai.azure.com/openai/responses?api-version=2025-04-01-preview",
        ),
    ],
)
def test_urls_of_each_api_form(provider: str, api: Any, url: str) -> None:
    assert dialect(provider).url(api, "my/deployment") == url


def test_a_key_goes_in_api_key_and_an_entra_token_in_authorization() -> None:
    keyed = dialect("v1").headers("req-1", "u", b"")
    assert keyed["api-key"] == "azure-secret-key-0123456789" and "authorization" not in keyed
    assert keyed["x-client-request-id"] == "req-1"
    token = dialect("entra").headers("req-2", "u", b"")
    assert token["authorization"] == "Bearer eyJ0b2tlbg.eyJhdWQ.c2ln" and "api-key" not in token
    assert token["x-team"] == "blue"
    token["x-added"] = "1"
    assert "x-added" not in dialect("entra").headers("req-3", "u", b"")  # a new dict each call


def test_a_filtered_prompt_is_content_filtered_with_azures_verdicts_kept() -> None:
    error = map_error(400, FILTERED, {}, CATALOG.providers["v1"])
    assert isinstance(error, ContentFiltered)
    assert (error.status, error.code, error.param) == (400, "content_filter", "prompt")
    assert not error.may_fall_back and not error.counts_against_breaker and not error.client_should_retry
    assert error.inner_error is not None
    assert json.loads(error.inner_error)["content_filter_result"]["violence"]["filtered"] is True


def test_the_filter_is_recognised_by_its_inner_code_under_either_spelling() -> None:
    body = {
        "error": {
            "message": "filtered",
            "code": None,
            "inner_error": {"code": "ResponsibleAIPolicyViolation"},
        }
    }
    error = map_error(400, msgspec.json.encode(body), {}, CATALOG.providers["v1"])
    assert isinstance(error, ContentFiltered) and error.param == "prompt"


def test_a_429_says_when_to_retry_from_its_headers_or_its_message() -> None:
    body = (
        b'{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure '
        b'OpenAI API version 2024-10-21 have exceeded token rate limit. Please retry after 6 seconds."}}'
    )
    provider = CATALOG.providers["v1"]
    from_text = map_error(429, body, {}, provider)
    assert isinstance(from_text, UpstreamStatusError)
    assert from_text.retry_after == 6.0 and from_text.code == "rate_limit_exceeded"
    assert from_text.counts_against_breaker and from_text.may_fall_back
    assert map_error(429, body, {"retry-after-ms": "1500"}, provider).retry_after == 1.5


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, b'{"error":{"code":"401","message":"Access denied due to invalid subscription key."}}'),
        (401, b'{"statusCode":401,"message":"Unauthorized. Access token is missing, invalid."}'),
        (403, b'{"error":{"code":"PermissionDenied","message":"Principal does not have access."}}'),
    ],
)
def test_a_refused_credential_is_the_routers_fault(status: int, body: bytes) -> None:
    error = map_error(status, body, {}, CATALOG.providers["v1"])
    assert error.status == 502 and error.code == "upstream_auth_failed"
    assert "(K)" in error.message and json.loads(body).get("message", "")[:12] in error.message


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            404,
            b'{"error":{"code":"DeploymentNotFound",'
            b'"message":"The API deployment for this resource does not exist."}}',
        ),
        (404, b'{"error":{"code":"404","message":"Resource not found"}}'),
        (400, b'{"error":{"code":"BadRequest","message":"API version not supported"}}'),
    ],
)
def test_a_missing_deployment_or_refused_version_is_the_catalogs_fault(status: int, body: bytes) -> None:
    error = map_error(status, body, {}, CATALOG.providers["legacy"])
    assert error.status == 502 and error.code == "upstream_misconfigured"
    assert error.may_fall_back and "api_version" in error.message


def test_other_client_errors_keep_their_status_and_code() -> None:
    body = (
        b'{"error":{"message":"Unsupported parameter: max_tokens","type":"invalid_request_error",'
        b'"param":"max_tokens","code":"unsupported_parameter"}}'
    )
    error = map_error(400, body, {}, CATALOG.providers["v1"])
    assert isinstance(error, UpstreamStatusError) and not isinstance(error, ContentFiltered)
    assert (error.status, error.code, error.param) == (400, "unsupported_parameter", "max_tokens")


def _call() -> UpstreamCall:
    request = msgspec.convert({"model": "mini", "messages": [{"role": "user", "content": "x"}]}, ChatRequest)
    model = CATALOG.models["mini"]
    return UpstreamCall(
        request=request, model=model, provider=CATALOG.provider_of(model), request_id="r9", created=7
    )


async def _tidy(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async def chunks() -> AsyncIterator[ChatChunk]:
        for item in raw:
            yield msgspec.convert(item, ChatChunk)

    return [msgspec.to_builtins(c) async for c in tidy_chunks(chunks(), _call())]


async def test_annotation_chunks_are_dropped_and_empty_ids_filled() -> None:
    blank = {"id": "", "object": "", "created": 0, "model": ""}
    verdicts = {"content_filter_results": {"hate": {"filtered": False, "severity": "safe"}}}
    real = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 5, "model": "gpt-4o-2024-08-06"}
    raw = [
        {**blank, "choices": [], "prompt_filter_results": [{"prompt_index": 0}]},
        {**real, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {**real, "choices": [{"index": 0, "delta": {"content": "Hey"}, **verdicts}]},
        {**blank, "choices": [{"index": 0, "finish_reason": None, **verdicts}]},
        {**blank, "choices": [{"index": 0, "finish_reason": "content_filter", **verdicts}]},
        {**real, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}},
    ]
    out = await _tidy(raw)
    assert [c["choices"][0]["finish_reason"] if c["choices"] else "usage" for c in out] == [
        None,
        None,
        "content_filter",
        "usage",
    ]
    assert all(
        (c["id"], c["created"], c["model"], c["object"])
        == ("chatcmpl-1", 5, "gpt-4o-2024-08-06", "chat.completion.chunk")
        for c in out
    )


async def test_a_finish_before_any_identified_chunk_gets_the_calls_identity() -> None:
    raw = [
        {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "choices": [{"index": 0, "finish_reason": "content_filter"}],
        }
    ]
    (only,) = await _tidy(raw)
    assert (only["id"], only["created"], only["model"]) == ("chatcmpl-r9", 7, "my-deployment")
