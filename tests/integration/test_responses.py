"""The Responses API through the router, with the official OpenAI SDK as the client.

Every case runs for an OpenAI model (passed through to the simulated OpenAI Responses API), an
Anthropic model and a Gemini model, each also on Vertex AI (translated to and from each provider's
native API).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.integration.conftest import Mock, Router
from tests.openapi import validate

MODELS = [
    "gpt-5-mini",
    "claude",
    "gemini",
    "bedrock-claude",
    "bedrock-nova",
    "vertex-claude",
    "vertex-gemini",
]
PROVIDER = {
    "gpt-5-mini": "openai",
    "claude": "anthropic",
    "gemini": "gemini",
    "codex": "openai",
    "bedrock-claude": "bedrock",
    "bedrock-nova": "bedrock",
    "vertex-claude": "vertex",
    "vertex-gemini": "vertex",
}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture()
def client(router: Router, mock: Mock) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key="client-key", max_retries=0, timeout=20)


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event line, decoded data) for each SSE event of a raw Responses stream."""
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def _about_reasoning(event: dict[str, Any]) -> bool:
    return (event.get("item") or {}).get("type") == "reasoning"


def _upstream_bodies(mock: Mock, model: str) -> list[dict[str, Any]]:
    return [r["body"] for r in mock.requests(PROVIDER[model]) if isinstance(r.get("body"), dict)]


# --- answers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_create_returns_a_valid_response(client: OpenAI, model: str) -> None:
    raw = client.responses.with_raw_response.create(model=model, input="Say hello words=5")
    response = raw.parse()
    assert response.status == "completed"
    assert response.output_text == "lorem ipsum dolor sit amet"
    assert response.id.startswith("resp_")
    assert response.usage is not None and response.usage.output_tokens == 5
    assert raw.headers["x-router-model"] == model
    validate(json.loads(raw.http_response.text), "Response")


def test_openai_models_are_passed_through_natively_without_upstream_storage(
    client: OpenAI, mock: Mock
) -> None:
    client.responses.create(model="gpt-5-mini", input="hi", instructions="Be brief", max_output_tokens=64)
    (request,) = [r for r in mock.requests("openai") if r["path"].endswith("/responses")]
    body = request["body"]
    assert body["model"] == "gpt-5-mini"
    assert body["store"] is False  # the router keeps the conversation itself
    assert body["instructions"] == "Be brief"
    assert body["max_output_tokens"] == 64
    assert "previous_response_id" not in body


@pytest.mark.parametrize("model", MODELS)
def test_stream_emits_the_exact_event_sequence(router: Router, mock: Mock, model: str) -> None:
    answer = httpx.post(
        router.url + "/v1/responses",
        json={"model": model, "input": "Say hello words=3", "stream": True},
        timeout=20,
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert "[DONE]" not in answer.text
    events = _events(answer.text)
    # A reasoning model's own reasoning item (OpenAI) comes first; the message follows it.
    kinds = [kind for kind, data in events if not _about_reasoning(data)]
    assert kinds[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    for kind, data in events:
        assert data["type"] == kind
        validate(data, "ResponseStreamEvent")
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    text = "".join(d["delta"] for k, d in events if k == "response.output_text.delta")
    assert text == "lorem ipsum dolor"
    completed = events[-1][1]["response"]
    assert completed["id"] == events[0][1]["response"]["id"]
    assert completed["usage"]["output_tokens"] == 3
    validate(completed, "Response")


@pytest.mark.parametrize("model", MODELS)
def test_sdk_stream_helper_assembles_the_final_response(client: OpenAI, model: str) -> None:
    with client.responses.stream(model=model, input="Say hello words=4") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "lorem ipsum dolor sit"
    assert final.output_text == "lorem ipsum dolor sit"
    assert final.status == "completed"


# --- tools -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_tool_round_trip_with_previous_response_id(
    client: OpenAI, mock: Mock, model: str, stream: bool
) -> None:
    if stream:
        with client.responses.stream(model=model, input="Weather in Oslo?", tools=[WEATHER]) as events:  # type: ignore[list-item]
            added = [e for e in events if e.type == "response.function_call_arguments.done"]
            first = events.get_final_response()
        assert added and added[0].arguments == '{"city":"Oslo"}'
    else:
        first = client.responses.create(model=model, input="Weather in Oslo?", tools=[WEATHER])  # type: ignore[list-item]
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Oslo"}
    assert call.call_id and call.id and call.id != call.call_id
    validate(first.model_dump(mode="json", exclude_unset=True), "Response")

    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 4}'}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    # Gemini takes a function's result as an object, so its adapter wraps and re-encodes it.
    assert second.output_text.startswith("Tool results: {")
    assert json.loads(second.output_text.removeprefix("Tool results: ")) in (
        {"temp_c": 4},
        {"result": {"temp_c": 4}},
    )
    assert second.previous_response_id == first.id


@pytest.mark.parametrize("model", MODELS)
def test_tool_loop_echoing_items_back_as_n8n_does(client: OpenAI, mock: Mock, model: str) -> None:
    """n8n re-sends the whole input with the call items verbatim (id, status) and the outputs."""
    question: dict[str, Any] = {
        "role": "user",
        "content": [{"type": "input_text", "text": "Weather in Oslo?"}],
    }
    first = client.responses.create(model=model, input=[question], tools=[WEATHER])  # type: ignore[list-item]
    echoed = [
        item.model_dump(exclude_none=True)
        for item in first.output
        if item.type in ("function_call", "reasoning")
    ]
    outputs = [
        {"type": "function_call_output", "call_id": item["call_id"], "output": "sunny"}
        for item in echoed
        if item["type"] == "function_call"
    ]
    second = client.responses.create(
        model=model,
        input=[question, *echoed, *outputs],
        tools=[WEATHER],
        store=False,  # type: ignore[list-item]
    )
    assert second.output_text in ("Tool results: sunny", 'Tool results: {"result":"sunny"}')
    assert second.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)


# --- stored responses ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_previous_response_id_sends_the_earlier_turns_upstream(
    client: OpenAI, mock: Mock, model: str
) -> None:
    first = client.responses.create(model=model, input="My name is Ada", instructions="Be kind")
    second = client.responses.create(model=model, input="What is my name?", previous_response_id=first.id)
    assert second.output_text == "Echo: What is my name?"
    upstream = json.dumps(_upstream_bodies(mock, model)[-1])
    assert "My name is Ada" in upstream  # the first turn's input
    assert "Echo: My name is Ada" in upstream  # and its answer
    assert "Be kind" not in upstream  # instructions do not carry over


def test_retrieve_and_delete_a_stored_response(client: OpenAI) -> None:
    created = client.responses.create(model="claude", input="Say hello words=2")
    fetched = client.responses.retrieve(created.id)
    assert fetched.model_dump() == created.model_dump()
    items = client.responses.input_items.list(created.id)
    assert [item.type for item in items.data] == ["message"]
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_a_streamed_response_is_stored_too(client: OpenAI) -> None:
    with client.responses.stream(model="gemini", input="Say hello words=2") as stream:
        final = stream.get_final_response()
    assert client.responses.retrieve(final.id).output_text == "lorem ipsum"


def test_unknown_previous_response_is_a_400_naming_it(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="claude", input="hi", previous_response_id="resp_nope")
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"
    assert "resp_nope" in caught.value.message


# --- what the router refuses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "mcp", "server_label": "x", "server_url": "https://x"}]}, "tools[0].type"),
        ({"conversation": "conv_1"}, "conversation"),
        (
            {"input": [{"type": "message", "role": "user", "content": [{"type": "input_audio"}]}]},
            "input[0].content[0].type",
        ),
        ({"input": [{"type": "computer_call_output", "call_id": "x"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
            "input[0].content[0].file_id",
        ),
        ({"text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"temperature": 7}, "temperature"),
    ],
)
def test_unsupported_requests_get_a_400_naming_the_field(
    router: Router, extra: dict[str, Any], param: str
) -> None:
    body = {"model": "claude", "input": "hi", **extra}
    answer = httpx.post(router.url + "/v1/responses", json=body, timeout=10)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert error["message"]


def test_background_false_is_accepted(client: OpenAI) -> None:
    response = client.responses.create(model="claude", input="hi", background=False)
    assert response.status == "completed" and response.background is False


def test_missing_input_and_unknown_model(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="claude")
    assert caught.value.param == "input"
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="claud", input="hi")


# --- failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider"), [("claude", "anthropic"), ("gemini", "gemini"), ("bedrock-nova", "bedrock")]
)
def test_a_stream_cut_after_output_ends_with_response_failed(
    router: Router, mock: Mock, model: str, provider: str
) -> None:
    upstream = {
        "claude": "claude-haiku-4-5",
        "gemini": "gemini-3-flash-preview",
        "bedrock-nova": "amazon.nova-pro-v1:0",
    }[model]
    # Cut after a few events that carry text (Anthropic opens with two that do not).
    mock.fault(upstream, {"kind": "cut", "after_chunks": 6}, provider=provider)
    answer = httpx.post(
        router.url + "/v1/responses",
        json={"model": model, "input": "Say hello words=400", "stream": True},
        timeout=20,
    )
    events = _events(answer.text)
    kinds = [kind for kind, _ in events]
    assert "response.output_text.delta" in kinds
    assert kinds[-1] == "response.failed"
    assert "response.completed" not in kinds
    failed = events[-1][1]
    validate(failed, "ResponseStreamEvent")
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == "server_error"
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))


def test_sdk_stream_helper_raises_on_a_failed_stream(client: OpenAI, mock: Mock) -> None:
    mock.fault("claude-haiku-4-5", {"kind": "cut", "after_chunks": 6}, provider="anthropic")
    with client.responses.stream(model="claude", input="Say hello words=40") as stream:  # noqa: SIM117
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()


def test_a_failure_before_output_falls_back_to_the_next_model(client: OpenAI, mock: Mock) -> None:
    mock.fault("claude-haiku-4-5", {"kind": "status", "status": 500}, provider="anthropic")
    raw = client.responses.with_raw_response.create(
        model="claude", input="hi", extra_body={"models": ["gemini"]}
    )
    assert raw.headers["x-router-model"] == "gemini"
    assert raw.parse().output_text == "Echo: hi"


# --- a chat client of a Responses-only model -------------------------------------------------------


def test_chat_completions_on_a_responses_only_model(client: OpenAI, mock: Mock) -> None:
    completion = client.chat.completions.create(
        model="codex", messages=[{"role": "user", "content": "Say hello words=3"}], max_tokens=5
    )
    assert completion.choices[0].message.content == "lorem ipsum dolor"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    paths = [r["path"] for r in mock.requests("openai")]
    assert paths == ["/openai/v1/responses"]
    body = mock.requests("openai")[0]["body"]
    assert body["max_output_tokens"] == 16  # the Responses API's minimum
    assert "stream_options" not in body and "messages" not in body


def test_chat_stream_and_tools_on_a_responses_only_model(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="codex",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[
            {
                "type": "function",
                "function": {k: v for k, v in WEATHER.items() if k not in ("type", "strict")},
            }
        ],  # type: ignore[list-item, misc]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    calls = [tc for c in chunks for ch in c.choices for tc in ch.delta.tool_calls or ()]
    assert calls[0].function is not None and calls[0].function.name == "get_weather"
    arguments = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    assert json.loads(arguments) == {"city": "Oslo"}
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == ["tool_calls"]
    assert chunks[-1].usage is not None and not chunks[-1].choices
