"""Prompt caching in translation: cache_control to Anthropic and nowhere else, auto_cache, the limits
Anthropic enforces, and cache usage mapped back in OpenAI's terms (chat and Responses)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from router.api.decode import decode_chat
from router.catalog import parse_catalog
from router.errors import InvalidRequest
from router.providers import anthropic, gemini, openai
from router.providers._caching import without_cache_control
from router.providers.base import Call, UpstreamCall
from router.responses.answer import usage_of as responses_usage_of
from router.responses.native import from_chat_body
from router.responses.request import ResponsesRequest, check, input_items, to_chat_body
from router.routing.cost import cost_usd
from router.types import ChatRequest

CATALOG = parse_catalog(
    """
providers:
  anthropic: {kind: anthropic, base_url: "https://api.anthropic.com"}
  openai: {kind: openai, base_url: "https://api.openai.com/v1"}
  google: {kind: gemini, base_url: "https://generativelanguage.googleapis.com/v1beta"}
models:
  claude: {provider: anthropic, upstream: claude-sonnet-4-5, context_window: 200000, max_output: 1000,
           quality: 90, speed: {ttft_ms: 1000, tokens_per_s: 70},
           price: {input: 3, output: 15, cached_input: 0.3, cache_write: 3.75, cache_write_1h: 6}}
  claude-auto: {provider: anthropic, upstream: claude-sonnet-4-5, context_window: 200000, max_output: 1000,
                quality: 90, speed: {ttft_ms: 1000, tokens_per_s: 70}, price: {input: 3, output: 15},
                auto_cache: {min_tokens: 100}}
  gpt: {provider: openai, context_window: 400000, max_output: 1000, quality: 80,
        speed: {ttft_ms: 500, tokens_per_s: 100}, price: {input: 1, output: 4}}
  gem: {provider: google, upstream: gemini-2.5-flash, context_window: 1000000, max_output: 1000, quality: 70,
        speed: {ttft_ms: 500, tokens_per_s: 100}, price: {input: 0.3, output: 2.5, cached_input: 0.03}}
""",
    {},
)
EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}


def call(body: dict[str, Any], model: str = "claude") -> UpstreamCall:
    raw = {"model": model, **body}
    request = msgspec.convert(raw, ChatRequest)
    request.raw = raw
    target = CATALOG.models[model]
    return Call(request=request, model=target, provider=CATALOG.provider_of(target), request_id="r")


def to_anthropic(body: dict[str, Any], model: str = "claude") -> dict[str, Any]:
    result: dict[str, Any] = json.loads(anthropic.build_body(call(body, model), stream=False))
    return result


def tool(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}, **extra}


# --- to Anthropic --------------------------------------------------------------------------------


def test_markers_reach_the_blocks_they_mark() -> None:
    sent = to_anthropic(
        {
            "messages": [
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": "You analyse contracts."},
                        {"type": "text", "text": "<agreement>", "cache_control": HOUR},
                    ],
                },
                {"role": "developer", "content": "Cite clauses.", "cache_control": EPHEMERAL},
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://example.test/a.png"}},
                        {"type": "text", "text": "Key terms?", "cache_control": EPHEMERAL},
                    ],
                },
            ],
            "tools": [tool("search", cache_control=HOUR), tool("fetch")],
        }
    )
    assert sent["tools"] == [
        {"name": "search", "input_schema": {"type": "object"}, "cache_control": HOUR},
        {"name": "fetch", "input_schema": {"type": "object"}},
    ]
    # A marked system prompt goes as blocks; joined, their text is what the string would have been.
    assert sent["system"] == [
        {"type": "text", "text": "You analyse contracts."},
        {"type": "text", "text": "<agreement>", "cache_control": HOUR},
        {"type": "text", "text": "\n\nCite clauses.", "cache_control": EPHEMERAL},
    ]
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "url", "url": "https://example.test/a.png"}},
                {"type": "text", "text": "Key terms?", "cache_control": EPHEMERAL},
            ],
        }
    ]


def test_message_level_markers_and_tool_turns_as_litellm_accepts_them() -> None:
    sent = to_anthropic(
        {
            "messages": [
                {"role": "user", "content": "Weather?", "cache_control": EPHEMERAL},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "w", "arguments": "{}"},
                            "cache_control": EPHEMERAL,
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "4C", "cache_control": EPHEMERAL},
            ],
            "tools": [{"type": "function", "function": {"name": "w", "cache_control": EPHEMERAL}}],
        }
    )
    assert sent["tools"][0]["cache_control"] == EPHEMERAL  # tools[i].function.cache_control
    user, assistant, results = sent["messages"]
    assert user["content"] == [{"type": "text", "text": "Weather?", "cache_control": EPHEMERAL}]
    assert assistant["content"][0] == {"type": "text", "text": "Checking."}
    assert assistant["content"][1]["cache_control"] == EPHEMERAL
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "4C", "cache_control": EPHEMERAL}
    ]


def test_a_top_level_marker_marks_the_end_of_the_conversation_as_openrouter_does() -> None:
    sent = to_anthropic(
        {
            "messages": [user("one"), {"role": "assistant", "content": "two"}, user("three")],
            "cache_control": HOUR,
        }
    )
    assert sent["messages"][-1]["content"] == [{"type": "text", "text": "three", "cache_control": HOUR}]
    assert "cache_control" not in sent  # Anthropic's own top-level form is not on every deployment
    assert json.dumps(sent).count("cache_control") == 1


def test_an_unmarked_system_prompt_stays_one_string() -> None:
    sent = to_anthropic(
        {"messages": [{"role": "system", "content": "A"}, {"role": "system", "content": "B"}, user("hi")]}
    )
    assert sent["system"] == "A\n\nB"
    assert "cache_control" not in json.dumps(sent)


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": text, **extra}


def test_more_than_four_breakpoints_is_our_400_not_anthropics() -> None:
    messages = [user(f"turn {i}", cache_control=EPHEMERAL) for i in range(3)]
    body = {"messages": [{"role": "system", "content": "S", "cache_control": EPHEMERAL}, *messages]}
    body["tools"] = [tool("t", cache_control=EPHEMERAL)]
    with pytest.raises(InvalidRequest) as info:
        to_anthropic(body)
    assert info.value.status == 400 and info.value.code == "too_many_cache_breakpoints"
    assert "maximum of 4 blocks with cache_control" in info.value.message and "has 5" in info.value.message


def test_a_one_hour_breakpoint_after_a_five_minute_one_is_refused() -> None:
    body = {
        "messages": [user("doc", cache_control=HOUR)],
        "tools": [tool("t", cache_control={"type": "ephemeral", "ttl": "5m"})],
    }
    with pytest.raises(InvalidRequest) as info:
        to_anthropic(body)
    assert info.value.code == "invalid_cache_ttl_order"
    assert "messages.0.content.0" in info.value.message and "tools.0" in info.value.message
    body["tools"] = [tool("t", cache_control=HOUR)]
    body["messages"] = [user("doc", cache_control=EPHEMERAL)]
    assert to_anthropic(body)["messages"][0]["content"][0]["cache_control"] == EPHEMERAL


@pytest.mark.parametrize(
    ("marker", "param"),
    [
        ({"type": "persistent"}, "messages[0].content[0].cache_control.type"),
        ({"type": "ephemeral", "ttl": "2h"}, "messages[0].content[0].cache_control.ttl"),
        ({"type": "ephemeral", "scope": "global"}, "messages[0].content[0].cache_control"),
        ("ephemeral", "messages[0].content[0].cache_control"),
    ],
)
def test_a_malformed_marker_is_a_400_naming_it(marker: Any, param: str) -> None:
    body = {"model": "claude", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi", "cache_control": marker}]}]}  # fmt: skip
    with pytest.raises(InvalidRequest) as info:
        decode_chat(json.dumps(body).encode())
    assert info.value.param == param


def test_auto_cache_marks_tools_system_and_the_last_two_long_user_turns() -> None:
    long = "x" * 500  # about 125 tokens: past the model's min_tokens of 100
    sent = to_anthropic(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                user("short"),
                {"role": "assistant", "content": "ok"},
                user(long),
                {"role": "assistant", "content": "ok"},
                user(long),
                {"role": "assistant", "content": "ok"},
                user("again"),
            ],
            "tools": [tool("a"), tool("b")],
        },
        model="claude-auto",
    )
    assert "cache_control" not in sent["tools"][0] and sent["tools"][1]["cache_control"] == EPHEMERAL
    assert sent["system"] == [{"type": "text", "text": "Be brief.", "cache_control": EPHEMERAL}]
    marked = [i for i, m in enumerate(sent["messages"]) if "cache_control" in m["content"][-1]]
    assert marked == [4, 6]  # the latest turn, and the one the previous request marked


def test_auto_cache_leaves_short_prompts_and_clients_with_markers_alone() -> None:
    short = to_anthropic({"messages": [{"role": "system", "content": "S"}, user("hi")]}, model="claude-auto")
    assert short["system"][0]["cache_control"] == EPHEMERAL
    assert "cache_control" not in short["messages"][0]["content"][0]  # far below min_tokens
    own = to_anthropic(
        {"messages": [{"role": "system", "content": "S"}, user("x" * 2000, cache_control=HOUR)]},
        model="claude-auto",
    )
    assert own["system"] == "S"
    assert own["messages"][0]["content"][0]["cache_control"] == HOUR


# --- to every other provider ---------------------------------------------------------------------

MARKED = {
    "messages": [
        {"role": "system", "content": "S", "cache_control": EPHEMERAL},
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": EPHEMERAL}]},
    ],
    "tools": [tool("t", cache_control=EPHEMERAL)],
    "prompt_cache_key": "tenant-7",
    "prompt_cache_retention": "24h",
}


def test_openai_kind_gets_no_marker_but_the_cache_key_and_retention() -> None:
    sent = json.loads(openai.build_body(call(MARKED, "gpt"), stream=False))
    assert "cache_control" not in json.dumps(sent)
    assert sent["messages"][1]["content"] == [{"type": "text", "text": "hi"}]
    assert (sent["prompt_cache_key"], sent["prompt_cache_retention"]) == ("tenant-7", "24h")
    assert MARKED["messages"][0]["cache_control"] == EPHEMERAL  # the client's body is left as it was
    responses = from_chat_body(call(MARKED, "gpt").request.raw, "gpt", stream=False)
    assert "cache_control" not in json.dumps(responses)
    assert (responses["prompt_cache_key"], responses["prompt_cache_retention"]) == ("tenant-7", "24h")


def test_a_body_without_markers_is_forwarded_as_the_same_object() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert without_cache_control(body) is body
    part = {"type": "input_text", "text": "hi", "cache_control": EPHEMERAL}
    responses = {
        "input": [{"type": "message", "role": "user", "content": [part]}],
        "cache_control": EPHEMERAL,
    }
    assert without_cache_control(responses) == {
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    }


def test_gemini_and_anthropic_drop_the_openai_cache_fields() -> None:
    sent = json.loads(gemini.build_body(call(MARKED, "gem"), gemini.Signatures()))
    assert "cache" not in json.dumps(sent).lower()
    to_claude = to_anthropic(MARKED)
    assert "prompt_cache_key" not in to_claude and "prompt_cache_retention" not in to_claude


def test_responses_input_carries_markers_to_the_chat_form() -> None:
    raw = {
        "model": "claude",
        "instructions": "Be brief.",
        "input": [
            {"role": "system", "content": [{"type": "input_text", "text": "Rules", "cache_control": HOUR}]},
            {"role": "user", "content": [{"type": "input_text", "text": "Doc", "cache_control": EPHEMERAL}]},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}",
             "cache_control": EPHEMERAL},
            {"type": "function_call_output", "call_id": "c1", "output": "4C", "cache_control": EPHEMERAL},
        ],
        "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}, "cache_control": HOUR}],
    }  # fmt: skip
    request = msgspec.convert(raw, ResponsesRequest)
    request.raw = raw
    check(request)
    chat = to_chat_body(request, input_items(request))
    rules = {"type": "text", "text": "Rules", "cache_control": HOUR}
    assert chat["messages"][1] == {"role": "system", "content": [rules]}
    assert chat["messages"][2]["content"][0]["cache_control"] == EPHEMERAL
    assert chat["messages"][3]["tool_calls"][0]["cache_control"] == EPHEMERAL
    assert chat["messages"][4]["cache_control"] == EPHEMERAL
    assert chat["tools"][0]["cache_control"] == HOUR
    body = {k: v for k, v in chat.items() if k != "model"}
    with pytest.raises(InvalidRequest, match="has 5"):  # counted after translation, as Anthropic counts
        to_anthropic(body)
    del body["messages"][3]["tool_calls"][0]["cache_control"]
    sent = to_anthropic(body)
    assert [b.get("cache_control") for b in sent["system"]] == [None, HOUR]
    assert sent["tools"][0]["cache_control"] == HOUR


# --- usage back ----------------------------------------------------------------------------------

ANSWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "usage": {
        "input_tokens": 50,
        "output_tokens": 10,
        "cache_read_input_tokens": 10_000,
        "cache_creation_input_tokens": 556,
        "cache_creation": {"ephemeral_5m_input_tokens": 456, "ephemeral_1h_input_tokens": 100},
    },
}


def test_anthropic_usage_counts_reads_and_writes_in_prompt_tokens() -> None:
    usage = anthropic.parse_message(json.dumps(ANSWER).encode(), "anthropic", 1).usage
    assert msgspec.to_builtins(usage) == {
        "prompt_tokens": 10_606,
        "completion_tokens": 10,
        "total_tokens": 10_616,
        "prompt_tokens_details": {
            "cached_tokens": 10_000,
            "cache_write_tokens": 556,
            "cache_creation_token_details": {
                "ephemeral_5m_input_tokens": 456,
                "ephemeral_1h_input_tokens": 100,
            },
        },
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert not isinstance(usage, msgspec.UnsetType) and usage is not None
    expected = (50 * 3 + 10_000 * 0.3 + 456 * 3.75 + 100 * 6 + 10 * 15) / 1e6
    assert cost_usd(CATALOG.models["claude"], usage, None) == pytest.approx(expected)
    responses = responses_usage_of(usage)
    assert responses is not None
    assert responses["input_tokens"] == 10_606
    assert responses["input_tokens_details"] == {"cached_tokens": 10_000, "cache_write_tokens": 556}


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps({'type': event, **data})}\n\n".encode()


def test_streamed_usage_keeps_message_start_cache_counts_and_cumulative_delta() -> None:
    start = {**ANSWER, "content": [], "stop_reason": None, "usage": {**ANSWER["usage"], "output_tokens": 1}}
    stream = b"".join(
        [
            sse("message_start", {"message": start}),
            sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
            sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
            sse("content_block_stop", {"index": 0}),
            # Cumulative counts; the TTL split comes with message_start only.
            sse(
                "message_delta",
                {
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": 10, "input_tokens": 50, "cache_read_input_tokens": 10_000},
                },
            ),
            sse("message_stop", {}),
        ]
    )
    translator = anthropic.StreamTranslator("anthropic", 1)
    chunks = translator.feed(stream)
    usage = chunks[-1].usage
    assert not isinstance(usage, msgspec.UnsetType) and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (10_606, 10)
    assert usage.prompt_tokens_details == {
        "cached_tokens": 10_000,
        "cache_write_tokens": 556,
        "cache_creation_token_details": {"ephemeral_5m_input_tokens": 456, "ephemeral_1h_input_tokens": 100},
    }


def test_gemini_cached_content_is_reported_and_priced_at_the_cached_rate() -> None:
    body = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 5000, "cachedContentTokenCount": 4096,
                          "candidatesTokenCount": 2, "totalTokenCount": 5002},
    }  # fmt: skip
    completion = gemini.parse_response(json.dumps(body).encode(), "google", 1, gemini.Signatures())
    usage = completion.usage
    assert not isinstance(usage, msgspec.UnsetType) and usage is not None
    assert usage.prompt_tokens == 5000
    assert usage.prompt_tokens_details == {"cached_tokens": 4096}
    expected = (904 * 0.3 + 4096 * 0.03 + 2 * 2.5) / 1e6
    assert cost_usd(CATALOG.models["gem"], usage, None) == pytest.approx(expected)
