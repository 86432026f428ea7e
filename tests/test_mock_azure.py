"""The fake Azure OpenAI resource answers the official SDK's ``AzureOpenAI`` client (deployment URLs with
``api-version``) and a plain OpenAI client on ``/openai/v1`` as Azure does: its credentials, its errors,
its content-filter annotations and refusals."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio

from router.mock import MockServer
from tests.openapi import validate

KEY = "azure-key-0123456789"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJjb2duaXRpdmVzZXJ2aWNlcyJ9.c2lnbmF0dXJl"
USER: list[Any] = [{"role": "user", "content": "hello azure"}]


@pytest_asyncio.fixture
async def mock() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        server.state.set_required_key("azure", KEY)
        yield server


@pytest_asyncio.fixture
async def http(mock: MockServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mock.azure_endpoint, timeout=5.0) as client:
        yield client


def deployments_client(mock: MockServer, version: str = "2024-10-21", **auth: Any) -> openai.AsyncAzureOpenAI:
    auth = auth or {"api_key": KEY}
    return openai.AsyncAzureOpenAI(
        azure_endpoint=mock.azure_endpoint, api_version=version, max_retries=0, timeout=5.0, **auth
    )


def v1_client(mock: MockServer, key: str = KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=mock.azure_endpoint + "/openai/v1/", api_key=key, max_retries=0, timeout=5.0
    )


def events(text: str) -> list[dict[str, Any]]:
    lines = [line[6:] for line in text.split("\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


async def test_the_sdk_on_deployment_urls_gets_an_annotated_chat_completion(mock: MockServer) -> None:
    client = deployments_client(mock)
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)
    body = json.loads(raw.content)
    assert raw.http_request.url.path == "/azure/openai/deployments/gpt-4o-mini/chat/completions"
    assert raw.http_request.url.params["api-version"] == "2024-10-21"
    assert raw.http_request.headers["api-key"] == KEY
    assert raw.headers["apim-request-id"]
    assert body["model"] == "gpt-4o-mini-2024-07-18"  # the model version, not the deployment
    assert body["prompt_filter_results"][0]["content_filter_results"]["violence"]["severity"] == "safe"
    assert body["choices"][0]["content_filter_results"]["hate"] == {"filtered": False, "severity": "safe"}
    assert "hello azure" in body["choices"][0]["message"]["content"]
    del body["prompt_filter_results"], body["choices"][0]["content_filter_results"]
    validate(body, "CreateChatCompletionResponse")
    await client.close()


async def test_a_stream_opens_with_the_prompts_verdicts_and_no_choices(mock: MockServer) -> None:
    client = v1_client(mock)
    stream = await client.chat.completions.create(
        model="gpt-5-mini", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    first = chunks[0].model_dump()
    assert first["choices"] == [] and first["id"] == "" and first["model"] == ""
    assert first["prompt_filter_results"][0]["prompt_index"] == 0
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "hello azure" in text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    await client.close()


@pytest.mark.parametrize("stream", [False, True])
async def test_a_prompt_the_filter_refuses_is_azures_400(mock: MockServer, stream: bool) -> None:
    client = deployments_client(mock)
    messages: list[Any] = [{"role": "user", "content": "content_filter=prompt"}]
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=stream)
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "content_filter" and error["param"] == "prompt"
    inner = error["innererror"]
    assert inner["code"] == "ResponsibleAIPolicyViolation"
    assert inner["content_filter_result"]["violence"] == {"filtered": True, "severity": "medium"}
    await client.close()


async def test_an_answer_cut_by_the_filter_ends_with_content_filter(
    mock: MockServer, http: httpx.AsyncClient
) -> None:
    client = v1_client(mock)
    messages: list[Any] = [{"role": "user", "content": "content_filter=completion say words=30"}]
    completion = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert completion.choices[0].finish_reason == "content_filter"
    assert len((completion.choices[0].message.content or "").split()) <= 2
    answer = await http.post(
        "/openai/v1/chat/completions",
        headers={"api-key": KEY},
        json={"model": "gpt-4o-mini", "messages": messages, "stream": True},
    )
    chunks = events(answer.text)
    last = chunks[-1]
    assert last["id"] == "" and last["choices"][0]["finish_reason"] == "content_filter"
    assert "delta" not in last["choices"][0]
    assert chunks[-2]["choices"][0]["content_filter_offsets"]["end_offset"] > 0  # an annotation alone
    await client.close()


async def test_credentials_as_azure_takes_them(mock: MockServer, http: httpx.AsyncClient) -> None:
    entra = deployments_client(mock, azure_ad_token=TOKEN)
    mock.state.set_required_key("azure", TOKEN)
    assert (await entra.chat.completions.create(model="gpt-4o-mini", messages=USER)).choices
    mock.state.set_required_key("azure", KEY)
    assert (await v1_client(mock).chat.completions.create(model="gpt-4o-mini", messages=USER)).choices
    body = {"model": "gpt-4o-mini", "messages": USER}
    wrong = await http.post("/openai/v1/chat/completions", headers={"api-key": "nope"}, json=body)
    assert wrong.status_code == 401
    assert (
        wrong.json() == {"error": {"code": "401", "message": wrong.json()["error"]["message"]}}
        and "invalid subscription key" in wrong.json()["error"]["message"]
    )
    missing = await http.post("/openai/v1/chat/completions", json=body)
    assert missing.status_code == 401 and missing.json()["statusCode"] == 401
    assert "missing subscription key" in missing.json()["message"]
    # The key as a bearer token is the v1 API's alone; the deployment URLs want an Entra token there.
    as_bearer = await http.post(
        "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
        headers={"authorization": f"Bearer {KEY}"},
        json=body,
    )
    assert as_bearer.status_code == 401 and "Access token" in as_bearer.json()["message"]
    await entra.close()


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/openai/deployments/gpt-4o-mini/chat/completions", 404, "404"),
        ("/openai/deployments/gpt-4o-mini/chat/completions?api-version=2031-01-01", 400, "BadRequest"),
        ("/openai/v1/chat/completions?api-version=2024-10-21", 400, "BadRequest"),
        ("/openai/deployments/nobody/chat/completions?api-version=2024-10-21", 404, "DeploymentNotFound"),
        ("/openai/responses?api-version=2024-10-21", 404, "404"),
        ("/openai/chat/completions?api-version=2024-10-21", 404, "404"),
    ],
)
async def test_urls_azure_does_not_serve_get_its_errors(
    http: httpx.AsyncClient, path: str, status: int, code: str
) -> None:
    answer = await http.post(path, headers={"api-key": KEY}, json={"model": "gpt-4o-mini", "messages": USER})
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


async def test_responses_and_embeddings_on_both_url_forms(mock: MockServer) -> None:
    for client in (deployments_client(mock, "2025-04-01-preview"), v1_client(mock)):
        response = await client.responses.create(model="gpt-5-mini", input="hello responses")
        assert "hello responses" in response.output_text
        vectors = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 1536
        await client.close()
    sent = [r.path for r in mock.state.requests("azure")]
    assert "/azure/openai/responses" in sent and "/azure/openai/v1/responses" in sent
    assert "/azure/openai/deployments/text-embedding-3-small/embeddings" in sent


async def test_faults_take_azures_shapes(mock: MockServer) -> None:
    mock.state.faults.add("azure", "gpt-4o-mini", {"kind": "status", "status": 429, "retry_after": 7})
    client = v1_client(mock)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.code == "429" and "Please retry after 7 seconds" in info.value.message
    mock.state.faults.add("azure", "*", {"kind": "status", "status": 400, "code": "content_filter"})
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert refused.value.code == "content_filter"
    await client.close()
