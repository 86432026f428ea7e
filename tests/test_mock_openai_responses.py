"""The fake OpenAI upstream speaks the real Responses API wire format and acts out scripted faults."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio
from openai.types.responses import FunctionToolParam, Response, ResponseFunctionToolCall

from router.mock import MockServer
from tests.openapi import validate

RESPONSES = "/openai/v1/responses"
WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
        "additionalProperties": False,
    },
    "strict": True,
}
CLOCK: FunctionToolParam = {
    "type": "function",
    "name": "get_time",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    "strict": False,
}
TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * 3,
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


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


async def stream_events(http: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The payloads of a Responses stream, asserting the framing on the way: an ``event:`` line equal to
    the payload's type, one ``data:`` line, sequence numbers 0..n, the official event schema, no [DONE]."""
    async with http.stream("POST", RESPONSES, json={**body, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = (await response.aread()).decode()
    assert text.endswith("\n\n")
    payloads = []
    for block in text[:-2].split("\n\n"):
        event_line, data_line = block.split("\n")
        payload = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {payload['type']}"
        validate(payload, "ResponseStreamEvent")
        payloads.append(payload)
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    assert "[DONE]" not in text
    return payloads


def calls_of(response: Response) -> list[ResponseFunctionToolCall]:
    return [item for item in response.output if isinstance(item, ResponseFunctionToolCall)]


# --- answers ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_text_answer_is_a_full_response_object(
    http: httpx.AsyncClient, client: openai.AsyncOpenAI
) -> None:
    answer = await http.post(
        RESPONSES,
        json={
            "model": "gpt-4.1-mini",
            "input": "Hello there",
            "instructions": "Be brief",
            "metadata": {"k": "v"},
        },
    )

    assert answer.status_code == 200
    assert answer.headers["x-request-id"].startswith("req_")
    body = answer.json()
    validate(body, "Response")
    assert body["id"].startswith("resp_") and body["object"] == "response"
    assert (body["status"], body["error"], body["incomplete_details"]) == ("completed", None, None)
    assert body["completed_at"] >= body["created_at"]
    [message] = body["output"]
    assert message["id"].startswith("msg_")
    assert message == {
        "id": message["id"],
        "type": "message",
        "status": "completed",
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Echo: Hello there"}],
        "role": "assistant",
    }
    # 8 + 11 characters / 4, like a chat request with a system and a user message
    assert body["usage"] == {
        "input_tokens": 4,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 7,
    }
    echoed = {k: body[k] for k in ("instructions", "model", "tools", "tool_choice", "store", "metadata")}
    assert echoed == {
        "instructions": "Be brief",
        "model": "gpt-4.1-mini",
        "tools": [],
        "tool_choice": "auto",
        "store": True,
        "metadata": {"k": "v"},
    }
    assert body["text"] == {"format": {"type": "text"}, "verbosity": "medium"}
    assert body["reasoning"] == {"effort": None, "summary": None}
    assert (body["service_tier"], body["parallel_tool_calls"], body["truncation"]) == (
        "default",
        True,
        "disabled",
    )

    sdk = await client.responses.create(
        model="gpt-4.1-mini", input="Hello there", store=False, service_tier="flex"
    )
    assert sdk.output_text == "Echo: Hello there"
    assert (sdk.store, sdk.service_tier) == (False, "flex")


@pytest.mark.asyncio
async def test_reasoning_models_put_a_reasoning_item_first(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    plain = await http.post(
        RESPONSES, json={"model": "gpt-5-mini", "input": "hi", "reasoning": {"effort": "low"}}
    )
    body = plain.json()
    validate(body, "Response")
    reasoning, message = body["output"]
    assert reasoning == {"id": reasoning["id"], "type": "reasoning", "summary": []}
    assert reasoning["id"].startswith("rs_")
    assert message["type"] == "message"
    assert body["reasoning"] == {"effort": "low", "summary": None}
    assert body["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}

    encrypted = await client.responses.create(
        model="o4-mini", input="hi", include=["reasoning.encrypted_content"], store=False
    )
    item = encrypted.output[0]
    assert item.type == "reasoning"
    assert isinstance(item.encrypted_content, str) and item.encrypted_content
    assert encrypted.reasoning is not None and encrypted.reasoning.effort == "medium"

    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="gpt-4.1", input="hi", reasoning={"effort": "high"})
    assert (caught.value.param, caught.value.code) == ("reasoning.effort", "unsupported_parameter")


@pytest.mark.asyncio
async def test_input_items_map_like_the_equivalent_chat(client: openai.AsyncOpenAI) -> None:
    answer = await client.responses.create(
        model="gpt-4.1",
        input=[
            {"role": "system", "content": "You are terse."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in this picture?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,iVBOR", "detail": "auto"},
                    {"type": "input_file", "file_id": "file-123"},
                ],
            },
            {
                "type": "message",
                "role": "assistant",
                "id": "msg_old",
                "status": "completed",
                "content": [{"type": "output_text", "text": "A cat.", "annotations": []}],
            },
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be nice."}]},
            {"type": "message", "role": "user", "content": "And now?"},
        ],
    )
    chat = await client.chat.completions.create(
        model="gpt-4.1",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is in this picture?"},
            {"role": "assistant", "content": "A cat."},
            {"role": "developer", "content": "Be nice."},
            {"role": "user", "content": "And now?"},
        ],
    )
    assert answer.output_text == chat.choices[0].message.content == "Echo: And now?"
    assert answer.usage is not None and chat.usage is not None
    assert answer.usage.input_tokens == chat.usage.prompt_tokens
    assert answer.usage.output_tokens == chat.usage.completion_tokens


@pytest.mark.asyncio
async def test_tool_call_then_function_call_output(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    first = await client.responses.create(
        model="gpt-4.1", input="What is the weather?", tools=[WEATHER, CLOCK]
    )
    [call] = calls_of(first)
    assert call.id is not None and call.id.startswith("fc_")
    assert call.call_id.startswith("call_") and len(call.call_id) == 29
    assert (call.name, call.status) == ("get_weather", "completed")
    assert json.loads(call.arguments) == {"city": "Oslo", "days": 1}
    assert first.tools[0].type == "function" and first.tools[1].type == "function"
    assert [t.strict for t in first.tools if t.type == "function"] == [True, False]

    raw = (
        await http.post(RESPONSES, json={"model": "gpt-4.1", "input": "get_time", "tools": [WEATHER, CLOCK]})
    ).json()
    validate(raw, "Response")
    assert [item["name"] for item in raw["output"]] == ["get_time"]

    followup = await client.responses.create(
        model="gpt-4.1",
        input=[
            {"role": "user", "content": "What is the weather?"},
            call.model_dump(exclude_none=True),  # echoed verbatim, with id and status
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 4}'},
        ],
        tools=[WEATHER],
    )
    assert followup.output_text == 'Tool results: {"temp_c": 4}'
    assert calls_of(followup) == []

    named = await client.responses.create(
        model="gpt-4.1",
        input="anything",
        tools=[WEATHER, CLOCK],
        tool_choice={"type": "function", "name": "get_time"},
    )
    assert [c.name for c in calls_of(named)] == ["get_time"]
    assert named.to_dict()["tool_choice"] == {"type": "function", "name": "get_time"}

    allowed = await client.responses.create(
        model="gpt-4.1",
        input="get_weather",
        tools=[WEATHER, CLOCK],
        tool_choice={
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "function", "name": "get_time"}],
        },
    )
    assert [c.name for c in calls_of(allowed)] == ["get_time"]

    declined = await client.responses.create(
        model="gpt-4.1", input="get_weather", tools=[WEATHER], tool_choice="none"
    )
    assert declined.output_text == "Echo: get_weather"


@pytest.mark.asyncio
async def test_reasoning_tool_loop_replayed_like_n8n(client: openai.AsyncOpenAI) -> None:
    ask = [{"role": "user", "content": [{"type": "input_text", "text": "use get_weather and get_time"}]}]
    first = await client.responses.create(
        model="gpt-5-mini",
        input=ask,  # type: ignore[arg-type]
        tools=[WEATHER, CLOCK],
        include=["reasoning.encrypted_content"],
        store=False,
    )
    assert [item.type for item in first.output] == ["reasoning", "function_call", "function_call"]
    replay: list[Any] = [*ask, *(item.model_dump(exclude_none=True) for item in first.output)]
    replay += [
        {"type": "function_call_output", "call_id": c.call_id, "output": c.name} for c in calls_of(first)
    ]

    second = await client.responses.create(
        model="gpt-5-mini", input=replay, tools=[WEATHER, CLOCK], store=False
    )
    assert [item.type for item in second.output] == ["reasoning", "message"]
    assert second.output_text == "Tool results: get_weather; get_time"

    with pytest.raises(openai.BadRequestError) as caught:  # the reasoning item without the call it made
        await client.responses.create(model="gpt-5-mini", input=[*ask, replay[1]], store=False)
    assert "was provided without its required following item" in caught.value.message


@pytest.mark.asyncio
async def test_json_formats_answer_valid_json(client: openai.AsyncOpenAI, http: httpx.AsyncClient) -> None:
    as_object = await client.responses.create(
        model="gpt-4.1", input="Reply in json please", text={"format": {"type": "json_object"}}
    )
    assert json.loads(as_object.output_text) == {"answer": "Echo: Reply in json please"}

    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temp": {"type": "number"}, "sunny": {"type": "boolean"}},
        "required": ["city", "temp", "sunny"],
        "additionalProperties": False,
    }
    body = {
        "model": "gpt-4.1",
        "input": "weather",
        "text": {"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}},
    }
    raw = (await http.post(RESPONSES, json=body)).json()
    validate(raw, "Response")
    assert raw["text"]["format"] == {
        "type": "json_schema",
        "name": "weather",
        "schema": schema,
        "strict": True,
    }
    assert json.loads(raw["output"][0]["content"][0]["text"]) == {"city": "Oslo", "temp": 1, "sunny": True}

    events = await stream_events(http, body)
    streamed = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert json.loads(streamed) == {"city": "Oslo", "temp": 1, "sunny": True}
    assert sum(e["type"] == "response.output_text.delta" for e in events) > 1

    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="gpt-4.1", input="hello", text={"format": {"type": "json_object"}}
        )
    assert "must contain the word 'json'" in caught.value.message


@pytest.mark.asyncio
async def test_max_output_tokens_makes_an_incomplete_response(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    cut = await http.post(RESPONSES, json={"model": "gpt-4.1", "input": "words=40", "max_output_tokens": 16})
    body = cut.json()
    validate(body, "Response")
    assert (body["status"], body["incomplete_details"], body["completed_at"]) == (
        "incomplete",
        {"reason": "max_output_tokens"},
        None,
    )
    assert body["output"][0]["status"] == "incomplete"
    assert body["usage"]["output_tokens"] == 16
    assert body["max_output_tokens"] == 16

    events = await stream_events(http, {"model": "gpt-4.1", "input": "words=40", "max_output_tokens": 16})
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-2]["item"]["status"] == "incomplete"

    fits = await client.responses.create(model="gpt-4.1", input="words=16", max_output_tokens=16)
    assert fits.status == "completed"


# --- streaming ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_text_stream_has_the_exact_event_sequence(http: httpx.AsyncClient) -> None:
    events = await stream_events(http, {"model": "gpt-4.1-mini", "input": "hi there"})

    assert [e["type"] for e in events] == TEXT_EVENTS
    created, in_progress = events[0]["response"], events[1]["response"]
    assert created == in_progress
    assert (created["status"], created["output"], "usage" in created) == ("in_progress", [], False)
    item_id = events[2]["item"]["id"]
    assert events[2]["item"] == {
        "id": item_id,
        "type": "message",
        "status": "in_progress",
        "content": [],
        "role": "assistant",
    }
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert [d["delta"] for d in deltas] == ["Echo: ", "hi ", "there"]
    assert all(
        (d["item_id"], d["output_index"], d["content_index"], d["logprobs"]) == (item_id, 0, 0, [])
        for d in deltas
    )
    assert events[7]["text"] == "Echo: hi there"
    assert events[8]["part"] == {
        "type": "output_text",
        "annotations": [],
        "logprobs": [],
        "text": "Echo: hi there",
    }
    final = events[-1]["response"]
    assert final["id"] == created["id"] and final["status"] == "completed"
    assert final["output"] == [events[9]["item"]]
    assert final["usage"]["output_tokens"] == 3


@pytest.mark.asyncio
async def test_tool_call_and_reasoning_streams(http: httpx.AsyncClient) -> None:
    events = await stream_events(http, {"model": "gpt-5-mini", "input": "get_weather", "tools": [WEATHER]})

    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * 2,
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[2]["item"]["type"] == "reasoning" and events[2]["output_index"] == 0
    added = events[4]["item"]
    assert (added["type"], added["status"], added["arguments"], events[4]["output_index"]) == (
        "function_call",
        "in_progress",
        "",
        1,
    )
    fragments = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    done = events[7]
    assert done["arguments"] == "".join(fragments) == '{"city":"Oslo","days":1}'
    assert (done["name"], done["item_id"]) == ("get_weather", added["id"])
    assert events[8]["item"] == {**added, "status": "completed", "arguments": done["arguments"]}
    assert [i["type"] for i in events[-1]["response"]["output"]] == ["reasoning", "function_call"]


@pytest.mark.asyncio
async def test_sdk_stream_helper_assembles_the_final_response(client: openai.AsyncOpenAI) -> None:
    async with client.responses.stream(model="gpt-4.1", input="stream words=5") as stream:
        deltas = [event.delta async for event in stream if event.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == final.output_text == "lorem ipsum dolor sit amet"
    assert final.status == "completed"

    async with client.responses.stream(
        model="o4-mini", input="use get_weather and get_time", tools=[WEATHER, CLOCK]
    ) as stream:
        final = await stream.get_final_response()
    assert [c.name for c in calls_of(final)] == ["get_weather", "get_time"]
    assert json.loads(calls_of(final)[1].arguments) == {"tz": "example"}

    raw = await client.responses.create(model="gpt-4.1", input="hi", stream=True)
    types = [event.type async for event in raw]
    assert types[0] == "response.created" and types[-1] == "response.completed"


# --- request checks --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_previous_response_id_and_other_state_are_refused(http: httpx.AsyncClient) -> None:
    refused = await http.post(
        RESPONSES, json={"model": "gpt-4.1", "input": "again", "previous_response_id": "resp_x"}
    )
    assert refused.status_code == 400
    assert refused.json() == {
        "error": {
            "message": "Previous response with id 'resp_x' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
    }
    validate(refused.json(), "ErrorResponse")

    conversation = await http.post(
        RESPONSES, json={"model": "gpt-4.1", "input": "x", "conversation": "conv_1"}
    )
    assert conversation.status_code == 404 and conversation.json()["error"]["param"] == "conversation"
    reference = await http.post(
        RESPONSES, json={"model": "gpt-4.1", "input": [{"type": "item_reference", "id": "msg_1"}]}
    )
    assert reference.status_code == 404
    background = await http.post(RESPONSES, json={"model": "gpt-4.1", "input": "x", "background": True})
    assert background.status_code == 400 and background.json()["error"]["param"] == "background"
    quiet = await http.post(RESPONSES, json={"model": "gpt-4.1", "input": "x", "background": False})
    assert quiet.status_code == 200


@pytest.mark.asyncio
async def test_invalid_requests_name_the_param(http: httpx.AsyncClient) -> None:
    loose = {"type": "object", "properties": {"a": {"type": "string"}}}
    cases: list[tuple[dict[str, Any], str | None, str | None]] = [
        ({"input": "hi"}, "model", "missing_required_parameter"),
        ({"model": 5, "input": "hi"}, "model", "invalid_type"),
        ({"model": "gpt-4.1"}, "input", "missing_required_parameter"),
        ({"model": "gpt-4.1", "input": []}, "input", "empty_array"),
        ({"model": "gpt-4.1", "input": [{"type": "bogus"}]}, "input[0].type", "invalid_value"),
        (
            {"model": "gpt-4.1", "input": [{"role": "robot", "content": "x"}]},
            "input[0].role",
            "invalid_value",
        ),
        ({"model": "gpt-4.1", "input": [{"content": "x"}]}, "input[0].role", "missing_required_parameter"),
        (
            {
                "model": "gpt-4.1",
                "input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}],
            },
            "input[0].content[0].type",
            "invalid_value",
        ),
        (
            {"model": "gpt-4.1", "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "input[0].content[0].text",
            "missing_required_parameter",
        ),
        (
            {"model": "gpt-4.1", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
            "missing_required_parameter",
        ),
        (
            {
                "model": "gpt-4.1",
                "input": [{"type": "function_call_output", "call_id": "call_1", "output": "x"}],
            },
            "input",
            None,
        ),
        ({"model": "gpt-4.1", "input": "x", "tools": [{"type": "web_search"}]}, "tools", None),
        (
            {"model": "gpt-4.1", "input": "x", "tools": [{"type": "function"}]},
            "tools[0].name",
            "missing_required_parameter",
        ),
        (
            {
                "model": "gpt-4.1",
                "input": "x",
                "tools": [{"type": "function", "name": "f", "parameters": loose, "strict": True}],
            },
            "tools[0].parameters",
            "invalid_function_parameters",
        ),
        ({"model": "gpt-4.1", "input": "x", "tool_choice": "sometimes"}, "tool_choice", "invalid_value"),
        (
            {
                "model": "gpt-4.1",
                "input": "x",
                "tools": [WEATHER],
                "tool_choice": {"type": "function", "name": "g"},
            },
            "tool_choice",
            None,
        ),
        (
            {"model": "gpt-4.1", "input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}},
            "text.format.name",
            "missing_required_parameter",
        ),
        (
            {"model": "gpt-4.1", "input": "x", "max_output_tokens": 5},
            "max_output_tokens",
            "integer_below_min_value",
        ),
        ({"model": "gpt-4.1", "input": "x", "service_tier": "turbo"}, "service_tier", "invalid_value"),
    ]
    for body, param, code in cases:
        response = await http.post(RESPONSES, json=body)
        assert response.status_code == 400, body
        error = response.json()["error"]
        validate(response.json(), "ErrorResponse")
        assert error["type"] == "invalid_request_error"
        assert (error["param"], error["code"]) == (param, code), (body, error)

    hosted = await http.post(
        RESPONSES, json={"model": "gpt-4.1", "input": "x", "tools": [{"type": "web_search"}]}
    )
    assert hosted.json()["error"]["message"] == "Hosted tool 'web_search' is not supported with gpt-4.1."
    not_json = await http.post(RESPONSES, content=b"{oops")
    assert not_json.status_code == 400 and not_json.json()["error"]["param"] is None


@pytest.mark.asyncio
async def test_required_key_and_request_log(mock: MockServer, http: httpx.AsyncClient) -> None:
    mock.state.set_required_key("openai", "sk-right-key-1234")
    body = {"model": "gpt-4.1", "input": "logged"}
    missing = await http.post(RESPONSES, json=body)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    right = await http.post(RESPONSES, json=body, headers={"Authorization": "Bearer sk-right-key-1234"})
    assert right.status_code == 200

    log = (await http.get("/__mock__/requests", params={"provider": "openai"})).json()["requests"]
    assert [(r["path"], r["body"]) for r in log] == [(RESPONSES, body), (RESPONSES, body)]
    assert log[-1]["headers"]["authorization"] == "Bearer sk-right-key-1234"


# --- faults ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_status_drop_and_malformed_faults(
    mock: MockServer, client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    faults = mock.state.faults
    faults.add("openai", "gpt-4.1", {"kind": "status", "status": 429, "retry_after": 1})
    with pytest.raises(openai.RateLimitError) as caught:
        await client.responses.create(model="gpt-4.1", input="hi")
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after-ms"] == "1000"

    faults.add("openai", "*", {"kind": "drop"})
    with pytest.raises(openai.APIConnectionError):
        await client.responses.create(model="gpt-4.1", input="hi")

    faults.add("openai", "*", {"kind": "malformed"})
    malformed = await http.post(RESPONSES, json={"model": "gpt-4.1", "input": "hi"})
    assert malformed.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        malformed.json()

    faults.add("openai", "*", {"kind": "cut"})  # stream-only: kept for a non-stream request
    assert (await client.responses.create(model="gpt-4.1", input="hi")).status == "completed"
    assert [p.fault.kind for p in faults.pending()] == ["cut"]


@pytest.mark.asyncio
async def test_cut_stream_ends_without_a_terminal_event(mock: MockServer, client: openai.AsyncOpenAI) -> None:
    mock.state.faults.add("openai", "*", {"kind": "cut", "after_chunks": 6}, times=2)

    stream = await client.responses.create(model="gpt-4.1", input="words=10", stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError):
        async for event in stream:
            received.append(event.type)
    assert received == TEXT_EVENTS[:6]

    with pytest.raises(openai.APIConnectionError):
        async with client.responses.stream(model="gpt-4.1", input="words=10") as helper:
            await helper.get_final_response()


@pytest.mark.asyncio
async def test_stream_error_sends_error_then_failed(
    mock: MockServer, client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    mock.state.faults.add("openai", "*", {"kind": "stream_error", "after_chunks": 5}, times=2)

    events = await stream_events(http, {"model": "gpt-4.1", "input": "words=10"})
    assert [e["type"] for e in events] == [*TEXT_EVENTS[:5], "error", "response.failed"]
    assert events[5] == {
        "type": "error",
        "sequence_number": 5,
        "code": "server_error",
        "message": "The server had an error while processing your request.",
        "param": None,
    }
    failed = events[6]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "code": "server_error",
        "message": "The server had an error while processing your request.",
    }

    async with client.responses.stream(model="gpt-4.1", input="words=10") as stream:
        types = [event.type async for event in stream]
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            await stream.get_final_response()
    assert types[-2:] == ["error", "response.failed"]


@pytest.mark.asyncio
async def test_stall_ttft_and_pacing_delay_the_content(mock: MockServer, client: openai.AsyncOpenAI) -> None:
    async def gap_before_content() -> float:
        stream = await client.responses.create(model="gpt-4.1", input="hi", stream=True)
        stamps = [(time.monotonic(), event.type) async for event in stream]
        content_at = next(t for t, kind in stamps if kind == "response.output_text.delta")
        return content_at - stamps[0][0]

    mock.state.faults.add("openai", "*", {"kind": "stall", "delay": 0.3})
    assert await gap_before_content() >= 0.28
    mock.state.set_behaviour("openai", "gpt-4.1", ttft_ms=300)
    assert await gap_before_content() >= 0.28
    started = time.monotonic()
    await client.responses.create(model="gpt-4.1", input="hi")
    assert time.monotonic() - started >= 0.28
    mock.state.clear_behaviours()

    mock.state.set_behaviour("openai", "*", tokens_per_s=50)
    started = time.monotonic()
    stream = await client.responses.create(model="gpt-4.1", input="words=11", stream=True)
    pieces = [e async for e in stream if e.type == "response.output_text.delta"]
    assert len(pieces) == 11
    assert time.monotonic() - started >= 0.19  # 10 gaps of 20 ms
