"""Responses ⇄ Chat Completions translation, and the stored-response bounds."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
import pytest

from router.clock import FakeClock
from router.errors import InvalidRequest, StreamInterrupted
from router.responses.answer import WireResponse, from_completion, shell, to_completion
from router.responses.native import from_chat_body, passthrough_body
from router.responses.request import ResponsesRequest, check, input_items, to_chat_body
from router.responses.stream import ChatToResponses, ResponsesToChat, carries_output
from router.store import MemoryResponseStore, StoredResponse
from router.types import ChatChunk, ChatCompletion
from tests.openapi import validate


def _request(**body: Any) -> ResponsesRequest:
    body.setdefault("model", "m")
    request = msgspec.convert(body, ResponsesRequest)
    request.raw = body
    return request


def _chat(**body: Any) -> dict[str, Any]:
    request = _request(**body)
    check(request)
    return to_chat_body(request, input_items(request))


def test_string_input_and_instructions() -> None:
    body = _chat(input="hi", instructions="Be brief", max_output_tokens=50, temperature=0.2)
    assert body["messages"] == [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "hi"}]
    assert body["max_completion_tokens"] == 50
    assert body["temperature"] == 0.2


def test_calls_merge_into_one_assistant_turn_and_outputs_become_tool_messages() -> None:
    body = _chat(
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "two cities"}]},
            {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
             "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "xyz"},
            {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "w", "arguments": "{}",
             "status": "completed"},
            {"type": "function_call", "id": "fc_2", "call_id": "c2", "name": "w", "arguments": "{\"a\":1}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sun"},
            {"type": "function_call_output", "call_id": "c2",
             "output": [{"type": "input_text", "text": "rain"}]},
        ]
    )  # fmt: skip
    user, assistant, first, second = body["messages"]
    assert user == {"role": "user", "content": [{"type": "text", "text": "two cities"}]}
    assert assistant["content"] == "Checking."
    assert [c["id"] for c in assistant["tool_calls"]] == ["c1", "c2"]
    assert first == {"role": "tool", "tool_call_id": "c1", "content": "sun"}
    assert second["content"] == "rain"


def test_parts_images_and_files_in_both_spellings() -> None:
    body = _chat(
        input=[
            {"role": "user", "content": [
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "original"},
                {"type": "input_file", "file_data": "data:application/pdf;base64,AAAA", "file_name": "a.pdf"},
                {"type": "input_file", "file_data": "data:application/pdf;base64,AAAA", "filename": "b.pdf"},
            ]},
        ]
    )  # fmt: skip
    image, file_a, file_b = body["messages"][0]["content"]
    assert image == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"},
    }
    assert file_a["file"]["filename"] == "a.pdf"
    assert file_b["file"]["filename"] == "b.pdf"


def test_tools_choice_and_formats() -> None:
    tool = {
        "type": "function",
        "name": "f",
        "parameters": {"$schema": "x", "type": "object"},
        "strict": False,
    }
    body = _chat(
        input="x",
        tools=[tool],
        tool_choice={"type": "function", "name": "f"},
        text={"format": {"type": "json_schema", "name": "a", "schema": {"type": "object"}, "strict": True},
              "verbosity": "low"},
        reasoning={"effort": "low", "summary": "auto"},
        stream=True,
    )  # fmt: skip
    assert body["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": tool["parameters"], "strict": False}}
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "a", "schema": {"type": "object"}, "strict": True},
    }
    assert body["verbosity"] == "low"
    assert body["reasoning_effort"] == "low"
    assert body["stream_options"] == {"include_usage": True}
    assert "response_format" not in _chat(input="x", text={})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "background": True}, "background"),
        ({"input": "x", "prompt": {"id": "p"}}, "prompt"),
        ({"input": "x", "tools": [{"type": "file_search"}]}, "tools[0].type"),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x"}]}]},
         "input[0].content[0].file_url"),
        ({"input": "x", "tool_choice": "sometimes"}, "tool_choice"),
        ({}, "input"),
    ],
)  # fmt: skip
def test_refusals_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        _chat(**body)
    assert caught.value.param == param


def _completion(**message: Any) -> ChatCompletion:
    return msgspec.convert(
        {
            "id": "c",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        },
        ChatCompletion,
    )


def test_completion_to_response_and_back() -> None:
    request = _request(input="x", tools=[{"type": "function", "name": "f"}])
    calls = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    response = from_completion(
        _completion(content="Hi", tool_calls=calls), shell(request, "resp_1", 1, "m"), 2
    )
    validate(response, "Response")
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]
    assert response["output"][1]["call_id"] == "call_1"
    assert response["usage"]["total_tokens"] == 7

    back = to_completion(msgspec.convert(response, WireResponse))
    assert back.choices[0].message.content == "Hi"
    assert back.choices[0].finish_reason == "length"
    assert back.choices[0].message.tool_calls[0].id == "call_1"  # type: ignore[index]


def _chunk(delta: dict[str, Any], finish: str | None = None) -> ChatChunk:
    return msgspec.convert(
        {
            "id": "c",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        },
        ChatChunk,
    )


def test_chat_stream_to_events_text_then_two_calls() -> None:
    writer = ChatToResponses(shell(_request(input="x"), "resp_1", 1, "m"))
    events = writer.start()
    events += writer.feed(_chunk({"role": "assistant", "content": "Hel"}))
    events += writer.feed(_chunk({"content": "lo"}))
    call = {"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"a"'}}
    events += writer.feed(_chunk({"tool_calls": [call]}))
    events += writer.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}))
    second = {"index": 1, "id": "call_b", "function": {"name": "g", "arguments": "{}"}}
    events += writer.feed(_chunk({"tool_calls": [second]}, "tool_calls"))
    events += writer.finish(2)
    for i, event in enumerate(events):
        validate({**event, "sequence_number": i}, "ResponseStreamEvent")
    kinds = [e["type"] for e in events]
    assert kinds.count("response.output_item.added") == 3
    assert kinds.count("response.output_item.done") == 3
    assert kinds[-1] == "response.completed"
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["message", "function_call", "function_call"]
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["output"][1]["arguments"] == '{"a":1}'
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [0, 1, 2]
    assert carries_output(events[4]) and not carries_output(events[2])


def _data(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def test_responses_events_to_chat_chunks() -> None:
    reader = ResponsesToChat("openai", 5)
    base = {"id": "resp_9", "object": "response", "model": "m", "created_at": 9, "output": []}
    chunks = reader.feed(_data({"type": "response.created", "response": base}))
    chunks += reader.feed(_data({"type": "response.output_text.delta", "delta": "Hi"}))
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": ""}
    chunks += reader.feed(_data({"type": "response.output_item.added", "output_index": 1, "item": item}))
    chunks += reader.feed(
        _data({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": "{}"})
    )
    usage = {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}
    done = {**base, "status": "completed", "usage": usage}
    chunks += reader.feed(_data({"type": "response.completed", "response": done}))
    assert reader.done
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == "Hi"
    assert chunks[1].choices[0].delta.tool_calls[0].id == "call_1"  # type: ignore[index]
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage.completion_tokens == 3  # type: ignore[union-attr]
    assert {c.id for c in chunks} == {"chatcmpl-9"}
    with pytest.raises(StreamInterrupted):
        ResponsesToChat("openai", 5).feed(
            _data({"type": "response.failed", "response": {**base, "error": {"message": "x"}}})
        )


def test_chat_body_for_a_responses_only_model() -> None:
    chat = {
        "model": "codex",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user",
             "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "u"}}]},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ],
        "max_tokens": 5,
        "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {}}},
    }  # fmt: skip
    body = from_chat_body(chat, "gpt-5.1-codex", stream=True)
    assert body["max_output_tokens"] == 16
    assert "stream_options" not in body and body["store"] is False and body["stream"] is True
    assert [i["type"] for i in body["input"]] == [
        "message",
        "message",
        "function_call",
        "function_call_output",
    ]
    assert body["input"][1]["content"][1] == {"type": "input_image", "image_url": "u", "detail": "auto"}
    assert body["tools"] == [
        {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False}
    ]
    assert body["tool_choice"] == {"type": "function", "name": "f"}
    assert body["text"] == {"format": {"type": "json_schema", "name": "a", "schema": {}}}
    with pytest.raises(InvalidRequest):
        from_chat_body({**chat, "n": 2}, "x", stream=False)


def test_passthrough_keeps_replayable_reasoning_only() -> None:
    items = [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "e"},
        {"role": "user", "content": "x"},
    ]
    raw = {"model": "a", "input": "x", "previous_response_id": "resp_1", "store": True, "models": ["b"]}
    body = passthrough_body(raw, items, "up", reasoning=True)
    assert [i.get("id") for i in body["input"]] == ["rs_2", None]
    assert body["store"] is False and body["model"] == "up"
    assert "previous_response_id" not in body and "models" not in body
    assert body["include"] == ["reasoning.encrypted_content"]


def test_memory_store_is_bounded_by_count_and_age() -> None:
    clock = FakeClock()
    store = MemoryResponseStore(clock, max_items=2, ttl_s=60)

    async def scenario() -> None:
        for name in ("a", "b", "c"):
            await store.put(name, StoredResponse(response={"id": name}, items=[]))
        assert await store.get("a") is None  # evicted: over the count
        assert (await store.get("b")) is not None
        clock.advance(61)
        assert await store.get("c") is None  # expired
        await store.put("d", StoredResponse(response={"id": "d"}, items=[]))
        assert len(store) == 1  # expired entries leave as new ones arrive

    asyncio.run(scenario())
