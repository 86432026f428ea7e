"""Chat Completions ⇄ Bedrock Converse: request bodies, answers, streams, errors (golden translations)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import msgspec
import pytest

from router.catalog import parse_catalog
from router.errors import InvalidRequest, StreamInterrupted, UpstreamBadResponse, UpstreamStatusError
from router.mock.bedrock_wire import event_frame, exception_frame
from router.providers._converse import build_body, family_of
from router.providers._eventstream import EventMessage
from router.providers.base import UpstreamCall
from router.providers.bedrock import StreamTranslator, map_error, parse_response, replayed, stream_error
from router.types import ChatRequest

CATALOG = parse_catalog(
    """
providers:
  bedrock: {kind: bedrock, region: us-east-1}
models:
  claude: {provider: bedrock, upstream: "us.anthropic.claude-haiku-4-5-20251001-v1:0",
           context_window: 200000, max_output: 64000, quality: 75, price: {input: 1, output: 5},
           speed: {ttft_ms: 600, tokens_per_s: 120}}
  nova: {provider: bedrock, upstream: "amazon.nova-pro-v1:0", context_window: 300000, max_output: 10000,
         quality: 70, price: {input: 0.8, output: 3.2}, speed: {ttft_ms: 600, tokens_per_s: 120}}
  llama: {provider: bedrock, upstream: "meta.llama3-3-70b-instruct-v1:0", context_window: 128000,
          max_output: 8192, quality: 60, price: {input: 0.72, output: 0.72},
          speed: {ttft_ms: 600, tokens_per_s: 120}}
""",
    {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"},
)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
HI: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}},
}


def call(body: dict[str, Any], model: str = "claude") -> UpstreamCall:
    request = msgspec.convert({"model": model, **body}, ChatRequest)
    request.raw = {"model": model, **body}
    found = CATALOG.models[model]
    return UpstreamCall(
        request=request, model=found, provider=CATALOG.provider_of(found), request_id="r1", created=7
    )


def translate(body: dict[str, Any], model: str = "claude") -> dict[str, Any]:
    result: dict[str, Any] = json.loads(build_body(call(body, model)).body)
    return result


def test_tools_images_and_tool_results_request_golden() -> None:
    sent = translate(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Weather here?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "tooluse_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        },
                        {
                            "id": "tooluse_b",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "tooluse_a", "content": '{"temp_c": 4}'},
                {"role": "tool", "tool_call_id": "tooluse_b", "content": "sunny"},
                {"role": "user", "content": "And tomorrow?"},
            ],
            "tools": [WEATHER],
            "tool_choice": "required",
            "max_tokens": 100,
            "temperature": 0.5,
            "stop": ["END", ""],
        }
    )
    assert sent == {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "Weather here?"},
                    {"image": {"format": "png", "source": {"bytes": PNG}}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"toolUse": {"toolUseId": "tooluse_a", "name": "get_weather", "input": {"city": "Oslo"}}},
                    {"toolUse": {"toolUseId": "tooluse_b", "name": "get_weather", "input": {}}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "tooluse_a", "content": [{"json": {"temp_c": 4}}]}},
                    {"toolResult": {"toolUseId": "tooluse_b", "content": [{"text": "sunny"}]}},
                    {"text": "And tomorrow?"},
                ],
            },
        ],
        "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "stopSequences": ["END"]},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "inputSchema": {"json": {"type": "object"}},
                        "description": "Weather",
                    }
                }
            ],
            "toolChoice": {"any": {}},
        },
        "system": [{"text": "Be brief."}],
    }


def test_cache_control_becomes_cache_points_on_claude_and_nova_only() -> None:
    marked = {"type": "text", "text": "Long rules.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    body = {"messages": [{"role": "system", "content": [marked]}, {"role": "user", "content": "hi"}]}
    for model in ("claude", "nova"):
        assert translate(body, model)["system"] == [
            {"text": "Long rules."},
            {"cachePoint": {"type": "default", "ttl": "1h"}},
        ]
    assert translate(body, "llama")["system"] == [{"text": "Long rules."}]


def test_more_than_four_cache_points_are_refused() -> None:
    marked = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
    with pytest.raises(InvalidRequest) as caught:
        translate({"messages": [{"role": "user", "content": [marked] * 5}]})
    assert caught.value.code == "too_many_cache_breakpoints"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"temperature": 1.5}, "temperature"),
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        ({"tools": [WEATHER], "tool_choice": "required"}, "tool_choice"),  # on Llama
    ],
)
def test_what_converse_cannot_express_is_refused_with_a_400(body: dict[str, Any], param: str) -> None:
    request = {"messages": [{"role": "user", "content": "hi"}], **body}
    with pytest.raises(InvalidRequest) as caught:
        translate(request, "llama" if param == "tool_choice" else "claude")
    assert caught.value.param == param and caught.value.status == 400


def test_tool_choice_none_offers_no_tool_but_a_stub_when_the_history_holds_tool_calls() -> None:
    plain = translate(
        {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER], "tool_choice": "none"}
    )
    assert "toolConfig" not in plain
    history = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "4C"},
    ]
    sent = translate({"messages": history})
    assert [t["toolSpec"]["name"] for t in sent["toolConfig"]["tools"]] == ["no_tool_offered"]


def test_json_schema_is_structured_output_on_claude_and_a_forced_tool_on_nova() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    body = {"messages": [{"role": "user", "content": "json"}], "response_format": fmt}
    claude = translate(body)
    structure = claude["outputConfig"]["textFormat"]["structure"]["jsonSchema"]
    assert json.loads(structure["schema"]) == schema and structure["name"] == "answer"
    nova = translate(body, "nova")
    assert nova["toolConfig"]["toolChoice"] == {"tool": {"name": "json_response"}}
    answer = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": "t", "name": "json_response", "input": {"a": "b"}}}],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
    }
    completion = parse_response(json.dumps(answer).encode(), call(body, "nova"), "json_response")
    assert completion.choices[0].message.content == '{"a":"b"}'
    assert completion.choices[0].finish_reason == "stop" and not completion.choices[0].message.tool_calls


def test_family_of_reads_geo_prefixes_and_arns() -> None:
    assert family_of("global.anthropic.claude-sonnet-4-5-20250929-v1:0").name == "anthropic"
    assert family_of("amazon.nova-pro-v1:0").name == "nova"
    assert family_of("mistral.mistral-large-2407-v1:0").streams_tools is False
    assert family_of("arn:aws:bedrock:us-east-1:123:application-inference-profile/abc").name == ""


# --- answers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
def test_stop_reasons(stop: str, finish: str) -> None:
    answer = {"output": {"message": {"content": [{"text": "x"}]}}, "stopReason": stop, "usage": {}}
    completion = parse_response(json.dumps(answer).encode(), call(HI), None)
    assert completion.choices[0].finish_reason == finish


def test_malformed_tool_use_is_the_models_failure() -> None:
    answer = {"output": {"message": {"content": []}}, "stopReason": "malformed_tool_use", "usage": {}}
    with pytest.raises(UpstreamBadResponse):
        parse_response(json.dumps(answer).encode(), call(HI), None)


def test_usage_counts_cache_reads_and_writes_inside_prompt_tokens() -> None:
    answer = {
        "output": {
            "message": {
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
                    {"text": "hi"},
                ]
            }
        },
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": 10,
            "outputTokens": 4,
            "totalTokens": 2014,
            "cacheReadInputTokens": 1500,
            "cacheWriteInputTokens": 500,
            "cacheDetails": [{"ttl": "1h", "inputTokens": 500}],
        },
    }
    completion = parse_response(json.dumps(answer).encode(), call(HI), None)
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (2010, 4, 2014)
    assert usage.prompt_tokens_details == {
        "cached_tokens": 1500,
        "cache_write_tokens": 500,
        "cache_creation_token_details": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 500},
    }
    assert completion.choices[0].message.reasoning_content == "hmm"


# --- streams ---------------------------------------------------------------------------------------


def stream_bytes() -> bytes:
    events = [
        ("messageStart", {"role": "assistant", "p": "ab"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me "}, "p": "abc"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "check."}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        (
            "contentBlockStart",
            {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}},
        ),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city": "Os'}}}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": 'lo"}'}}}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        ("messageStop", {"stopReason": "tool_use"}),
        (
            "metadata",
            {"usage": {"inputTokens": 12, "outputTokens": 8, "totalTokens": 20, "cacheReadInputTokens": 3}},
        ),
    ]
    return b"".join(event_frame(name, json.dumps(payload).encode()) for name, payload in events)


def summary(chunks: list[Any]) -> tuple[str, str, list[str], Any]:
    text, arguments, finishes, usage = "", "", [], None
    for chunk in chunks:
        usage = chunk.usage if not isinstance(chunk.usage, msgspec.UnsetType) else usage
        for choice in chunk.choices:
            text += choice.delta.content or "" if isinstance(choice.delta.content, str) else ""
            for part in choice.delta.tool_calls or [] if isinstance(choice.delta.tool_calls, list) else []:
                assert part.index == 0  # the ordinal among tool calls, not the block index (1)
                arguments += part.function.arguments or ""
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    return text, arguments, finishes, usage


def test_stream_translation_golden() -> None:
    translator = StreamTranslator(call(HI), None)
    chunks = translator.feed(stream_bytes())
    text, arguments, finishes, usage = summary(chunks)
    assert (text, json.loads(arguments), finishes) == ("Let me check.", {"city": "Oslo"}, ["tool_calls"])
    assert usage.prompt_tokens == 15 and usage.prompt_tokens_details["cached_tokens"] == 3
    assert translator.done and translator.error is None


def test_stream_decoding_is_the_same_across_any_chunk_splits() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    data = stream_bytes()
    whole = summary(StreamTranslator(call(HI), None).feed(data))

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=40))
    def split_anywhere(cuts: list[int]) -> None:
        translator = StreamTranslator(call(HI), None)
        bounds = [0, *sorted(cuts), len(data)]
        chunks = [c for a, b in itertools.pairwise(bounds) for c in translator.feed(data[a:b])]
        assert summary(chunks) == whole and translator.done

    split_anywhere()


def test_a_corrupt_frame_or_an_exception_frame_interrupts_the_stream() -> None:
    data = bytearray(stream_bytes())
    data[40] ^= 0xFF
    translator = StreamTranslator(call(HI), None)
    translator.feed(bytes(data))
    assert isinstance(translator.error, StreamInterrupted) and "corrupt" in translator.error.message
    translator = StreamTranslator(call(HI), None)
    translator.feed(event_frame("messageStart", b"{}") + exception_frame("throttlingException", "slow down"))
    assert (
        isinstance(translator.error, StreamInterrupted) and "throttlingException" in translator.error.message
    )
    with pytest.raises(StreamInterrupted):
        translator.check_complete()


def test_validation_exception_mid_stream_is_a_client_error() -> None:
    error = stream_error(EventMessage("exception", "validationException", b'{"message":"bad"}'), "bedrock")
    assert isinstance(error, UpstreamStatusError) and error.status == 400


def test_a_tools_answer_from_a_model_that_does_not_stream_them_is_replayed_as_chunks() -> None:
    answer = {
        "output": {
            "message": {
                "content": [
                    {"toolUse": {"toolUseId": "t9", "name": "get_weather", "input": {"city": "Oslo"}}}
                ]
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
    }
    completion = parse_response(json.dumps(answer).encode(), call(HI, "llama"), None)
    _, arguments, finishes, usage = summary(replayed(completion))
    assert (
        json.loads(arguments) == {"city": "Oslo"} and finishes == ["tool_calls"] and usage.total_tokens == 8
    )


# --- errors ----------------------------------------------------------------------------------------


def bedrock_error(status: int, name: str, message: str = "m") -> Any:
    headers = {"x-amzn-errortype": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return map_error(status, json.dumps({"message": message}).encode(), headers, CATALOG.providers["bedrock"])


def test_throttling_is_a_retryable_429() -> None:
    error = bedrock_error(429, "ThrottlingException", "Too many requests, please wait before trying again.")
    assert error.status == 429 and error.may_fall_back and error.counts_against_breaker
    assert error.code == "rate_limit_exceeded" and error.error_type == "rate_limit_error"


def test_model_not_ready_is_a_retryable_503() -> None:
    error = bedrock_error(429, "ModelNotReadyException")
    assert error.status == 503 and error.may_fall_back and error.code == "model_not_ready"


def test_validation_is_a_400_that_does_not_fall_back() -> None:
    error = bedrock_error(400, "ValidationException", "Input is too long for requested model.")
    assert error.status == 400 and not error.may_fall_back and error.code == "context_length_exceeded"


@pytest.mark.parametrize(
    "name",
    [
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
    ],
)
def test_refused_credentials_are_the_routers_not_the_clients(name: str) -> None:
    error = bedrock_error(403, name)
    assert error.status == 502 and error.code == "upstream_auth_failed" and error.may_fall_back
    assert name in error.message


def test_an_unknown_model_id_is_the_catalogs_fault() -> None:
    error = bedrock_error(404, "ResourceNotFoundException", "The provided model identifier is invalid.")
    assert error.status == 502 and error.code == "upstream_misconfigured"


def test_an_error_without_the_header_is_read_from_the_body() -> None:
    body = b'{"__type": "com.amazon.coral.service#ThrottlingException", "message": "slow"}'
    error = map_error(429, body, {}, CATALOG.providers["bedrock"])
    assert error.code == "rate_limit_exceeded"
    assert map_error(502, b"<html>bad gateway</html>", {}, CATALOG.providers["bedrock"]).status == 502
