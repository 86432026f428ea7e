"""The fake Anthropic upstream speaks the real Messages wire format and acts out scripted faults."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from anthropic.types import MessageParam, TextBlock, ToolParam, ToolUseBlock

from router.mock import MockState
from router.mock.anthropic_fake import PREFIX, AnthropicFake

MESSAGES = "/anthropic/v1/messages"
HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "x"}
WEATHER_TOOL: ToolParam = {
    "name": "get_weather",
    "description": "Current weather",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
TIME_TOOL: ToolParam = {
    "name": "get_time",
    "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}},
}
HEX24 = re.compile(r"[0-9a-f]{24}")


def user(text: str) -> list[MessageParam]:
    return [{"role": "user", "content": text}]


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "claude-opus-4-5", "max_tokens": 256, "messages": user(text), **extra}


class Fake:
    """The Anthropic routes alone on a loopback socket, with the state that scripts them."""

    def __init__(self, state: MockState, url: str) -> None:
        self.state = state
        self.url = url


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[Fake]:
    state = MockState()
    app = web.Application()
    AnthropicFake(state).add_routes(app)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield Fake(state, f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def client(fake: Fake) -> AsyncIterator[anthropic.AsyncAnthropic]:
    sdk = anthropic.AsyncAnthropic(base_url=fake.url + PREFIX, api_key="x", max_retries=0, timeout=5.0)
    yield sdk
    await sdk.close()


@pytest_asyncio.fixture
async def http(fake: Fake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, headers=HEADERS, timeout=5.0) as raw:
        yield raw


async def sse_events(http: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a stream, asserting the framing: ``event:`` = data ``type``, compact one-line JSON."""
    async with http.stream("POST", MESSAGES, json={**body, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["request-id"].startswith("req_")
        text = (await response.aread()).decode()
    assert text.endswith("\n\n")
    events = []
    for raw in text[:-2].split("\n\n"):
        event_line, data_line = raw.split("\n")
        data = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}"
        assert data_line == "data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        events.append(data)
    return events


# --- answers ---------------------------------------------------------------------------------------


async def test_non_stream_answer_has_the_message_shape(fake: Fake, http: httpx.AsyncClient) -> None:
    response = await http.post(MESSAGES, json=ask("Hello there"))

    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_")
    body = response.json()
    assert body.pop("id").startswith("msg_")
    assert body == {
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-4-5",
        "content": [{"type": "text", "text": "Echo: Hello there"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 2,  # 11 characters / 4
            "output_tokens": 3,  # "Echo: ", "Hello ", "there"
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard",
        },
    }
    [logged] = fake.state.requests("anthropic")
    assert logged.path == MESSAGES and logged.body["messages"] == user("Hello there")
    assert logged.headers["anthropic-version"] == "2023-06-01"


async def test_words_caps_and_stop_sequences(client: anthropic.AsyncAnthropic) -> None:
    full = await client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=user("words=7"))
    assert isinstance(full.content[0], TextBlock)
    assert full.content[0].text == "lorem ipsum dolor sit amet consectetur adipiscing"
    assert (full.stop_reason, full.usage.output_tokens) == ("end_turn", 7)

    capped = await client.messages.create(model="claude-haiku-4-5", max_tokens=3, messages=user("words=7"))
    assert isinstance(capped.content[0], TextBlock) and capped.content[0].text == "lorem ipsum dolor "
    assert capped.stop_reason == "max_tokens"

    stopped = await client.messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=user("words=7"), stop_sequences=["sit", "zzz"]
    )
    assert isinstance(stopped.content[0], TextBlock) and stopped.content[0].text == "lorem ipsum dolor "
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "sit")


async def test_stream_events_in_order_and_sdk_assembles_them(
    http: httpx.AsyncClient, client: anthropic.AsyncAnthropic
) -> None:
    events = await sse_events(http, ask("Hello there"))

    assert [e["type"] for e in events] == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    message = events[0]["message"]
    assert message["content"] == [] and message["stop_reason"] is None
    assert message["usage"]["input_tokens"] == 2 and message["usage"]["output_tokens"] == 1
    assert events[2] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert [e["delta"] for e in events[3:6]] == [
        {"type": "text_delta", "text": t} for t in ("Echo: ", "Hello ", "there")
    ]
    assert events[7] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        # Cumulative counts, as the SDK's MessageDeltaUsage has them.
        "usage": {
            "input_tokens": 2,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 3,
        },
    }

    async with client.messages.stream(
        model="claude-opus-4-5", max_tokens=50, messages=user("words=5")
    ) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert texts == ["lorem ", "ipsum ", "dolor ", "sit ", "amet"]
    assert isinstance(final.content[0], TextBlock) and final.content[0].text == "lorem ipsum dolor sit amet"
    assert (final.stop_reason, final.usage.output_tokens) == ("end_turn", 5)
    assert final.id.startswith("msg_") and HEX24.fullmatch(final.id[4:])


async def test_tool_use_then_tool_results(client: anthropic.AsyncAnthropic) -> None:
    asked = user("Please use get_weather for Oslo")
    first = await client.messages.create(
        model="claude-opus-4-5", max_tokens=100, messages=asked, tools=[TIME_TOOL, WEATHER_TOOL]
    )
    assert first.stop_reason == "tool_use"
    [call] = first.content
    assert isinstance(call, ToolUseBlock) and call.name == "get_weather"  # named in the prompt
    assert call.input == {"city": "Oslo", "days": 1}
    assert call.id.startswith("toolu_") and HEX24.fullmatch(call.id[6:])

    forced = await client.messages.create(
        model="claude-opus-4-5",
        max_tokens=100,
        messages=user("get_time and get_weather please"),
        tools=[TIME_TOOL, WEATHER_TOOL],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
    )
    assert [b.name for b in forced.content if isinstance(b, ToolUseBlock)] == ["get_time"]
    nothing = await client.messages.create(
        model="claude-opus-4-5",
        max_tokens=100,
        messages=asked,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "none"},
    )
    assert nothing.stop_reason == "end_turn"

    answered = await client.messages.create(
        model="claude-opus-4-5",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=[
            *asked,
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "4°C"}]},
        ],
    )
    assert isinstance(answered.content[0], TextBlock) and answered.content[0].text == "Tool results: 4°C"
    assert answered.stop_reason == "end_turn"


async def test_streamed_tool_use_after_a_text_preamble(
    http: httpx.AsyncClient, client: anthropic.AsyncAnthropic
) -> None:
    body = ask("preamble: weather in Oslo", tools=[WEATHER_TOOL])
    events = await sse_events(http, body)
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [(s["index"], s["content_block"]["type"]) for s in starts] == [(0, "text"), (1, "tool_use")]
    assert starts[1]["content_block"]["input"] == {}
    fragments = [e["delta"]["partial_json"] for e in events if e.get("index") == 1 and "delta" in e]
    assert fragments[0] == "" and len(fragments) >= 3
    assert json.loads("".join(fragments)) == {"city": "Oslo", "days": 1}

    async with client.messages.stream(**body) as stream:
        final = await stream.get_final_message()
    text, tool = final.content
    assert isinstance(text, TextBlock) and text.text == "Let me call get_weather."
    assert isinstance(tool, ToolUseBlock) and tool.input == {"city": "Oslo", "days": 1}
    assert final.stop_reason == "tool_use"


async def test_cache_knob_reports_cached_input_apart(
    http: httpx.AsyncClient, client: anthropic.AsyncAnthropic
) -> None:
    system = "You are terse. cache=100 " + "x" * 800  # 825 characters: 206 tokens
    message = await client.messages.create(
        model="claude-opus-4-5", max_tokens=10, system=system, messages=user("hi")
    )
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (
        106,
        100,
        0,
    )

    blocks = [{"type": "text", "text": "cache=50 cache_write=20"}]
    events = await sse_events(http, ask("hi", system=blocks))
    started = events[0]["message"]["usage"]
    assert (started["input_tokens"], started["cache_read_input_tokens"]) == (0, 50)
    assert started["cache_creation_input_tokens"] == 20

    counted = await client.messages.count_tokens(model="claude-opus-4-5", system=system, messages=user("hi"))
    assert counted.input_tokens == 206


LONG = "The agreement. " * 400  # 6,000 characters: 1,500 tokens, past Sonnet's 1,024 minimum
EPHEMERAL: Any = {"type": "ephemeral"}


def marked_system(ttl: str | None = None) -> list[Any]:
    control = {"type": "ephemeral", "ttl": ttl} if ttl else EPHEMERAL
    return [
        {"type": "text", "text": "You read contracts."},
        {"type": "text", "text": LONG, "cache_control": control},
    ]


async def test_a_breakpoint_writes_its_prefix_and_a_repeat_reads_it(client: anthropic.AsyncAnthropic) -> None:
    ask_once = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "system": marked_system(),
        "messages": user("hi"),
    }
    first = (await client.messages.create(**ask_once)).usage
    assert first.cache_read_input_tokens == 0 and first.cache_creation_input_tokens == 1504
    assert first.cache_creation is not None and first.cache_creation.ephemeral_5m_input_tokens == 1504
    assert first.input_tokens == 1  # what follows the breakpoint
    second = (await client.messages.create(**ask_once)).usage
    assert (second.cache_read_input_tokens, second.cache_creation_input_tokens) == (1504, 0)

    # The next turn marks its own end: the system prompt is read, the new turns written.
    turns: list[MessageParam] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello. " * 300},
        {"role": "user", "content": [{"type": "text", "text": "More?", "cache_control": EPHEMERAL}]},
    ]
    third = (await client.messages.create(**{**ask_once, "messages": turns})).usage
    assert third.cache_read_input_tokens == 1504 and third.cache_creation_input_tokens == 527
    other_model = (await client.messages.create(**{**ask_once, "model": "claude-opus-4-1-20250805"})).usage
    assert other_model.cache_read_input_tokens == 0  # caches are per model


async def test_a_prefix_under_the_models_minimum_is_not_cached(client: anthropic.AsyncAnthropic) -> None:
    body = {"max_tokens": 10, "system": marked_system(), "messages": user("hi")}
    for model in ("claude-haiku-4-5", "claude-haiku-4-5"):  # 1,504 tokens: Haiku 4.5 caches from 4,096
        usage = (await client.messages.create(model=model, **body)).usage
        assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (0, 0)
        assert usage.input_tokens == 1505


async def test_one_hour_writes_are_reported_apart(client: anthropic.AsyncAnthropic) -> None:
    usage = (
        await client.messages.create(
            model="claude-sonnet-4-5", max_tokens=10, system=marked_system("1h"), messages=user("hi")
        )
    ).usage
    assert usage.cache_creation is not None
    assert (
        usage.cache_creation.ephemeral_1h_input_tokens,
        usage.cache_creation.ephemeral_5m_input_tokens,
    ) == (
        1504,
        0,
    )


async def test_top_level_cache_control_marks_the_last_block(client: anthropic.AsyncAnthropic) -> None:
    body: Any = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "messages": user(LONG),
        "cache_control": EPHEMERAL,
    }
    assert (await client.messages.create(**body)).usage.cache_creation_input_tokens == 1500
    assert (await client.messages.create(**body)).usage.cache_read_input_tokens == 1500


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "system": [{"type": "text", "text": "s", "cache_control": EPHEMERAL}],
                "tools": [{**WEATHER_TOOL, "cache_control": EPHEMERAL}],
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": t, "cache_control": EPHEMERAL} for t in "abc"]}],
            },
            "A maximum of 4 blocks with cache_control may be provided. Found 5.",
        ),
        (
            {
                "tools": [{**WEATHER_TOOL, "cache_control": EPHEMERAL}],
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}],
            },
            "messages.0.content.0.cache_control.ttl: a ttl='1h' cache_control block must not come after a "
            "ttl='5m' cache_control block. Note that blocks are processed in the following order: `tools`, "
            "`system`, `messages`.",
        ),
        (
            {"messages": [{"role": "user", "content": [
                {"type": "text", "text": "a", "cache_control": {"type": "persistent"}}]}]},
            "messages.0.content.0.cache_control.type: ",
        ),
    ],
)  # fmt: skip
async def test_breakpoint_limits_are_refused_as_anthropic_refuses_them(
    http: httpx.AsyncClient, body: dict[str, Any], message: str
) -> None:
    response = await http.post(MESSAGES, json={"model": "claude-sonnet-4-5", "max_tokens": 9, **body})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(message)


# --- request checks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "m", "messages": user("hi")}, "max_tokens: Field required"),
        ({"model": "m", "max_tokens": 0, "messages": user("hi")}, "max_tokens: Input should be greater"),
        ({"model": "m", "max_tokens": 9, "messages": []}, "messages: at least one message"),
        (ask("hi", n=2), "n: Extra inputs are not permitted"),
        (ask("hi", temperature=1.5), "temperature: "),
        (
            {"model": "m", "max_tokens": 9, "messages": [*user("a"), *user("b")]},
            'messages: roles must alternate between "user" and "assistant"',
        ),
        (
            {"model": "m", "max_tokens": 9, "messages": [{"role": "assistant", "content": "a"}]},
            'messages: first message must use the "user" role',
        ),
        (
            {"model": "m", "max_tokens": 9, "messages": [{"role": "system", "content": "a"}]},
            "messages.0.role: ",
        ),
        (
            {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages.0.content.0.text: Field required",
        ),
        (
            {
                "model": "m",
                "max_tokens": 9,
                "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}],
            },
            "messages: text content blocks must be non-empty",
        ),
        (
            {
                "model": "m",
                "max_tokens": 9,
                "messages": [
                    *user("a"),
                    {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]},
                ],
            },
            "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_x",
        ),
        (
            {
                "model": "m",
                "max_tokens": 9,
                "messages": [
                    *user("a"),
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                    },
                    *user("b"),
                ],
            },
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: t1",
        ),
        (
            ask("hi", thinking={"type": "enabled", "budget_tokens": 100}),
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (ask("hi", tool_choice={"type": "tool"}), "tool_choice.tool.name: Field required"),
    ],
)
async def test_invalid_requests_get_anthropic_400s(
    http: httpx.AsyncClient, body: dict[str, Any], message: str
) -> None:
    response = await http.post(MESSAGES, json=body)

    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith(message)
    assert error["request_id"] == response.headers["request-id"]


async def test_headers_version_and_key(fake: Fake, http: httpx.AsyncClient) -> None:
    del http.headers["anthropic-version"]
    no_version = await http.post(MESSAGES, json=ask("hi"))
    assert no_version.status_code == 400
    assert no_version.json()["error"]["message"] == "anthropic-version: header is required"

    http.headers["anthropic-version"] = "2023-06-01"
    fake.state.set_required_key("anthropic", "sk-ant-right")
    for headers in ({"x-api-key": "wrong"}, {"x-api-key": ""}):
        refused = await http.post(MESSAGES, json=ask("hi"), headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "authentication_error"
    sdk = anthropic.AsyncAnthropic(base_url=fake.url + PREFIX, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        await sdk.models.list()
    await sdk.close()
    accepted = await http.post(MESSAGES, json=ask("hi"), headers={"x-api-key": "sk-ant-right"})
    assert accepted.status_code == 200


async def test_model_list_and_unknown_path(client: anthropic.AsyncAnthropic, http: httpx.AsyncClient) -> None:
    page = await client.models.list()
    assert "claude-opus-4-5-20251101" in [m.id for m in page.data]
    assert all(m.type == "model" and m.display_name for m in page.data)

    missing = await http.get("/anthropic/v1/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"] == {"type": "not_found_error", "message": "Not Found"}


# --- faults ----------------------------------------------------------------------------------------


async def test_overloaded_and_rate_limit_faults(fake: Fake, client: anthropic.AsyncAnthropic) -> None:
    fake.state.faults.add("anthropic", "claude-opus-4-5", {"kind": "status", "status": 529, "retry_after": 3})
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        await client.messages.create(**ask("hi"))
    assert overloaded.value.status_code == 529
    assert overloaded.value.response.headers["retry-after"] == "3"
    assert overloaded.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": overloaded.value.request_id,
    }

    fake.state.faults.add("anthropic", "*", {"kind": "status", "status": 429, "retry_after": 1})
    with pytest.raises(anthropic.RateLimitError) as limited:
        await client.messages.create(**ask("hi"))
    assert limited.value.response.headers["retry-after"] == "1"
    assert isinstance(limited.value.body, dict) and limited.value.body["error"]["type"] == "rate_limit_error"
    await client.messages.create(**ask("hi"))  # faults are used up


async def test_drop_and_malformed_faults(
    fake: Fake, client: anthropic.AsyncAnthropic, http: httpx.AsyncClient
) -> None:
    fake.state.faults.add("anthropic", "*", {"kind": "drop"})
    with pytest.raises(anthropic.APIConnectionError):
        await client.messages.create(**ask("hi"))

    fake.state.faults.add("anthropic", "*", {"kind": "malformed"})
    response = await http.post(MESSAGES, json=ask("hi"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_cut_fault_breaks_the_stream(fake: Fake, client: anthropic.AsyncAnthropic) -> None:
    fake.state.faults.add("anthropic", "*", {"kind": "cut", "after_chunks": 4})  # start, ping, block, 1 delta
    seen: list[str] = []
    with pytest.raises(Exception, match="incomplete chunked read"):
        async with client.messages.stream(**ask("words=20")) as stream:
            async for event in stream:
                seen.append(event.type)
    assert "message_stop" not in seen and seen[0] == "message_start"


async def test_stream_error_fault_raises_in_iteration_without_message_stop(
    fake: Fake, client: anthropic.AsyncAnthropic, http: httpx.AsyncClient
) -> None:
    fake.state.faults.add("anthropic", "*", {"kind": "stream_error", "after_chunks": 3}, times=2)
    events = await sse_events(http, ask("words=20"))
    assert [e["type"] for e in events] == ["message_start", "ping", "content_block_start", "error"]
    assert events[-1]["error"] == {"type": "overloaded_error", "message": "Overloaded"}

    with pytest.raises(anthropic.APIStatusError) as raised:
        async with client.messages.stream(**ask("words=20")) as stream:
            async for _ in stream:
                pass
    assert raised.value.status_code == 200
    assert isinstance(raised.value.body, dict) and raised.value.body["error"]["type"] == "overloaded_error"

    fake.state.faults.add("anthropic", "*", {"kind": "stream_error", "after_chunks": 1, "type": "api_error"})
    events = await sse_events(http, ask("hi"))
    assert events[-1] == {"type": "error", "error": {"type": "api_error", "message": "Overloaded"}}


async def test_stall_and_ttft_delay_the_first_content(fake: Fake, client: anthropic.AsyncAnthropic) -> None:
    async def gap_before_content() -> float:
        async with client.messages.stream(**ask("hi")) as stream:
            stamps = [(time.monotonic(), event.type) async for event in stream]
        started_at = stamps[0][0]
        return next(t for t, kind in stamps if kind == "content_block_delta") - started_at

    fake.state.faults.add("anthropic", "*", {"kind": "stall", "delay": 0.3})
    assert await gap_before_content() >= 0.28

    fake.state.set_behaviour("anthropic", "claude-opus-4-5", ttft_ms=300)
    assert await gap_before_content() >= 0.28
    began = time.monotonic()
    await client.messages.create(**ask("hi"))
    assert time.monotonic() - began >= 0.28
    began = time.monotonic()
    await client.messages.create(**{**ask("hi"), "model": "claude-haiku-4-5"})  # "*" is still fast
    assert time.monotonic() - began < 0.25


async def test_paced_stream_sends_more_pings(fake: Fake, http: httpx.AsyncClient) -> None:
    fake.state.set_behaviour("anthropic", "*", tokens_per_s=100)
    began = time.monotonic()
    events = await sse_events(http, ask("words=25"))
    assert time.monotonic() - began >= 0.23  # 24 gaps of 10 ms
    kinds = [e["type"] for e in events]
    assert kinds.count("content_block_delta") == 25 and kinds.count("ping") == 3  # early, before 11th, 21st


async def test_timeout_fault_hangs_past_the_client_deadline(fake: Fake) -> None:
    fake.state.faults.add("anthropic", "*", {"kind": "timeout", "delay": 0.5})
    sdk = anthropic.AsyncAnthropic(base_url=fake.url + PREFIX, api_key="x", max_retries=0, timeout=0.2)
    try:
        with pytest.raises(anthropic.APITimeoutError):
            await sdk.messages.create(**ask("hi"))
    finally:
        await sdk.close()
