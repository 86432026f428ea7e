"""Golden translations between Chat Completions and Gemini generateContent, both directions."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from router.catalog import Provider, parse_catalog
from router.errors import InvalidRequest, RouterError, StreamInterrupted, UpstreamStatusError
from router.providers._gemini_request import SKIP_SIGNATURE, Signatures, build_body
from router.providers._schema import sanitize_schema
from router.providers.base import UpstreamCall
from router.providers.gemini import GeminiApi, StreamTranslator, parse_response
from router.types import ChatRequest

CATALOG = parse_catalog(
    """
providers:
  google: {kind: gemini, base_url: "https://generativelanguage.googleapis.com/v1beta", api_key_env: K}
models:
  g3: {provider: google, upstream: gemini-3-flash-preview, context_window: 1048576, max_output: 65536,
       quality: 82, price: {input: 0.5, output: 3}, speed: {ttft_ms: 500, tokens_per_s: 200}}
  g25: {provider: google, upstream: gemini-2.5-flash, context_window: 1048576, max_output: 65536,
       quality: 74, price: {input: 0.3, output: 2.5}, speed: {ttft_ms: 400, tokens_per_s: 200}}
""",
    {"K": "AIzaSecretKey0123456789"},
)


def map_error(status: int, body: str | bytes, provider: Provider) -> RouterError:
    """The Gemini API route's reading of an error answer."""
    return GeminiApi(provider).map_error(status, body.encode() if isinstance(body, str) else body, {})


def call(body: dict[str, Any], model: str = "g3") -> UpstreamCall:
    request = msgspec.convert({"model": model, **body}, ChatRequest)
    request.raw = {"model": model, **body}
    target = CATALOG.models[model]
    return UpstreamCall(
        request=request, model=target, provider=CATALOG.provider_of(target), request_id="r", created=7
    )


def translate(
    body: dict[str, Any], signatures: Signatures | None = None, model: str = "g3"
) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(build_body(call(body, model), signatures or Signatures()))
    return result


WEATHER = {
    "type": "function",
    "function": {
        "name": "w",
        "description": "weather",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": False,
            "title": "Args",
            "properties": {
                "city": {"type": "string", "default": "Oslo"},
                "unit": {"type": ["string", "null"], "enum": ["c", "f", None]},
                "where": {"$ref": "#/$defs/Place"},
            },
            "required": ["city"],
            "$defs": {"Place": {"type": "object", "properties": {"lat": {"type": "number"}}}},
        },
    },
}


def test_tool_round_trip_request_golden_with_signature() -> None:
    signatures = Signatures()
    signatures.remember("call_a", "SIG-A")
    sent = translate(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "w", "arguments": '{"city":"Oslo"}'},
                        },
                        {
                            "id": "call_unknown",
                            "type": "function",
                            "function": {"name": "w", "arguments": "{}"},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_a", "content": '{"temp_c": 4}'},
                {"role": "tool", "tool_call_id": "call_unknown", "content": "sunny"},
            ],
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "function": {"name": "w"}},
            "max_completion_tokens": 100,
            "stop": ["END"],
            "temperature": 1.5,
            "seed": 4,
        },
        signatures,
    )
    assert sent == {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "w", "args": {"city": "Oslo"}}, "thoughtSignature": "SIG-A"},
                    {"functionCall": {"name": "w", "args": {}}, "thoughtSignature": SKIP_SIGNATURE},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "w", "response": {"temp_c": 4}}},
                    {"functionResponse": {"name": "w", "response": {"result": "sunny"}}},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "w",
                        "description": "weather",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "city": {"type": "string"},
                                "unit": {"type": "string", "nullable": True, "enum": ["c", "f", None]},
                                "where": {"type": "object", "properties": {"lat": {"type": "number"}}},
                            },
                            "required": ["city"],
                        },
                    }
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["w"]}},
        "generationConfig": {"temperature": 1.5, "seed": 4, "maxOutputTokens": 100, "stopSequences": ["END"]},
    }


def test_signatures_are_only_sent_to_gemini_3() -> None:
    messages = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "w", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c", "content": "ok"},
    ]
    sent = translate({"messages": messages}, model="g25")
    assert "thoughtSignature" not in sent["contents"][1]["parts"][0]


def test_json_schema_response_format_is_sanitised() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"a": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
    }
    sent = translate(
        {
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
        }
    )
    assert sent["generationConfig"]["responseMimeType"] == "application/json"
    assert sent["generationConfig"]["responseSchema"] == {
        "type": "object",
        "properties": {"a": {"type": "integer", "nullable": True}},
    }


def test_sanitiser_drops_every_keyword_gemini_refuses() -> None:
    out = sanitize_schema(WEATHER["function"]["parameters"])  # type: ignore[index]
    text = json.dumps(out)
    for word in ("$ref", "$schema", "additionalProperties", "title", "default", "$defs"):
        assert word not in text


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
    ],
)
def test_unsupported_input_is_refused_by_name(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        translate({"messages": [{"role": "user", "content": "hi"}], **extra})
    assert info.value.param == param


def test_response_golden_function_call_remembers_signature() -> None:
    signatures = Signatures()
    body = json.dumps(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "thinking...", "thought": True},
                            {"text": "Checking."},
                            {
                                "functionCall": {"name": "w", "args": {"city": "Oslo"}},
                                "thoughtSignature": "SIG",
                            },
                        ],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 100,
                "candidatesTokenCount": 5,
                "thoughtsTokenCount": 7,
                "cachedContentTokenCount": 60,
                "totalTokenCount": 112,
            },
            "modelVersion": "gemini-3-flash-preview",
            "responseId": "r1",
        }
    ).encode()
    completion = parse_response(body, "google", 7, signatures)
    out = msgspec.to_builtins(completion)
    call_id = out["choices"][0]["message"]["tool_calls"][0]["id"]
    assert signatures.recall(call_id) == "SIG"
    assert out == {
        "id": "chatcmpl-r1",
        "created": 7,
        "model": "gemini-3-flash-preview",
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
                    "reasoning_content": "thinking...",
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": "w", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 12,
            "total_tokens": 112,
            "prompt_tokens_details": {"cached_tokens": 60},
            "completion_tokens_details": {"reasoning_tokens": 7},
        },
    }


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("MAX_TOKENS", "length"),
        ("STOP", "stop"),
    ],
)
def test_finish_reasons(reason: str, finish: str) -> None:
    body = json.dumps(
        {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    ).encode()
    assert parse_response(body, "g", 7, Signatures()).choices[0].finish_reason == finish


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\r\n\r\n"


STREAM = b"".join(
    [
        event(
            {
                "candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
                "usageMetadata": {"promptTokenCount": 9},
                "modelVersion": "gemini-2.5-flash",
            }
        ),
        event(
            {
                "candidates": [
                    {
                        "content": {
                            "role": "model",
                            "parts": [
                                {"text": "lo"},
                                {"functionCall": {"name": "w", "args": {"city": "Oslo"}}},
                            ],
                        },
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12},
            }
        ),
    ]
)


def test_stream_golden_with_crlf_framing_split_anywhere() -> None:
    for step in (len(STREAM), 1, 5):
        translator = StreamTranslator("google", 7, "gemini-2.5-flash", Signatures())
        chunks = [
            msgspec.to_builtins(c)
            for i in range(0, len(STREAM), step)
            for c in translator.feed(STREAM[i : i + step])
        ]
        chunks.append(msgspec.to_builtins(translator.finish()))
        deltas = [c["choices"][0]["delta"] if c["choices"] else None for c in chunks]
        call_id = deltas[3]["tool_calls"][0]["id"]
        assert deltas == [
            {"role": "assistant", "content": ""},
            {"content": "Hel"},
            {"content": "lo"},
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"city":"Oslo"}'},
                    }
                ]
            },
            {},
            None,
        ]
        assert chunks[4]["choices"][0]["finish_reason"] == "tool_calls"
        assert chunks[5]["usage"]["completion_tokens"] == 3


def test_stream_error_event_and_cut() -> None:
    translator = StreamTranslator("google", 7, "m", Signatures())
    error = b'data: {"error": {"code": 500, "message": "Internal", "status": "INTERNAL"}}\r\n\r\n'
    chunks = translator.feed(STREAM.split(b"\r\n\r\n")[0] + b"\r\n\r\n" + error)
    assert chunks[1].choices[0].delta.content == "Hel"
    assert isinstance(translator.error, StreamInterrupted)
    cut = StreamTranslator("google", 7, "m", Signatures())
    cut.feed(STREAM.split(b"\r\n\r\n")[0] + b"\r\n\r\n")
    with pytest.raises(StreamInterrupted):
        cut.finish()


def test_errors_map_with_retry_delay_and_no_key() -> None:
    provider = CATALOG.providers["google"]
    limited = map_error(
        429,
        json.dumps(
            {
                "error": {
                    "code": 429,
                    "message": "quota",
                    "status": "RESOURCE_EXHAUSTED",
                    "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
                }
            }
        ).encode(),
        provider,
    )
    assert isinstance(limited, UpstreamStatusError)
    assert (limited.status, limited.retry_after, limited.code, limited.may_fall_back) == (
        429,
        37.0,
        "RESOURCE_EXHAUSTED",
        True,
    )
    bad_key = map_error(
        400,
        json.dumps(
            {
                "error": {
                    "code": 400,
                    "message": "API key not valid AIzaSecretKey0123456789",
                    "status": "INVALID_ARGUMENT",
                    "details": [{"reason": "API_KEY_INVALID"}],
                }
            }
        ).encode(),
        provider,
    )
    assert bad_key.status == 502 and "AIzaSecret" not in bad_key.message
    invalid = map_error(
        400, b'[{"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}]', provider
    )
    assert (invalid.status, invalid.may_fall_back) == (400, False)
    unavailable = map_error(
        503, b'{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}', provider
    )
    assert (unavailable.status, unavailable.counts_against_breaker) == (503, True)
