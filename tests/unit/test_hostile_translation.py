"""Hostile input through every translator: whatever JSON a client puts in any field the router or an
adapter reads, the answer is a 400 naming a field or a valid upstream body, never another exception
(which the client would see as a 500)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.api.decode import convert, decode_chat
from router.catalog import parse_catalog
from router.errors import InvalidRequest
from router.providers import anthropic, gemini, openai
from router.providers._completions import chat_request_for, prompt_texts
from router.providers.base import UpstreamCall
from router.responses.native import from_chat_body, passthrough_body
from router.responses.request import ResponsesRequest, check, input_items, to_chat_body
from router.types import ChatRequest

CATALOG = parse_catalog(
    """
providers:
  openai: {kind: openai, base_url: "https://api.openai.com/v1", api_key_env: K}
  anthropic: {kind: anthropic, base_url: "https://api.anthropic.com", api_key_env: K}
  google: {kind: gemini, base_url: "https://generativelanguage.googleapis.com/v1beta", api_key_env: K}
models:
  gpt: {provider: openai, context_window: 400000, max_output: 128000, quality: 80,
        price: {input: 1, output: 2}, speed: {ttft_ms: 500, tokens_per_s: 100}}
  haiku: {provider: anthropic, upstream: claude-haiku-4-5, context_window: 200000, max_output: 64000,
          quality: 75, price: {input: 1, output: 5}, speed: {ttft_ms: 600, tokens_per_s: 120}}
  flash: {provider: google, upstream: gemini-3-flash-preview, context_window: 1000000, max_output: 65536,
          quality: 80, price: {input: 1, output: 3}, speed: {ttft_ms: 500, tokens_per_s: 200}}
""",
    {"K": "key-0123456789"},
)

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "when": {"$ref": "#/$defs/when"}},
    "required": ["city"],
    "$defs": {"when": {"type": "string"}},
}
CHAT_BASE: dict[str, Any] = {
    "model": "gpt",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": copy.deepcopy(SCHEMA)}}],
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": copy.deepcopy(SCHEMA)},
    },
    "stop": ["x"],
    "reasoning_effort": "low",
}
# Every place in a chat body a translator reads, as a path of keys and indexes.
CHAT_PATHS: list[tuple[Any, ...]] = [
    ("response_format",),
    ("response_format", "type"),
    ("response_format", "json_schema"),
    ("response_format", "json_schema", "schema"),
    ("response_format", "json_schema", "schema", "$defs"),
    ("response_format", "json_schema", "schema", "$defs", "when"),
    ("response_format", "json_schema", "schema", "definitions"),
    ("response_format", "json_schema", "schema", "properties"),
    ("response_format", "json_schema", "schema", "properties", "city"),
    ("response_format", "json_schema", "schema", "properties", "when", "$ref"),
    ("response_format", "json_schema", "schema", "type"),
    ("response_format", "json_schema", "schema", "anyOf"),
    ("response_format", "json_schema", "schema", "items"),
    ("response_format", "json_schema", "schema", "required"),
    ("tools",),
    ("tools", 0),
    ("tools", 0, "type"),
    ("tools", 0, "function"),
    ("tools", 0, "function", "name"),
    ("tools", 0, "function", "description"),
    ("tools", 0, "function", "parameters"),
    ("tools", 0, "function", "parameters", "$defs"),
    ("tools", 0, "function", "parameters", "definitions"),
    ("tools", 0, "function", "parameters", "properties"),
    ("tools", 0, "function", "parameters", "properties", "when"),
    ("tools", 0, "function", "parameters", "type"),
    ("tools", 0, "function", "strict"),
    ("tool_choice",),
    ("tool_choice", "function"),
    ("tool_choice", "function", "name"),
    ("parallel_tool_calls",),
    ("messages", 0, "content"),
    ("messages", 1, "content"),
    ("messages", 1, "content", 0),
    ("messages", 1, "content", 0, "type"),
    ("messages", 1, "content", 0, "text"),
    ("messages", 1, "content", 0, "image_url"),
    ("messages", 1, "content", 0, "file"),
    ("messages", 1, "content", 0, "input_audio"),
    ("messages", 1, "name"),
    ("messages", 2, "tool_calls"),
    ("messages", 2, "tool_calls", 0, "id"),
    ("messages", 2, "tool_calls", 0, "function"),
    ("messages", 2, "tool_calls", 0, "function", "arguments"),
    ("messages", 3, "tool_call_id"),
    ("messages", 3, "content"),
    ("stop",),
    ("n",),
    ("temperature",),
    ("top_p",),
    ("seed",),
    ("presence_penalty",),
    ("frequency_penalty",),
    ("logprobs",),
    ("top_logprobs",),
    ("logit_bias",),
    ("reasoning_effort",),
    ("safety_identifier",),
    ("user",),
    ("metadata",),
    ("verbosity",),
    ("service_tier",),
    ("max_tokens",),
    ("max_completion_tokens",),
    ("prediction",),
    ("audio",),
    ("stream_options",),
    ("models",),
]
RESPONSES_BASE: dict[str, Any] = {
    "model": "gpt",
    "instructions": "Be brief.",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ],
    "tools": [{"type": "function", "name": "f", "parameters": copy.deepcopy(SCHEMA)}],
    "tool_choice": {"type": "function", "name": "f"},
    "text": {"format": {"type": "json_schema", "name": "out", "schema": copy.deepcopy(SCHEMA)}},
    "reasoning": {"effort": "low"},
}
RESPONSES_PATHS: list[tuple[Any, ...]] = [
    ("input",),
    ("input", 0),
    ("input", 0, "role"),
    ("input", 0, "type"),
    ("input", 0, "content"),
    ("input", 0, "content", 0),
    ("input", 0, "content", 0, "type"),
    ("input", 0, "content", 0, "text"),
    ("input", 0, "content", 0, "image_url"),
    ("input", 0, "content", 0, "detail"),
    ("input", 0, "content", 0, "file_data"),
    ("input", 1, "arguments"),
    ("input", 1, "name"),
    ("input", 1, "call_id"),
    ("input", 2, "output"),
    ("input", 2, "call_id"),
    ("instructions",),
    ("tools",),
    ("tools", 0),
    ("tools", 0, "type"),
    ("tools", 0, "name"),
    ("tools", 0, "parameters"),
    ("tools", 0, "parameters", "$defs"),
    ("tools", 0, "parameters", "definitions"),
    ("tools", 0, "parameters", "properties"),
    ("tool_choice",),
    ("tool_choice", "type"),
    ("tool_choice", "name"),
    ("tool_choice", "tools"),
    ("tool_choice", "mode"),
    ("text",),
    ("text", "format"),
    ("text", "format", "type"),
    ("text", "format", "name"),
    ("text", "format", "schema"),
    ("text", "format", "schema", "$defs"),
    ("text", "format", "schema", "definitions"),
    ("text", "verbosity"),
    ("reasoning",),
    ("reasoning", "effort"),
    ("include",),
    ("max_output_tokens",),
    ("metadata",),
    ("truncation",),
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["", "text", "function", "json_schema", "object", "#/$defs/when", "data:x"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "name", "$defs", "definitions", "properties", "$ref", "schema", "x"])
            | st.text(max_size=4),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)


def _set(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


def _call(request: ChatRequest, model_id: str) -> UpstreamCall:
    model = CATALOG.models[model_id]
    return UpstreamCall(
        request=request, model=model, provider=CATALOG.provider_of(model), request_id="r", created=1
    )


def _refused_or_done(translate: Callable[[], object]) -> None:
    """Each translator on its own: one refusing the request must not hide another's crash."""
    try:
        translate()
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message


def _translate_chat(request: ChatRequest) -> None:
    for stream in (False, True):
        _refused_or_done(lambda s=stream: openai.build_body(_call(request, "gpt"), stream=s))
        _refused_or_done(lambda s=stream: anthropic.build_body(_call(request, "haiku"), stream=s))
        _refused_or_done(lambda s=stream: from_chat_body(request.raw, "gpt", stream=s))
    _refused_or_done(lambda: gemini.build_body(_call(request, "flash"), gemini.Signatures()))


def test_the_valid_bases_translate() -> None:
    _translate_chat(decode_chat(msgspec.json.encode(CHAT_BASE)))
    _translate_responses(copy.deepcopy(RESPONSES_BASE))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(CHAT_PATHS), value=json_values)
def test_any_value_in_a_chat_field_is_translated_or_refused_with_400(
    path: tuple[Any, ...], value: Any
) -> None:
    body = _set(copy.deepcopy(CHAT_BASE), path, value)
    try:
        request = decode_chat(msgspec.json.encode(body))
        _translate_chat(request)
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message


def _translate_responses(body: dict[str, Any]) -> None:
    request = convert(body, ResponsesRequest)
    request.raw = body
    check(request)
    items = input_items(request)
    chat_body = to_chat_body(request, items)
    chat = convert(chat_body, ChatRequest)
    chat.raw = chat_body
    _refused_or_done(lambda: passthrough_body(request.raw, items, "gpt", True))
    _translate_chat(chat)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(RESPONSES_PATHS), value=json_values)
def test_any_value_in_a_responses_field_is_translated_or_refused_with_400(
    path: tuple[Any, ...], value: Any
) -> None:
    try:
        _translate_responses(_set(copy.deepcopy(RESPONSES_BASE), path, value))
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(["prompt", "stop", "temperature", "logit_bias", "n", "max_tokens", "user", "seed"]),
    value=json_values,
)
def test_any_value_in_a_completions_field_is_translated_or_refused_with_400(field: str, value: Any) -> None:
    from router.api.completions import decode_completion, planning_request

    body = {"model": "gpt", "prompt": "hi", field: value}
    try:
        request = decode_completion(msgspec.json.encode(body))
        planning_request(request)
        for text in prompt_texts(request) or []:
            _translate_chat(chat_request_for(request, text, stream=False))
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message


@pytest.mark.parametrize(
    ("path", "value", "param"),
    [
        (("response_format", "json_schema"), "a string", "response_format.json_schema"),
        (("response_format", "json_schema"), 7, "response_format.json_schema"),
        (("response_format", "json_schema", "schema", "$defs"), [1], "response_format.json_schema.schema"),
        (
            ("response_format", "json_schema", "schema", "$defs", "when"),
            3,
            "response_format.json_schema.schema",
        ),
        (("tools", 0, "function", "parameters", "definitions"), "x", "tools[0].function.parameters"),
    ],
)
def test_malformed_nested_fields_name_the_field(path: tuple[Any, ...], value: Any, param: str) -> None:
    body = _set(copy.deepcopy(CHAT_BASE), path, value)
    with pytest.raises(InvalidRequest) as info:
        decode_chat(msgspec.json.encode(body))
    assert info.value.param is not None and info.value.param.startswith(param)


@pytest.mark.parametrize(
    ("path", "value", "param"),
    [
        (("text", "format", "schema", "$defs"), "x", "text.format.schema"),
        (("tools", 0, "parameters", "$defs"), [], "tools[0].parameters"),
        (
            (
                "tools",
                0,
                "parameters",
                "definitions",
            ),
            {"a": 1},
            "tools[0].parameters",
        ),
    ],
)
def test_malformed_responses_schemas_name_the_field(path: tuple[Any, ...], value: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        _translate_responses(_set(copy.deepcopy(RESPONSES_BASE), path, value))
    assert info.value.param is not None and info.value.param.startswith(param)
