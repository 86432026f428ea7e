"""The GenAI semantic conventions as the router fills them: provider names, request parameters, the
facts of each API's answers, and message content in the convention's JSON shape."""

from __future__ import annotations

import json

from router.catalog import parse_catalog
from router.telemetry import genai
from router.types import ChatChunk, ChunkChoice, Delta, Usage

CATALOG = parse_catalog(
    """
providers:
  openai: {kind: openai, base_url: "https://api.openai.com/v1"}
  groq: {kind: openai, base_url: "https://api.groq.com/openai/v1"}
  azure: {kind: openai, base_url: "https://team.openai.azure.com/openai/v1"}
  vllm: {kind: openai, base_url: "http://10.0.0.5:8000/v1"}
  anthropic: {kind: anthropic, base_url: "https://api.anthropic.com"}
  google: {kind: gemini, base_url: "https://generativelanguage.googleapis.com/v1beta"}
models:
  m: {provider: openai, context_window: 1000, max_output: 100, quality: 1,
      price: {input: 1, output: 1}, speed: {ttft_ms: 1, tokens_per_s: 1}}
""",
    {},
)


def test_provider_names_are_the_conventions_well_known_values_where_one_applies() -> None:
    names = {name: genai.provider_name(p) for name, p in CATALOG.providers.items()}
    assert names == {
        "openai": "openai",
        "groq": "groq",
        "azure": "azure.ai.openai",
        "vllm": "vllm",  # a server of the operator's own: the catalog's name
        "anthropic": "anthropic",
        "google": "gcp.gemini",
    }
    assert genai.server_of("https://api.openai.com/v1") == {
        "server.address": "api.openai.com",
        "server.port": 443,
    }
    assert genai.server_of("http://10.0.0.5:8000/v1") == {"server.address": "10.0.0.5", "server.port": 8000}


def test_request_parameters_become_attributes_and_content_does_not() -> None:
    raw = {
        "model": "m",
        "messages": [{"role": "user", "content": "private words"}],
        "max_completion_tokens": 64,
        "temperature": 1,
        "top_p": 0.9,
        "stop": "END",
        "n": 2,
        "seed": 7,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x"}},
    }
    assert genai.request_attributes(raw) == {
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 1.0,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.stop_sequences": ["END"],
        "gen_ai.request.choice.count": 2,
        "gen_ai.request.seed": 7,
        "gen_ai.output.type": "json",
    }
    assert genai.request_attributes({"max_output_tokens": 10, "temperature": True}) == {
        "gen_ai.request.max_tokens": 10
    }


def test_a_chat_stream_gives_its_id_model_finish_usage_and_text_only_when_captured() -> None:
    def chunk(content: str | None, finish: str | None = None, usage: Usage | None = None) -> ChatChunk:
        choices = [] if usage else [ChunkChoice(delta=Delta(content=content), finish_reason=finish)]
        return ChatChunk(id="chatcmpl-1", created=0, model="m-2025", choices=choices, usage=usage)

    events = [
        chunk("Hel"),
        chunk("lo", "stop"),
        chunk(None, usage=Usage(prompt_tokens=3, completion_tokens=2)),
    ]
    plain, captured = genai.Facts(capture=False), genai.Facts(capture=True)
    for event in events:
        plain.observe(event)
        captured.observe(event)
    assert plain.attributes() == {
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": "m-2025",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 2,
    }
    assert plain.output_messages() is None
    assert json.loads(captured.output_messages() or "") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Hello"}], "finish_reason": "stop"}
    ]


def test_a_responses_answer_gives_its_facts() -> None:
    facts = genai.Facts(capture=True)
    facts.observe(
        {
            "id": "resp_1",
            "object": "response",
            "model": "gpt-5-mini",
            "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "Hi"}]}],
            "usage": {"input_tokens": 4, "output_tokens": 9, "input_tokens_details": {"cached_tokens": 2}},
        }
    )
    assert facts.attributes() == {
        "gen_ai.response.id": "resp_1",
        "gen_ai.response.model": "gpt-5-mini",
        "gen_ai.response.finish_reasons": ["max_output_tokens"],
        "gen_ai.usage.input_tokens": 4,
        "gen_ai.usage.output_tokens": 9,
        "gen_ai.usage.cache_read.input_tokens": 2,
    }
    assert json.loads(facts.output_messages() or "")[0]["parts"] == [{"type": "text", "content": "Hi"}]


def test_input_messages_follow_the_conventions_parts_shape() -> None:
    raw = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Look"}, {"type": "image_url"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ]
    }
    messages = json.loads(genai.input_content("chat", raw)["gen_ai.input.messages"])
    assert messages == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Look"}, {"type": "image_url"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f", "arguments": "{}"}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "42"}]},
    ]
    responses = genai.input_content("responses", {"input": "Hi", "instructions": "Be kind."})
    assert json.loads(responses["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be kind."}]
    assert genai.input_content("embeddings", {"input": "x"}) == {}
