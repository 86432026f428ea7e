"""The fake OpenAI upstream speaks the real Chat Completions wire format and acts out scripted faults."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio
from openai.types.chat import (
    ChatCompletionMessage,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

from router.mock import MockServer, MockState
from router.mock.textgen import Prompt, plan_reply
from tests.openapi import validate

CHAT = "/openai/v1/chat/completions"
WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def function_calls(message: ChatCompletionMessage) -> list[ChatCompletionMessageFunctionToolCall]:
    calls = message.tool_calls or []
    assert all(isinstance(c, ChatCompletionMessageFunctionToolCall) for c in calls)
    return [c for c in calls if isinstance(c, ChatCompletionMessageFunctionToolCall)]


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


async def sse_events(http: httpx.AsyncClient, body: dict[str, Any]) -> list[str]:
    """The ``data:`` payloads of a stream, asserting the framing on the way."""
    async with http.stream("POST", CHAT, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = (await response.aread()).decode()
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    assert all(e.startswith("data: ") and "\n" not in e for e in events), "one data line per event"
    return [e.removeprefix("data: ") for e in events]


# --- answers ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_non_stream_answer_matches_openai_schema(http: httpx.AsyncClient) -> None:
    response = await http.post(CHAT, json={"model": "gpt-5-mini", "messages": user("Hello there")})

    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    validate(body, "CreateChatCompletionResponse")
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "gpt-5-mini"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Echo: Hello there",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    usage = body["usage"]
    assert usage["prompt_tokens"] == 2  # 11 characters / 4
    assert usage["completion_tokens"] == 3  # "Echo: ", "Hello ", "there"
    assert usage["total_tokens"] == 5
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    assert body["service_tier"] == "default"
    assert body["system_fingerprint"] == "fp_mock"


@pytest.mark.asyncio
async def test_words_request_and_caps(client: openai.AsyncOpenAI) -> None:
    full = await client.chat.completions.create(model="gpt-4o-mini", messages=user("say words=7"))
    assert full.choices[0].message.content == "lorem ipsum dolor sit amet consectetur adipiscing"
    assert full.usage is not None and full.usage.completion_tokens == 7

    capped = await client.chat.completions.create(
        model="gpt-4o-mini", messages=user("say words=7"), max_completion_tokens=3
    )
    assert capped.choices[0].message.content == "lorem ipsum dolor "
    assert capped.choices[0].finish_reason == "length"

    stopped = await client.chat.completions.create(
        model="gpt-4o-mini", messages=user("say words=7"), stop=["sit", "nothing"]
    )
    assert stopped.choices[0].message.content == "lorem ipsum dolor "
    assert stopped.choices[0].finish_reason == "stop"


@pytest.mark.asyncio
async def test_service_tier_is_echoed_like_openai(client: openai.AsyncOpenAI) -> None:
    echoed = {}
    for asked in ("auto", "default", "flex", "fast", "priority"):
        answer = await client.chat.completions.create(
            model="gpt-5-mini", messages=user("hi"), service_tier=asked
        )
        echoed[asked] = answer.service_tier
    assert echoed == {
        "auto": "default",
        "default": "default",
        "flex": "flex",
        "fast": "priority",
        "priority": "priority",
    }


@pytest.mark.asyncio
async def test_stream_assembles_text_then_finish_then_usage(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    stream = await client.chat.completions.create(
        model="gpt-5-mini",
        messages=user("stream words=5"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    assert sum(1 for c in chunks for ch in c.choices if ch.delta.role) == 1
    text = "".join(ch.delta.content or "" for c in chunks for ch in c.choices)
    assert text == "lorem ipsum dolor sit amet"
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == ["stop"]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1

    raw = await sse_events(
        http,
        {
            "model": "gpt-5-mini",
            "messages": user("hi"),
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert raw[-1] == "[DONE]"
    for payload in raw[:-1]:
        chunk = json.loads(payload)
        validate(chunk, "CreateChatCompletionStreamResponse")
        assert "usage" in chunk


@pytest.mark.asyncio
async def test_stream_without_include_usage_has_no_usage_key(http: httpx.AsyncClient) -> None:
    raw = await sse_events(http, {"model": "gpt-5-mini", "messages": user("hi there"), "stream": True})

    chunks = [json.loads(p) for p in raw[:-1]]
    assert raw[-1] == "[DONE]"
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Echo: "},
        {"content": "hi "},
        {"content": "there"},
        {},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)
    assert all(c["object"] == "chat.completion.chunk" and c["service_tier"] == "default" for c in chunks)


# --- tools -------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_tool_calls_non_stream_then_tool_results(client: openai.AsyncOpenAI) -> None:
    answer = await client.chat.completions.create(
        model="gpt-5-mini",
        messages=user("What is the weather?"),
        tools=[WEATHER_TOOL, TIME_TOOL],
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = function_calls(choice.message)
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id.startswith("call_") and len(call.id) == 29
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo", "days": 1}

    followup = await client.chat.completions.create(
        model="gpt-5-mini",
        messages=[
            *user("What is the weather?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": call.function.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 4}'},
        ],
        tools=[WEATHER_TOOL],
    )
    assert followup.choices[0].message.content == 'Tool results: {"temp_c": 4}'
    assert followup.choices[0].finish_reason == "stop"

    named = await client.chat.completions.create(
        model="gpt-5-mini",
        messages=user("anything"),
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert [c.function.name for c in function_calls(named.choices[0].message)] == ["get_time"]

    declined = await client.chat.completions.create(
        model="gpt-5-mini",
        messages=user("get_weather"),
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )
    assert declined.choices[0].message.content == "Echo: get_weather"


@pytest.mark.asyncio
async def test_streamed_tool_calls_accumulate_with_identity_fields_once(client: openai.AsyncOpenAI) -> None:
    async with client.chat.completions.stream(
        model="gpt-5-mini",
        messages=user("use get_weather and get_time please"),
        tools=[WEATHER_TOOL, TIME_TOOL],
    ) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = function_calls(choice.message)
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert all(c.id.startswith("call_") and len(c.id) == 29 for c in calls)
    assert len({c.id for c in calls}) == 2
    assert json.loads(calls[0].function.arguments) == {"city": "Oslo", "days": 1}
    assert json.loads(calls[1].function.arguments) == {"tz": "example"}


@pytest.mark.asyncio
async def test_streamed_tool_arguments_arrive_in_several_fragments(http: httpx.AsyncClient) -> None:
    raw = await sse_events(
        http, {"model": "gpt-5-mini", "messages": user("x"), "stream": True, "tools": [WEATHER_TOOL]}
    )
    deltas = [json.loads(p)["choices"][0]["delta"] for p in raw[:-1]]
    assert deltas[0] == {"role": "assistant", "content": None}
    tool_deltas = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert set(tool_deltas[0]) == {"index", "id", "type", "function"}
    assert tool_deltas[0]["function"] == {"name": "get_weather", "arguments": ""}
    fragments = tool_deltas[1:]
    assert len(fragments) >= 2
    assert all(set(f) == {"index", "function"} and set(f["function"]) == {"arguments"} for f in fragments)
    assert json.loads("".join(f["function"]["arguments"] for f in fragments)) == {"city": "Oslo", "days": 1}


# --- request checks --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_max_tokens_rejected_for_reasoning_models_only(client: openai.AsyncOpenAI) -> None:
    for model in ("gpt-5-mini", "o4-mini"):
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model=model, messages=user("hi"), max_tokens=10)
        assert caught.value.code == "unsupported_parameter"
        assert caught.value.param == "max_tokens"
        assert "Use 'max_completion_tokens' instead." in caught.value.message

    fine = await client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"), max_tokens=10)
    assert fine.choices[0].message.content == "Echo: hi"


@pytest.mark.asyncio
async def test_invalid_requests_name_the_param(http: httpx.AsyncClient) -> None:
    cases = [
        ({"messages": user("hi")}, "model"),
        ({"model": "gpt-5-mini"}, "messages"),
        ({"model": "gpt-5-mini", "messages": []}, "messages"),
        ({"model": 5, "messages": user("hi")}, "model"),
        (
            {"model": "gpt-5-mini", "messages": user("hi"), "stream_options": {"include_usage": True}},
            "stream_options",
        ),
    ]
    for body, param in cases:
        response = await http.post(CHAT, json=body)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param, body
        validate(response.json(), "ErrorResponse")
        assert response.headers["x-request-id"].startswith("req_")

    not_json = await http.post(CHAT, content=b"{oops")
    assert not_json.status_code == 400
    assert not_json.json()["error"]["param"] is None


@pytest.mark.asyncio
async def test_required_key_gives_401_for_missing_or_wrong_key(
    mock: MockServer, http: httpx.AsyncClient
) -> None:
    mock.state.set_required_key("openai", "sk-right-key-1234")
    body = {"model": "gpt-5-mini", "messages": user("hi")}

    missing = await http.post(CHAT, json=body)
    wrong = await http.post(CHAT, json=body, headers={"Authorization": "Bearer sk-wrong-key-9999"})
    right = await http.post(CHAT, json=body, headers={"Authorization": "Bearer sk-right-key-1234"})

    for response in (missing, wrong):
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["message"].startswith("Incorrect API key provided")
        assert (error["type"], error["param"], error["code"]) == (
            "invalid_request_error",
            None,
            "invalid_api_key",
        )
    assert "sk-wrong-key-9999" not in wrong.text
    assert right.status_code == 200

    sdk = openai.AsyncOpenAI(base_url=mock.url + "/openai/v1", api_key="sk-nope", max_retries=0)
    try:
        with pytest.raises(openai.AuthenticationError):
            await sdk.models.list()
    finally:
        await sdk.close()


@pytest.mark.asyncio
async def test_unknown_path_and_model_list(client: openai.AsyncOpenAI, http: httpx.AsyncClient) -> None:
    missing = await http.post("/openai/v1/nothing-here", json={})
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": "Invalid URL (POST /openai/v1/nothing-here)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert missing.headers["x-request-id"].startswith("req_")
    assert (await http.get("/elsewhere")).status_code == 404

    validate((await http.get("/openai/v1/models")).json(), "ListModelsResponse")
    models = await client.models.list()
    assert "gpt-5-mini" in [m.id for m in models.data]


# --- faults ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_status_fault_with_retry_after(mock: MockServer, client: openai.AsyncOpenAI) -> None:
    mock.state.faults.add("openai", "gpt-5-mini", {"kind": "status", "status": 500, "retry_after": 2.5})

    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="gpt-5-mini", messages=user("hi"))

    error = caught.value
    assert error.status_code == 500
    assert error.response.headers["retry-after"] == "2.5"
    assert error.response.headers["retry-after-ms"] == "2500"
    assert error.type == "server_error"
    assert "Sorry about that" in error.message
    assert error.request_id is not None and error.request_id.startswith("req_")
    # consumed: the next request succeeds
    assert (await client.chat.completions.create(model="gpt-5-mini", messages=user("hi"))).choices


@pytest.mark.asyncio
async def test_rate_limit_fault_defaults(mock: MockServer, client: openai.AsyncOpenAI) -> None:
    mock.state.faults.add("openai", "*", {"kind": "status", "status": 429}, times=2)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="gpt-5-nano", messages=user("hi"))
        assert caught.value.code == "rate_limit_exceeded"
        assert caught.value.type == "requests"
        assert "gpt-5-nano" in caught.value.message
    assert mock.state.faults.pending() == []


@pytest.mark.asyncio
async def test_fault_matching_order_and_stream_only_faults(
    mock: MockServer, client: openai.AsyncOpenAI
) -> None:
    faults = mock.state.faults
    faults.add("openai", "*", {"kind": "status", "status": 503})
    faults.add("openai", "gpt-5", {"kind": "cut", "after_chunks": 1})
    faults.add("openai", "gpt-5", {"kind": "status", "status": 500})

    # exact model first; its stream-only fault is skipped (and kept) for a non-stream request
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="gpt-5", messages=user("hi"))
    assert caught.value.status_code == 500
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="gpt-5", messages=user("hi"))
    assert caught.value.status_code == 503
    assert [p.fault.kind for p in faults.pending()] == ["cut"]
    assert (await client.chat.completions.create(model="gpt-5", messages=user("hi"))).choices


@pytest.mark.asyncio
async def test_drop_fault_raises_connection_error(mock: MockServer, client: openai.AsyncOpenAI) -> None:
    mock.state.faults.add("openai", "*", {"kind": "drop"})
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="gpt-5-mini", messages=user("hi"))
    assert (await client.chat.completions.create(model="gpt-5-mini", messages=user("hi"))).choices


@pytest.mark.asyncio
async def test_malformed_fault_sends_non_json(mock: MockServer, http: httpx.AsyncClient) -> None:
    mock.state.faults.add("openai", "*", {"kind": "malformed"})
    response = await http.post(CHAT, json={"model": "gpt-5-mini", "messages": user("hi")})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.asyncio
async def test_cut_fault_breaks_the_stream(mock: MockServer, client: openai.AsyncOpenAI) -> None:
    mock.state.faults.add("openai", "*", {"kind": "cut", "after_chunks": 2})
    stream = await client.chat.completions.create(model="gpt-5-mini", messages=user("words=10"), stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk)
    assert [c.choices[0].delta.content for c in received] == ["", "lorem "]


@pytest.mark.asyncio
async def test_stream_error_fault_raises_api_error_without_done(
    mock: MockServer, client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    mock.state.faults.add("openai", "*", {"kind": "stream_error", "after_chunks": 2}, times=2)
    stream = await client.chat.completions.create(model="gpt-5-mini", messages=user("words=10"), stream=True)
    received = []
    with pytest.raises(openai.APIError) as caught:
        async for chunk in stream:
            received.append(chunk)
    assert len(received) == 2
    assert caught.value.message == "The server had an error while processing your request."

    raw = await sse_events(http, {"model": "gpt-5-mini", "messages": user("words=10"), "stream": True})
    assert len(raw) == 3
    assert json.loads(raw[-1])["error"]["type"] == "server_error"
    assert "[DONE]" not in raw


@pytest.mark.asyncio
async def test_stall_fault_and_ttft_delay_the_first_content(
    mock: MockServer, client: openai.AsyncOpenAI
) -> None:
    async def gap_before_content() -> float:
        stream = await client.chat.completions.create(model="gpt-5-mini", messages=user("hi"), stream=True)
        stamps = [(time.monotonic(), chunk) async for chunk in stream]
        role_at = stamps[0][0]
        content_at = next(t for t, c in stamps if c.choices and c.choices[0].delta.content)
        return content_at - role_at

    mock.state.faults.add("openai", "*", {"kind": "stall", "delay": 0.3})
    assert await gap_before_content() >= 0.28

    mock.state.set_behaviour("openai", "gpt-5-mini", ttft_ms=300)
    assert await gap_before_content() >= 0.28

    started = time.monotonic()
    await client.chat.completions.create(model="gpt-5-mini", messages=user("hi"))
    assert time.monotonic() - started >= 0.28
    started = time.monotonic()
    await client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))  # "*" is still fast
    assert time.monotonic() - started < 0.25


@pytest.mark.asyncio
async def test_tokens_per_second_paces_the_stream(mock: MockServer, client: openai.AsyncOpenAI) -> None:
    mock.state.set_behaviour("openai", "*", tokens_per_s=50)
    started = time.monotonic()
    stream = await client.chat.completions.create(model="gpt-5-mini", messages=user("words=11"), stream=True)
    pieces = [c async for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) == 11
    assert time.monotonic() - started >= 0.19  # 10 gaps of 20 ms


@pytest.mark.asyncio
async def test_timeout_fault_hangs_past_the_client_deadline(mock: MockServer) -> None:
    mock.state.faults.add("openai", "*", {"kind": "timeout", "delay": 0.5})
    sdk = openai.AsyncOpenAI(base_url=mock.url + "/openai/v1", api_key="x", max_retries=0, timeout=0.2)
    try:
        with pytest.raises(openai.APITimeoutError):
            await sdk.chat.completions.create(model="gpt-5-mini", messages=user("hi"))
    finally:
        await sdk.close()


# --- control API and request log ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_control_api_over_http(mock: MockServer, http: httpx.AsyncClient) -> None:
    added = await http.post(
        "/__mock__/faults",
        json={
            "provider": "openai",
            "model": "gpt-5-mini",
            "fault": {"kind": "status", "status": 503},
            "times": 1,
        },
    )
    assert added.json() == {"ok": True}
    listed = (await http.get("/__mock__/faults")).json()["faults"]
    fault = {"kind": "status", "status": 503}
    assert listed == [{"provider": "openai", "model": "gpt-5-mini", "fault": fault, "remaining": 1}]
    assert (await http.post(CHAT, json={"model": "gpt-5-mini", "messages": user("a")})).status_code == 503

    bad = await http.post("/__mock__/faults", json={"fault": {"kind": "explode"}})
    assert bad.status_code == 400
    assert (
        await http.post("/__mock__/faults", json={"fault": {"kind": "drop"}, "times": -1})
    ).status_code == 200
    assert (await http.delete("/__mock__/faults")).status_code == 200
    assert mock.state.faults.pending() == []

    behaviour = await http.post(
        "/__mock__/behaviour", json={"provider": "openai", "model": "*", "latency_ms": 150}
    )
    assert behaviour.status_code == 200
    started = time.monotonic()
    await http.post(CHAT, json={"model": "gpt-5-mini", "messages": user("b")})
    assert time.monotonic() - started >= 0.14
    await http.delete("/__mock__/behaviour")

    assert (await http.post("/__mock__/key", json={"provider": "openai", "key": "sk-x"})).status_code == 200
    assert (await http.post(CHAT, json={"model": "gpt-5-mini", "messages": user("c")})).status_code == 401
    assert (await http.post("/__mock__/key", json={"provider": "openai", "key": None})).status_code == 200

    await http.post(
        CHAT, json={"model": "gpt-5-mini", "messages": user("d")}, headers={"Authorization": "Bearer sk-abc"}
    )
    log = (await http.get("/__mock__/requests", params={"provider": "openai"})).json()["requests"]
    assert [r["body"]["messages"][0]["content"] for r in log] == ["a", "b", "c", "d"]
    assert log[-1]["method"] == "POST" and log[-1]["path"] == CHAT
    assert log[-1]["headers"]["authorization"] == "Bearer sk-abc"
    assert (await http.delete("/__mock__/requests")).status_code == 200
    assert (await http.get("/__mock__/requests")).json() == {"requests": []}


@pytest.mark.asyncio
async def test_request_log_is_bounded_and_readable_in_process() -> None:
    async with MockServer(MockState(history=3)) as server, httpx.AsyncClient(base_url=server.url) as raw:
        for word in ("one", "two", "three", "four"):
            await raw.post(
                CHAT, json={"model": "gpt-5-mini", "messages": user(word), "max_completion_tokens": 9}
            )
        log = server.state.requests("openai")
        assert [r.body["messages"][0]["content"] for r in log] == ["two", "three", "four"]
        assert log[-1].body["max_completion_tokens"] == 9
        assert server.state.requests("anthropic") == []


def test_reply_planning_is_deterministic() -> None:
    prompt = Prompt(user_text="please words=3", prompt_chars=14)
    assert plan_reply(prompt, "ab" * 12) == plan_reply(prompt, "ab" * 12)
    assert plan_reply(prompt, "ab" * 12).pieces == ["lorem ", "ipsum ", "dolor"]
    assert plan_reply(Prompt(user_text="x" * 500, prompt_chars=500), "0" * 24).text == "Echo: " + "x" * 200


async def test_a_repeated_long_prompt_reports_cached_tokens(client: openai.AsyncOpenAI) -> None:
    long = user("The agreement. " * 400)  # 6,000 characters: 1,500 tokens
    first = await client.chat.completions.create(model="gpt-5-mini", messages=long)
    assert first.usage is not None and first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    again = await client.chat.completions.create(model="gpt-5-mini", messages=[*long, *user("More?")])
    assert again.usage is not None and again.usage.prompt_tokens_details is not None
    cached = again.usage.prompt_tokens_details.cached_tokens
    assert cached is not None and 1024 <= cached <= 1500 and (cached - 1024) % 128 == 0
    short = user("hi")  # under 1,024 tokens nothing is cached
    await client.chat.completions.create(model="gpt-5-mini", messages=short)
    repeat = await client.chat.completions.create(model="gpt-5-mini", messages=short)
    assert repeat.usage is not None and repeat.usage.prompt_tokens_details is not None
    assert repeat.usage.prompt_tokens_details.cached_tokens == 0
    responses = [
        await client.responses.create(model="gpt-5-mini", input="The agreement. " * 400) for _ in "ab"
    ]
    assert [r.usage.input_tokens_details.cached_tokens > 1000 for r in responses if r.usage] == [False, True]
