"""The fake OpenAI upstream serves legacy Completions and Embeddings in the real wire format."""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio

from router.mock import MockServer
from router.mock.openai_legacy import COMPLETION_MODELS, EMBEDDING_DIMENSIONS, embed
from tests.openapi import validate

COMPLETIONS = "/openai/v1/completions"
EMBEDDINGS = "/openai/v1/embeddings"
INSTRUCT = "gpt-3.5-turbo-instruct"


@pytest_asyncio.fixture
async def mock() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


@pytest_asyncio.fixture
async def client(mock: MockServer) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=mock.url + "/openai/v1", api_key="x", max_retries=0, timeout=5.0)
    yield sdk
    await sdk.close()


@pytest_asyncio.fixture
async def http(mock: MockServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mock.url, timeout=5.0) as raw:
        yield raw


async def sse_data(http: httpx.AsyncClient, body: dict[str, Any]) -> list[str]:
    async with http.stream("POST", COMPLETIONS, json={**body, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = (await response.aread()).decode()
    events = text[:-2].split("\n\n")
    assert all(e.startswith("data: ") and "\n" not in e for e in events), "one data line per event"
    return [e.removeprefix("data: ") for e in events]


def norm(vector: list[float]) -> float:
    return math.sqrt(math.fsum(v * v for v in vector))


# --- completions -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_completion_matches_the_official_schema(
    http: httpx.AsyncClient, client: openai.AsyncOpenAI
) -> None:
    response = await http.post(COMPLETIONS, json={"model": INSTRUCT, "prompt": "Say this is a test"})

    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    validate(body, "CreateCompletionResponse")
    assert body["id"].startswith("cmpl-")
    assert (body["object"], body["model"]) == ("text_completion", INSTRUCT)
    assert body["choices"] == [
        {"text": "Echo: Say this is a test", "index": 0, "logprobs": None, "finish_reason": "stop"}
    ]
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}

    capped = await client.completions.create(
        model="davinci-002", prompt="words=40"
    )  # max_tokens defaults to 16
    assert capped.choices[0].finish_reason == "length"
    assert capped.usage is not None and capped.usage.completion_tokens == 16
    longer = await client.completions.create(
        model="babbage-002", prompt="words=40", max_tokens=100, stop=["amet"]
    )
    assert (longer.choices[0].text, longer.choices[0].finish_reason) == ("lorem ipsum dolor sit ", "stop")


@pytest.mark.asyncio
async def test_prompt_lists_n_echo_and_token_prompts(client: openai.AsyncOpenAI) -> None:
    several = await client.completions.create(model=INSTRUCT, prompt=["one", "two"], n=2, suffix="ignored")
    assert [(c.index, c.text) for c in several.choices] == [
        (0, "Echo: one"),
        (1, "Echo: one"),
        (2, "Echo: two"),
        (3, "Echo: two"),
    ]
    assert several.usage is not None and several.usage.prompt_tokens == 2  # each prompt once

    echoed = await client.completions.create(model=INSTRUCT, prompt="hi", echo=True)
    assert echoed.choices[0].text == "hiEcho: hi"

    tokens = await client.completions.create(model=INSTRUCT, prompt=[[1, 2, 3], [4, 5]])
    assert len(tokens.choices) == 2
    assert tokens.usage is not None and tokens.usage.prompt_tokens == 5


@pytest.mark.asyncio
async def test_completion_stream_chunks_done_and_usage(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    stream = await client.completions.create(model=INSTRUCT, prompt="count words=5", stream=True)
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks) == "lorem ipsum dolor sit amet"
    assert [c.choices[0].finish_reason for c in chunks] == [None] * 5 + ["stop"]
    assert len({c.id for c in chunks}) == 1

    raw = await sse_data(
        http, {"model": INSTRUCT, "prompt": ["a", "b"], "stream_options": {"include_usage": True}}
    )
    assert raw[-1] == "[DONE]"
    payloads = [json.loads(p) for p in raw[:-1]]
    for payload in payloads:
        # The stream's nulls (finish_reason and usage until the end) are OpenAI's, not in its schema.
        finished = [{**c, "finish_reason": c["finish_reason"] or "stop"} for c in payload["choices"]]
        present = {k: v for k, v in payload.items() if v is not None}
        validate({**present, "choices": finished}, "CreateCompletionResponse")
        assert payload["object"] == "text_completion"
    assert [p["choices"][0]["index"] for p in payloads[:-1]] == [0, 0, 0, 1, 1, 1]
    assert all(p["usage"] is None for p in payloads[:-1])
    assert payloads[-1]["choices"] == []
    assert payloads[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}

    plain = await sse_data(http, {"model": INSTRUCT, "prompt": "x"})
    assert all("usage" not in json.loads(p) for p in plain[:-1])


@pytest.mark.asyncio
async def test_only_completion_models_are_served(http: httpx.AsyncClient) -> None:
    chat = await http.post(COMPLETIONS, json={"model": "gpt-4.1-mini", "prompt": "hi"})
    assert chat.status_code == 404
    validate(chat.json(), "ErrorResponse")
    assert chat.json()["error"]["message"].startswith(
        "This is a chat model and not supported in the v1/completions"
    )
    assert chat.json()["error"]["code"] == "model_not_found"

    unknown = await http.post(COMPLETIONS, json={"model": "text-davinci-003", "prompt": "hi"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"

    for body, param in [
        ({"prompt": "hi"}, "model"),
        ({"model": INSTRUCT}, "prompt"),
        ({"model": INSTRUCT, "prompt": []}, "prompt"),
        ({"model": INSTRUCT, "prompt": ["a", 1]}, "prompt"),
        ({"model": INSTRUCT, "prompt": "x", "stream_options": {"include_usage": True}}, "stream_options"),
    ]:
        response = await http.post(COMPLETIONS, json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["param"] == param, body


@pytest.mark.asyncio
async def test_completion_faults(mock: MockServer, client: openai.AsyncOpenAI) -> None:
    mock.state.faults.add("openai", INSTRUCT, {"kind": "status", "status": 503})
    with pytest.raises(openai.InternalServerError):
        await client.completions.create(model=INSTRUCT, prompt="hi")

    mock.state.faults.add("openai", INSTRUCT, {"kind": "cut", "after_chunks": 2})
    stream = await client.completions.create(model=INSTRUCT, prompt="words=10", stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].text)
    assert received == ["lorem ", "ipsum "]

    mock.state.faults.add("openai", INSTRUCT, {"kind": "stream_error", "after_chunks": 1})
    stream = await client.completions.create(model=INSTRUCT, prompt="words=10", stream=True)
    with pytest.raises(openai.APIError) as caught:
        async for _ in stream:
            pass
    assert caught.value.message == "The server had an error while processing your request."


# --- embeddings ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_float_embeddings_are_unit_and_deterministic(http: httpx.AsyncClient) -> None:
    body = {"model": "text-embedding-3-small", "input": ["The food was delicious", "Another text"]}
    response = await http.post(EMBEDDINGS, json={**body, "encoding_format": "float"})

    assert response.status_code == 200
    payload = response.json()
    validate(payload, "CreateEmbeddingResponse")
    assert (payload["object"], payload["model"]) == ("list", "text-embedding-3-small")
    assert [(d["object"], d["index"], len(d["embedding"])) for d in payload["data"]] == [
        ("embedding", 0, 1536),
        ("embedding", 1, 1536),
    ]
    first, second = (d["embedding"] for d in payload["data"])
    assert abs(norm(first) - 1) < 1e-5 and abs(norm(second) - 1) < 1e-5
    assert first != second
    assert payload["usage"] == {"prompt_tokens": 8, "total_tokens": 8}  # 22 / 4 + 12 / 4

    again = (await http.post(EMBEDDINGS, json=body)).json()  # float is the default on the wire
    assert again["data"][0]["embedding"] == first
    assert embed("text-embedding-3-small", "The food was delicious") == first


@pytest.mark.asyncio
async def test_sdk_base64_default_decodes_to_the_float_vector(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient, mock: MockServer
) -> None:
    decoded = await client.embeddings.create(model="text-embedding-3-large", input="hello")
    sent = mock.state.requests("openai")[-1].body
    assert sent["encoding_format"] == "base64"  # the SDK asks for base64 and decodes it
    vector = decoded.data[0].embedding
    assert len(vector) == 3072
    assert abs(norm(vector) - 1) < 1e-5
    as_float = await client.embeddings.create(
        model="text-embedding-3-large", input="hello", encoding_format="float"
    )
    assert as_float.data[0].embedding == vector

    raw = (
        await http.post(
            EMBEDDINGS,
            json={"model": "text-embedding-ada-002", "input": "hello", "encoding_format": "base64"},
        )
    ).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert len(packed) == 4 * 1536
    assert list(struct.unpack("<1536f", packed)) == embed("text-embedding-ada-002", "hello")


@pytest.mark.asyncio
async def test_dimensions_shorten_and_renormalise(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    full = (await client.embeddings.create(model="text-embedding-3-small", input="abc")).data[0].embedding
    short = (
        (await client.embeddings.create(model="text-embedding-3-small", input="abc", dimensions=256))
        .data[0]
        .embedding
    )
    assert len(short) == 256
    assert abs(norm(short) - 1) < 1e-5
    scale = norm(full[:256])
    assert all(abs(s - f / scale) < 1e-5 for s, f in zip(short, full[:256], strict=True))

    ada = await http.post(
        EMBEDDINGS, json={"model": "text-embedding-ada-002", "input": "abc", "dimensions": 256}
    )
    assert ada.status_code == 400
    assert ada.json()["error"]["message"] == "This model does not support specifying dimensions."
    too_many = await http.post(
        EMBEDDINGS, json={"model": "text-embedding-3-small", "input": "a", "dimensions": 2000}
    )
    assert (too_many.status_code, too_many.json()["error"]["param"]) == (400, "dimensions")


@pytest.mark.asyncio
async def test_token_inputs_and_rejected_inputs(client: openai.AsyncOpenAI, http: httpx.AsyncClient) -> None:
    tokens = await client.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3], [4, 5]])
    assert [len(d.embedding) for d in tokens.data] == [1536, 1536]
    assert tokens.usage.prompt_tokens == 5
    flat = await client.embeddings.create(model="text-embedding-3-small", input=[1, 2, 3])
    assert flat.data[0].embedding == tokens.data[0].embedding

    for body in [
        {"model": "text-embedding-3-small", "input": ""},
        {"model": "text-embedding-3-small", "input": []},
        {"model": "text-embedding-3-small", "input": ["ok", ""]},
    ]:
        response = await http.post(EMBEDDINGS, json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["message"].startswith("'$.input' is invalid.")

    chat = await http.post(EMBEDDINGS, json={"model": "gpt-4.1-mini", "input": "hi"})
    assert chat.status_code == 400
    assert "does not support embeddings" in chat.json()["error"]["message"]
    unknown = await http.post(EMBEDDINGS, json={"model": "text-embedding-4", "input": "hi"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "model_not_found")
    bad_format = await http.post(
        EMBEDDINGS, json={"model": "text-embedding-3-small", "input": "hi", "encoding_format": "int8"}
    )
    assert (bad_format.status_code, bad_format.json()["error"]["param"]) == (400, "encoding_format")
    missing = await http.post(EMBEDDINGS, json={"model": "text-embedding-3-small"})
    assert missing.json()["error"]["code"] == "missing_required_parameter"


@pytest.mark.asyncio
async def test_embedding_faults_keys_and_log(
    mock: MockServer, client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    mock.state.faults.add("openai", "text-embedding-3-small", {"kind": "status", "status": 429})
    with pytest.raises(openai.RateLimitError):
        await client.embeddings.create(model="text-embedding-3-small", input="hi")

    mock.state.set_required_key("openai", "sk-right-key-1234")
    denied = await http.post(EMBEDDINGS, json={"model": "text-embedding-3-small", "input": "hi"})
    assert denied.status_code == 401
    denied = await http.post(COMPLETIONS, json={"model": INSTRUCT, "prompt": "hi"})
    assert denied.status_code == 401

    log = mock.state.requests("openai")
    assert [r.path for r in log] == [EMBEDDINGS, EMBEDDINGS, COMPLETIONS]
    assert log[-1].body == {"model": INSTRUCT, "prompt": "hi"}


@pytest.mark.asyncio
async def test_model_list_names_the_new_models(client: openai.AsyncOpenAI, http: httpx.AsyncClient) -> None:
    validate((await http.get("/openai/v1/models")).json(), "ListModelsResponse")
    names = {m.id async for m in client.models.list()}
    assert {*COMPLETION_MODELS, *EMBEDDING_DIMENSIONS, "gpt-5-mini"} <= names
