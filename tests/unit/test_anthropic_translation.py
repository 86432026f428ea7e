"""Golden translations between Chat Completions and Anthropic Messages, both directions."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from router.catalog import Provider, parse_catalog
from router.errors import InvalidRequest, RouterError, StreamInterrupted, UpstreamStatusError
from router.providers._anthropic_request import build_body
from router.providers.anthropic import MessagesApi, StreamTranslator, parse_message
from router.providers.base import UpstreamCall
from router.types import ChatRequest

CATALOG = parse_catalog(
    """
providers:
  anthropic: {kind: anthropic, base_url: "https://api.anthropic.com", api_key_env: K}
models:
  haiku: {provider: anthropic, upstream: claude-haiku-4-5, context_window: 200000, max_output: 64000,
          quality: 75, price: {input: 1, output: 5}, speed: {ttft_ms: 600, tokens_per_s: 120}}
""",
    {"K": "sk-ant-secret-key-123"},
)


def map_error(status: int, body: bytes, headers: dict[str, str], provider: Provider) -> RouterError:
    """The Messages API route's reading of an error answer."""
    return MessagesApi(provider).map_error(status, body, headers)


def call(body: dict[str, Any]) -> UpstreamCall:
    request = msgspec.convert({"model": "haiku", **body}, ChatRequest)
    request.raw = {"model": "haiku", **body}
    model = CATALOG.models["haiku"]
    return UpstreamCall(
        request=request, model=model, provider=CATALOG.provider_of(model), request_id="r", created=7
    )


def translate(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(build_body(call(body), stream=False))
    return result


def test_tool_round_trip_request_golden() -> None:
    sent = translate(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
                {"role": "user", "content": "Weather in Oslo and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "w", "arguments": '{"city":"Oslo"}'},
                        },
                        {"id": "call_b", "type": "function", "function": {"name": "w", "arguments": ""}},
                    ],
                },
                {"role": "tool", "tool_call_id": "call_a", "content": "4C"},
                {"role": "tool", "tool_call_id": "call_b", "content": "17C"},
                {"role": "user", "content": "Thanks"},
            ],
            "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "parallel_tool_calls": False,
            "stop": "END",
            "temperature": 0.5,
            "user": "u-1",
            "seed": 3,
        }
    )
    assert sent == {
        "model": "claude-haiku-4-5",
        "max_tokens": 64000,
        "system": "Be brief.\n\nUse tools.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo and Rome?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "call_a", "name": "w", "input": {"city": "Oslo"}},
                    {"type": "tool_use", "id": "call_b", "name": "w", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_a", "content": "4C"},
                    {"type": "tool_result", "tool_use_id": "call_b", "content": "17C"},
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
        "temperature": 0.5,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
        "tools": [{"name": "w", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    }


def test_images_as_data_url_and_https() -> None:
    sent = translate(
        {
            "max_tokens": 10,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://example.test/cat.jpg", "detail": "high"},
                        },
                    ],
                }
            ],
        }
    )
    assert sent["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.jpg"}},
    ]
    assert sent["max_tokens"] == 10


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"temperature": 1.5}, "temperature"),
        ({"logit_bias": {"1": 2}}, "logit_bias"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
    ],
)
def test_parameters_without_counterpart_are_refused_by_name(extra: dict[str, Any], param: str) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], **extra}
    with pytest.raises(InvalidRequest) as info:
        translate(body)
    assert info.value.param == param


def test_json_object_is_emulated_and_json_schema_uses_output_config() -> None:
    sent = translate(
        {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}
    )
    assert "JSON object" in sent["system"]
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    sent = translate(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        }
    )
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_response_golden_with_tool_use_and_cached_usage() -> None:
    body = json.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Oslo"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 2,
            },
        }
    ).encode()
    completion = parse_message(body, "anthropic", created=7)
    out = msgspec.to_builtins(completion)
    assert out == {
        "id": "msg_1",
        "created": 7,
        "model": "claude-haiku-4-5",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "w", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 112,
            "completion_tokens": 5,
            "total_tokens": 117,
            "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


STREAM = b"".join(
    [
        sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-haiku-4-5",
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": 9, "output_tokens": 1},
                },
            },
        ),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        sse("ping", {"type": "ping"}),
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}},
            },
        ),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            },
        ),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"city": "Os'},
            },
        ),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": 'lo"}'},
            },
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 12},
            },
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]
)


def test_stream_golden_text_then_tool_call() -> None:
    translator = StreamTranslator("anthropic", created=7)
    chunks = [msgspec.to_builtins(c) for c in translator.feed(STREAM)]
    deltas = [c["choices"][0]["delta"] if c["choices"] else None for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
        {
            "tool_calls": [
                {"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "w", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Os'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": 'lo"}'}}]},
        {},
        None,
    ]
    assert chunks[5]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[6]["usage"]["prompt_tokens"] == 9 and chunks[6]["usage"]["completion_tokens"] == 12
    assert {c["id"] for c in chunks} == {"msg_1"}
    assert translator.done


def test_stream_split_anywhere_gives_the_same_chunks() -> None:
    whole = [msgspec.to_builtins(c) for c in StreamTranslator("a", 7).feed(STREAM)]
    translator = StreamTranslator("a", 7)
    pieces = [
        msgspec.to_builtins(c) for i in range(0, len(STREAM), 7) for c in translator.feed(STREAM[i : i + 7])
    ]
    assert pieces == whole


def test_error_event_mid_stream_and_missing_stop() -> None:
    translator = StreamTranslator("anthropic", created=7)
    head = STREAM.split(b"event: content_block_stop")[0]
    error = sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    chunks = translator.feed(head + error)
    assert [c.choices[0].delta.content for c in chunks[1:2]] == ["Hi"]
    assert isinstance(translator.error, StreamInterrupted) and "Overloaded" in translator.error.message
    cut = StreamTranslator("anthropic", created=7)
    cut.feed(head)
    with pytest.raises(StreamInterrupted):
        cut.check_complete()


def test_errors_map_to_openai_statuses_without_the_key() -> None:
    provider = CATALOG.providers["anthropic"]
    overloaded = map_error(
        529,
        b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
        {"retry-after": "3"},
        provider,
    )
    assert isinstance(overloaded, UpstreamStatusError)
    assert (overloaded.status, overloaded.retry_after, overloaded.may_fall_back) == (503, 3.0, True)
    limited = map_error(
        429, b'{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}', {}, provider
    )
    assert (limited.status, limited.error_type) == (429, "rate_limit_error")
    refused = map_error(
        401,
        b'{"type":"error","error":{"type":"authentication_error","message":"bad sk-ant-secret-key-123"}}',
        {},
        provider,
    )
    assert refused.status == 502 and "sk-ant-se" not in refused.message and "K" in refused.message
    bad = map_error(
        400, b'{"type":"error","error":{"type":"invalid_request_error","message":"nope"}}', {}, provider
    )
    assert (bad.status, bad.may_fall_back, bad.counts_against_breaker) == (400, False, False)
