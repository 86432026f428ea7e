"""The fake Gemini upstream speaks the real generateContent wire format and acts out scripted faults."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from google import genai
from google.genai import errors, types

from router.mock import MockServer, MockState
from router.mock.gemini_fake import GeminiFake

BASE = "/gemini/v1beta/models"
FLASH = f"{BASE}/gemini-2.5-flash:generateContent"
SSE = f"{BASE}/gemini-2.5-flash:streamGenerateContent?alt=sse"
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


class Fake(NamedTuple):
    state: MockState
    url: str


def user(text: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


@pytest_asyncio.fixture
async def mock() -> AsyncIterator[Fake]:
    async with MockServer() as server:
        yield Fake(server.state, server.url)


@pytest_asyncio.fixture
async def http(mock: Fake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mock.url, timeout=5.0) as raw:
        yield raw


@pytest.fixture
def sdk(mock: Fake) -> genai.Client:
    return genai.Client(
        api_key="x", http_options=types.HttpOptions(base_url=mock.url + "/gemini", timeout=5000)
    )


async def sse_events(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of an ``alt=sse`` stream, asserting Gemini's framing on the way."""
    async with http.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = (await response.aread()).decode()
    assert text.endswith("\r\n\r\n")
    events = text[:-4].split("\r\n\r\n")
    assert all(e.startswith("data: {") and "\n" not in e and "\r" not in e for e in events)
    return [json.loads(e.removeprefix("data: ")) for e in events]


def text_of(response: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in response["candidates"][0].get("content", {}).get("parts", []))


# --- answers ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_non_stream_answer_shape_and_sdk(http: httpx.AsyncClient, sdk: genai.Client) -> None:
    response = await http.post(FLASH, json=user("Hello there"))

    assert response.status_code == 200
    body = response.json()
    assert body["candidates"] == [
        {
            "content": {"parts": [{"text": "Echo: Hello there"}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ]
    usage = body["usageMetadata"]
    assert (usage["promptTokenCount"], usage["candidatesTokenCount"], usage["totalTokenCount"]) == (2, 3, 5)
    assert "cachedContentTokenCount" not in usage and "thoughtsTokenCount" not in usage
    assert body["modelVersion"] == "gemini-2.5-flash"
    assert len(body["responseId"]) == 24

    answer = await sdk.aio.models.generate_content(model="gemini-2.5-flash", contents="Hello there")
    assert answer.text == "Echo: Hello there"
    assert answer.candidates and answer.candidates[0].finish_reason == types.FinishReason.STOP
    assert answer.usage_metadata and answer.usage_metadata.total_token_count == 5


@pytest.mark.asyncio
async def test_words_stop_sequences_and_max_tokens(http: httpx.AsyncClient) -> None:
    capped = (
        await http.post(FLASH, json=user("words=10") | {"generationConfig": {"maxOutputTokens": 4}})
    ).json()
    assert text_of(capped) == "lorem ipsum dolor sit "
    assert capped["candidates"][0]["finishReason"] == "MAX_TOKENS"

    stop = {"generationConfig": {"stopSequences": ["sit"], "temperature": 0.2, "topK": 3, "seed": 7}}
    stopped = (await http.post(FLASH, json=user("words=10") | stop)).json()
    assert text_of(stopped) == "lorem ipsum dolor "
    assert stopped["candidates"][0]["finishReason"] == "STOP"

    snake = {"generation_config": {"max_output_tokens": 2}}  # proto-JSON accepts snake_case too
    assert text_of((await http.post(FLASH, json=user("words=10") | snake)).json()) == "lorem ipsum "


@pytest.mark.asyncio
async def test_sse_stream_uses_crlf_framing_and_assembles_text(
    http: httpx.AsyncClient, sdk: genai.Client
) -> None:
    events = await sse_events(http, SSE, user("words=5"))

    assert len(events) == 5
    assert "".join(text_of(e) for e in events) == "lorem ipsum dolor sit amet"
    assert all("finishReason" not in e["candidates"][0] for e in events[:-1])
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert events[-1]["usageMetadata"]["candidatesTokenCount"] == 5
    assert all(e["candidates"][0]["content"]["role"] == "model" for e in events)
    assert len({e["responseId"] for e in events}) == 1

    chunks = [c async for c in await sdk.aio.models.generate_content_stream(model="m", contents="words=3")]
    assert "".join(c.text or "" for c in chunks) == "lorem ipsum dolor"


@pytest.mark.asyncio
async def test_stream_without_alt_sse_is_a_json_array(http: httpx.AsyncClient) -> None:
    path = f"{BASE}/gemini-2.5-flash:streamGenerateContent"
    response = await http.post(path, json=user("words=3"))
    assert response.headers["content-type"].startswith("application/json")
    items = response.json()
    assert [text_of(i) for i in items] == ["lorem ", "ipsum ", "dolor"]
    assert items[-1]["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.asyncio
async def test_usage_with_cache_and_think_knobs(http: httpx.AsyncClient) -> None:
    body = user("Hello there") | {"systemInstruction": {"parts": [{"text": "cache=40 think=7"}]}}
    usage = (await http.post(FLASH, json=body)).json()["usageMetadata"]
    prompt = 6  # (11 + 16 characters) / 4, plus the cached tokens on top
    assert usage["cachedContentTokenCount"] == 40
    assert usage["promptTokenCount"] == prompt + 40
    assert usage["thoughtsTokenCount"] == 7
    assert usage["totalTokenCount"] == prompt + 40 + 3 + 7

    shown = body | {"generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 512}}}
    parts = (await http.post(FLASH, json=shown)).json()["candidates"][0]["content"]["parts"]
    assert parts[0]["thought"] is True and parts[1] == {"text": "Echo: Hello there"}
    off = body | {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}
    assert "thoughtsTokenCount" not in (await http.post(FLASH, json=off)).json()["usageMetadata"]


@pytest.mark.asyncio
async def test_safety_knob_blocks_with_ratings(http: httpx.AsyncClient) -> None:
    body = (await http.post(FLASH, json=user("please trigger-safety now"))).json()
    candidate = body["candidates"][0]
    assert candidate["finishReason"] == "SAFETY"
    assert "content" not in candidate
    assert any(r.get("blocked") for r in candidate["safetyRatings"])

    events = await sse_events(http, SSE, user("trigger-safety"))
    assert len(events) == 1 and events[0]["candidates"][0]["finishReason"] == "SAFETY"


# --- function calls and thought signatures ----------------------------------------------------------


@pytest.mark.asyncio
async def test_gemini3_signs_function_calls_and_sdk_round_trips_them(
    mock: Fake, http: httpx.AsyncClient, sdk: genai.Client
) -> None:
    tools = {"tools": [{"functionDeclarations": [WEATHER]}]}
    body = (
        await http.post(f"{BASE}/gemini-3-pro-preview:generateContent", json=user("Oslo?") | tools)
    ).json()
    part = body["candidates"][0]["content"]["parts"][0]
    assert part["functionCall"] == {"name": "get_weather", "args": {"city": "Oslo"}}
    assert part["thoughtSignature"]
    assert body["candidates"][0]["finishReason"] == "STOP"  # Gemini reports STOP for function calls too
    unsigned = (await http.post(FLASH, json=user("Oslo?") | tools)).json()
    assert "thoughtSignature" not in unsigned["candidates"][0]["content"]["parts"][0]

    events = await sse_events(
        http, f"{BASE}/gemini-3-flash-preview:streamGenerateContent?alt=sse", user("Oslo?") | tools
    )
    assert len(events) == 1
    assert events[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["args"] == {"city": "Oslo"}

    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration.model_validate(WEATHER)])]
    )
    first = await sdk.aio.models.generate_content(
        model="gemini-3-pro-preview", contents="Oslo?", config=config
    )
    assert first.candidates and first.candidates[0].content
    call = first.candidates[0].content
    assert call.parts and call.parts[0].thought_signature
    history = [
        types.Content(role="user", parts=[types.Part(text="Oslo?")]),
        call,
        types.Content(
            role="user", parts=[types.Part.from_function_response(name="get_weather", response={"temp_c": 4})]
        ),
    ]
    second = await sdk.aio.models.generate_content(
        model="gemini-3-pro-preview", contents=history, config=config
    )
    assert second.text == 'Tool results: {"temp_c":4}'
    sent = mock.state.requests("gemini")[-1].body["contents"][1]["parts"][0]
    signature = call.parts[0].thought_signature
    assert sent["thoughtSignature"] == base64.b64encode(signature).decode()  # echoed back unchanged
    assert sent["thoughtSignature"].startswith("CiQB")


@pytest.mark.asyncio
async def test_gemini3_refuses_function_calls_without_signature(http: httpx.AsyncClient) -> None:
    history = {
        "contents": [
            {"role": "user", "parts": [{"text": "Oslo?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"c": 4}}}]},
        ],
        "tools": [{"functionDeclarations": [WEATHER]}],
    }
    refused = await http.post(f"{BASE}/gemini-3-pro-preview:generateContent", json=history)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].startswith("Function call is missing a thought_signature in functionCall parts.")
    assert "`default_api:get_weather` , position 2" in error["message"]

    assert text_of((await http.post(FLASH, json=history)).json()) == 'Tool results: {"c":4}'
    history["contents"][1]["parts"][0]["thoughtSignature"] = "skip_thought_signature_validator"
    assert (await http.post(f"{BASE}/gemini-3-pro-preview:generateContent", json=history)).status_code == 200


@pytest.mark.asyncio
async def test_tool_config_modes(http: httpx.AsyncClient) -> None:
    time_tool = {
        "name": "get_time",
        "parameters": {"type": "OBJECT", "properties": {"tz": {"type": "STRING"}}},
    }
    tools = {"tools": [{"functionDeclarations": [WEATHER, time_tool]}]}

    def config(mode: str, names: list[str] | None = None) -> dict[str, Any]:
        calling: dict[str, Any] = {"mode": mode} | ({"allowedFunctionNames": names} if names else {})
        return tools | {"toolConfig": {"functionCallingConfig": calling}}

    none = (await http.post(FLASH, json=user("hi") | config("NONE"))).json()
    assert text_of(none) == "Echo: hi"
    forced = (await http.post(FLASH, json=user("hi") | config("ANY", ["get_time"]))).json()
    assert forced["candidates"][0]["content"]["parts"][0]["functionCall"] == {
        "name": "get_time",
        "args": {"tz": "example"},
    }
    bad = await http.post(FLASH, json=user("hi") | config("SOMETIMES"))
    assert bad.status_code == 400 and "FunctionCallingConfig.Mode" in bad.json()["error"]["message"]
    assert (await http.post(FLASH, json=user("hi") | config("AUTO", ["get_time"]))).status_code == 400


# --- request validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "name", "where"),
    [
        ({"type": "object", "$schema": "http://json-schema.org/draft-07/schema#"}, "$schema", "parameters"),
        ({"type": "object", "additionalProperties": False}, "additionalProperties", "parameters"),
        ({"type": "object", "$defs": {"a": {"type": "string"}}}, "$defs", "parameters"),
        ({"type": "object", "definitions": {}}, "definitions", "parameters"),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}},
            "$ref",
            "parameters.properties[0].value",
        ),
        (
            {"type": "object", "properties": {"a": {"type": ["string", "null"]}}},
            "type",
            "parameters.properties[0].value",
        ),
    ],
)
@pytest.mark.asyncio
async def test_function_schema_keys_gemini_rejects(
    http: httpx.AsyncClient, schema: dict[str, Any], name: str, where: str
) -> None:
    tools = {"tools": [{"functionDeclarations": [{"name": "f", "parameters": schema}]}]}
    response = await http.post(FLASH, json=user("hi") | tools)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert f"Unknown name \"{name}\" at 'tools[0].function_declarations[0].{where}'" in error["message"]
    violation = error["details"][0]
    assert violation["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert violation["fieldViolations"][0]["field"] == f"tools[0].function_declarations[0].{where}"


@pytest.mark.asyncio
async def test_response_schema_and_json_schema_variants(http: httpx.AsyncClient) -> None:
    strict = {
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {"type": "object", "additionalProperties": False},
        }
    }
    refused = await http.post(FLASH, json=user("hi") | strict)
    assert refused.status_code == 400
    assert "at 'generation_config.response_schema'" in refused.json()["error"]["message"]

    free = {"type": "object", "additionalProperties": False, "$defs": {}}
    ok = {
        "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": free}]}],
        "generationConfig": {"responseJsonSchema": free, "responseMimeType": "application/json"},
    }
    assert (await http.post(FLASH, json=user("hi") | ok)).status_code == 200


@pytest.mark.asyncio
async def test_unknown_fields_and_malformed_requests(http: httpx.AsyncClient) -> None:
    async def error_of(body: Any) -> str:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = await http.post(FLASH, content=raw)
        assert response.status_code == 400
        assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
        return str(response.json()["error"]["message"])

    assert await error_of(user("hi") | {"messages": []}) == (
        'Invalid JSON payload received. Unknown name "messages": Cannot find field.'
    )
    nested = await error_of(user("hi") | {"generationConfig": {"max_tokens": 5}})
    unknown = 'Invalid JSON payload received. Unknown name "max_tokens"'
    assert nested == f"{unknown} at 'generation_config': Cannot find field."
    assert "contents is not specified" in await error_of({"contents": []})
    assert await error_of({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}) == (
        "Please use a valid role: user, model."
    )
    assert "contents.parts must not be empty" in await error_of({"contents": [{"role": "user", "parts": []}]})
    assert "required oneof field 'data'" in await error_of({"contents": [{"parts": [{"thought": True}]}]})
    image = {"inlineData": {"mimeType": "image/png", "data": "data:image/png;base64,iVBO"}}
    assert "Base64 decoding failed" in await error_of({"contents": [{"parts": [image]}]})
    assert "(TYPE_STRING)" in await error_of({"contents": [{"parts": [{"text": 5}]}]})
    assert "temperature" in await error_of(user("hi") | {"generationConfig": {"temperature": 3}})
    assert "Invalid JSON payload" in await error_of(b"not json{")
    assert (
        "(type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentRequest)"
        in await error_of([])
    )

    fine = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "look"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/files/abc"}},
                ],
            }
        ],
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
        "generationConfig": {"candidateCount": 1, "topP": 0.9, "responseMimeType": "text/plain"},
    }
    assert (await http.post(FLASH, json=fine)).status_code == 200


@pytest.mark.asyncio
async def test_required_key_via_header_or_query(mock: Fake, http: httpx.AsyncClient) -> None:
    mock.state.set_required_key("gemini", "AIza-good")

    missing = await http.post(FLASH, json=user("hi"))
    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
    wrong = await http.post(FLASH, json=user("hi"), headers={"x-goog-api-key": "AIza-bad"})
    assert wrong.status_code == 400
    assert wrong.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert (
        await http.post(FLASH, json=user("hi"), headers={"x-goog-api-key": "AIza-good"})
    ).status_code == 200
    assert (await http.post(FLASH + "?key=AIza-good", json=user("hi"))).status_code == 200
    assert (await http.get(f"{BASE}?key=AIza-bad")).status_code == 400


@pytest.mark.asyncio
async def test_count_tokens_models_and_unknown_methods(
    mock: Fake, http: httpx.AsyncClient, sdk: genai.Client
) -> None:
    counted = await http.post(f"{BASE}/gemini-2.5-flash:countTokens", json=user("Hello there"))
    assert counted.json()["totalTokens"] == 2
    assert (
        await sdk.aio.models.count_tokens(model="gemini-2.5-flash", contents="Hello there")
    ).total_tokens == 2

    listed = (await http.get(BASE)).json()["models"]
    assert "models/gemini-2.5-flash" in [m["name"] for m in listed]
    assert "models/gemini-2.5-flash" in [m.name async for m in await sdk.aio.models.list()]
    assert (await http.get(f"{BASE}/gemini-2.5-pro")).status_code == 404
    assert (await http.post(f"{BASE}/gemini-2.5-flash:fooBar", json={})).status_code == 404
    assert (await http.post("/gemini/v1beta/files", json={})).json()["error"]["status"] == "NOT_FOUND"

    log = mock.state.requests("gemini")
    assert log[0].path == f"{BASE}/gemini-2.5-flash:countTokens"
    assert log[0].body == user("Hello there")
    assert log[-1].path == "/gemini/v1beta/files"


@pytest.mark.asyncio
async def test_embeddings_are_deterministic(http: httpx.AsyncClient, sdk: genai.Client) -> None:
    path = f"{BASE}/gemini-embedding-001"
    one = (await http.post(f"{path}:embedContent", json={"content": {"parts": [{"text": "hi"}]}})).json()
    values = one["embedding"]["values"]
    assert len(values) == 8
    assert abs(sum(v * v for v in values) - 1.0) < 1e-4

    batch = {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hi"}]}},
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "yo"}]},
                "outputDimensionality": 16,
                "taskType": "RETRIEVAL_QUERY",
            },
        ]
    }
    vectors = (await http.post(f"{path}:batchEmbedContents", json=batch)).json()["embeddings"]
    assert vectors[0]["values"] == values
    assert len(vectors[1]["values"]) == 16
    batch["requests"][0]["model"] = "models/other"
    assert (await http.post(f"{path}:batchEmbedContents", json=batch)).status_code == 400

    answer = await sdk.aio.models.embed_content(model="gemini-embedding-001", contents=["hi", "yo"])
    assert answer.embeddings and answer.embeddings[0].values == values


# --- faults ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_rate_limit_fault_carries_retry_info(
    mock: Fake, http: httpx.AsyncClient, sdk: genai.Client
) -> None:
    mock.state.faults.add(
        "gemini", "gemini-2.5-flash", {"kind": "status", "status": 429, "retry_after": 37}, times=2
    )
    response = await http.post(FLASH, json=user("hi"))

    assert response.status_code == 429
    assert "retry-after" not in response.headers
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert error["message"] == "Resource has been exhausted (e.g. check quota)."
    retry = [d for d in error["details"] if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]

    with pytest.raises(errors.ClientError) as caught:
        await sdk.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert (await http.post(FLASH, json=user("hi"))).status_code == 200  # consumed


@pytest.mark.asyncio
async def test_overloaded_and_internal_faults(mock: Fake, http: httpx.AsyncClient, sdk: genai.Client) -> None:
    mock.state.faults.add("gemini", "*", {"kind": "status", "status": 503})
    with pytest.raises(errors.ServerError) as caught:
        await sdk.aio.models.generate_content(model="gemini-2.5-pro", contents="hi")
    assert caught.value.status == "UNAVAILABLE"
    assert caught.value.message == "The model is overloaded. Please try again later."

    mock.state.faults.add("gemini", "*", {"kind": "status", "status": 500, "message": "boom"})
    array = await http.post(f"{BASE}/gemini-2.5-flash:streamGenerateContent", json=user("hi"))
    assert array.status_code == 500
    assert array.json() == [{"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}]


@pytest.mark.asyncio
async def test_drop_malformed_and_timeout_faults(mock: Fake, http: httpx.AsyncClient) -> None:
    mock.state.faults.add("gemini", "*", {"kind": "drop"})
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(FLASH, json=user("hi"))

    mock.state.faults.add("gemini", "*", {"kind": "malformed"})
    malformed = await http.post(FLASH, json=user("hi"))
    assert malformed.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        malformed.json()

    mock.state.faults.add("gemini", "*", {"kind": "timeout", "delay": 0.5})
    with pytest.raises(httpx.ReadTimeout):
        await http.post(FLASH, json=user("hi"), timeout=0.2)


@pytest.mark.asyncio
async def test_cut_fault_aborts_the_stream(mock: Fake, http: httpx.AsyncClient) -> None:
    mock.state.faults.add("gemini", "*", {"kind": "cut", "after_chunks": 2})
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        async with http.stream("POST", SSE, json=user("words=10")) as response:
            async for chunk in response.aiter_bytes():
                received += chunk
    assert received.count(b"\r\n\r\n") == 2
    assert b"finishReason" not in received


@pytest.mark.asyncio
async def test_stream_error_fault_sends_in_band_error(mock: Fake, http: httpx.AsyncClient) -> None:
    mock.state.faults.add("gemini", "*", {"kind": "stream_error", "after_chunks": 2})
    events = await sse_events(http, SSE, user("words=10"))

    assert len(events) == 3
    assert events[-1]["error"]["code"] == 500 and events[-1]["error"]["status"] == "INTERNAL"
    assert all("finishReason" not in e.get("candidates", [{}])[0] for e in events)


@pytest.mark.asyncio
async def test_stall_and_ttft_delay_the_first_event(mock: Fake, http: httpx.AsyncClient) -> None:
    async def gap_before_first_event() -> float:
        async with http.stream("POST", SSE, json=user("hi")) as response:
            headers_at = time.monotonic()
            async for _ in response.aiter_bytes():
                return time.monotonic() - headers_at
        raise AssertionError("no event")

    mock.state.faults.add("gemini", "*", {"kind": "stall", "delay": 0.3})
    assert await gap_before_first_event() >= 0.28

    mock.state.set_behaviour("gemini", "gemini-2.5-flash", ttft_ms=300)
    assert await gap_before_first_event() >= 0.28
    started = time.monotonic()
    await http.post(FLASH, json=user("hi"))
    assert time.monotonic() - started >= 0.28
    started = time.monotonic()
    await http.post(f"{BASE}/gemini-2.5-pro:generateContent", json=user("hi"))
    assert time.monotonic() - started < 0.25


@pytest.mark.asyncio
async def test_tokens_per_second_paces_the_stream(mock: Fake, http: httpx.AsyncClient) -> None:
    mock.state.set_behaviour("gemini", "*", tokens_per_s=50)
    started = time.monotonic()
    events = await sse_events(http, SSE, user("words=11"))
    assert len(events) == 11
    assert time.monotonic() - started >= 0.19  # 10 gaps of 20 ms


# --- wiring ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fake_also_serves_from_a_bare_aiohttp_app() -> None:
    state = MockState()
    app = web.Application()
    GeminiFake(state).add_routes(app)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with httpx.AsyncClient(base_url=url) as raw:
            assert text_of((await raw.post(FLASH, json=user("hi"))).json()) == "Echo: hi"
            assert (await raw.get("/gemini/v1beta/nope")).json()["error"]["status"] == "NOT_FOUND"
        assert [r.provider for r in state.requests()] == ["gemini", "gemini"]
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_a_repeated_long_prompt_is_cached_implicitly(http: httpx.AsyncClient) -> None:
    long = user("The agreement. " * 400)  # 6,000 characters: 1,500 tokens, past 2.5 Flash's 1,024
    first = (await http.post(FLASH, json=long)).json()["usageMetadata"]
    assert first["promptTokenCount"] == 1500 and "cachedContentTokenCount" not in first
    again = (await http.post(FLASH, json=long)).json()["usageMetadata"]
    assert again["promptTokenCount"] == 1500  # it counts the cached tokens in
    assert 1024 <= again["cachedContentTokenCount"] <= 1500
    assert again["totalTokenCount"] == 1500 + again["candidatesTokenCount"]
    old = f"{BASE}/gemini-2.0-flash:generateContent"  # Gemini 2.0 has no implicit caching
    await http.post(old, json=long)
    assert "cachedContentTokenCount" not in (await http.post(old, json=long)).json()["usageMetadata"]
