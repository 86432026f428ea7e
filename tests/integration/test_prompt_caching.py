"""Prompt caching end to end, through the official OpenAI SDK: a long conversation's second turn is
read from the (simulated) provider's cache and costs less, for Anthropic (markers sent by the client
or added by auto_cache), OpenAI and Gemini, as JSON and as a stream, on chat and on Responses."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.integration.conftest import Mock, Router, start_router

CATALOG = """
providers:
  anthropic: {kind: anthropic, base_url: "https://api.anthropic.com", api_key_env: TEST_ANTHROPIC_KEY}
  openai:
    kind: openai
    base_url: https://api.openai.com/v1
    api_key_env: TEST_OPENAI_KEY
    max_tokens_param: max_completion_tokens
  google:
    kind: gemini
    base_url: https://generativelanguage.googleapis.com/v1beta
    api_key_env: TEST_GEMINI_KEY
models:
  claude:
    provider: anthropic
    upstream: claude-sonnet-4-5
    context_window: 200000
    max_output: 1000
    price: {input: 3.0, output: 15.0, cached_input: 0.30, cache_write: 3.75, cache_write_1h: 6.0}
    capabilities: [streaming, tools]
    quality: 90
    speed: {ttft_ms: 500, tokens_per_s: 100}
  claude-auto:
    provider: anthropic
    upstream: claude-sonnet-4-5
    context_window: 200000
    max_output: 1000
    price: {input: 3.0, output: 15.0, cached_input: 0.30, cache_write: 3.75, cache_write_1h: 6.0}
    capabilities: [streaming, tools]
    quality: 90
    speed: {ttft_ms: 500, tokens_per_s: 100}
    auto_cache: {min_tokens: 1024}
  gpt:
    provider: openai
    upstream: gpt-5-mini
    context_window: 400000
    max_output: 1000
    price: {input: 1.25, output: 10.0, cached_input: 0.125}
    endpoints: [chat, responses]
    quality: 80
    speed: {ttft_ms: 500, tokens_per_s: 100}
  gem:
    provider: google
    upstream: gemini-2.5-flash
    context_window: 1000000
    max_output: 1000
    price: {input: 0.30, output: 2.50, cached_input: 0.03}
    quality: 74
    speed: {ttft_ms: 500, tokens_per_s: 100}
"""
PRICES = {
    "claude": {"input": 3.0, "output": 15.0, "read": 0.30, "write": 3.75, "write_1h": 6.0},
    "gpt": {"input": 1.25, "output": 10.0, "read": 0.125, "write": 1.25, "write_1h": 1.25},
    "gem": {"input": 0.30, "output": 2.50, "read": 0.03, "write": 0.30, "write_1h": 0.30},
}
EPHEMERAL = {"type": "ephemeral"}
SYSTEM = "You review contracts and cite clauses. " + "Clause: the parties agree as written. " * 200
QUESTIONS = ("Summarise the first clause.", "And the second one?")
ANSWER = "The first clause says the parties agree as written. " * 20


@pytest.fixture(scope="module")
def cached(mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    path = tmp_path_factory.mktemp("caching") / "catalog.yaml"
    path.write_text(CATALOG)
    router = start_router(mock_process, artifacts, path, "router-caching")
    try:
        yield router
    finally:
        router.process.stop()


@pytest.fixture()
def client(cached: Router) -> OpenAI:
    return OpenAI(base_url=cached.url + "/v1", api_key="k", max_retries=0, timeout=20)


def conversation(turn: int, *, marked: bool) -> list[dict[str, Any]]:
    """The messages of turn 1 or 2; ``marked``: breakpoints on the system prompt and the latest turn."""
    mark = {"cache_control": EPHEMERAL} if marked else {}
    system = {"role": "system", "content": [{"type": "text", "text": SYSTEM, **mark}]}
    messages: list[dict[str, Any]] = [system, {"role": "user", "content": QUESTIONS[0]}]
    if turn == 2:
        messages += [{"role": "assistant", "content": ANSWER}, {"role": "user", "content": QUESTIONS[1]}]
    messages[-1] = {**messages[-1], **mark}
    return messages


def details(usage: Any) -> tuple[int, int, int]:
    """Prompt tokens read from the cache, written to it, and written for an hour (OpenAI SDK usage)."""
    found = usage.prompt_tokens_details
    if found is None:
        return 0, 0, 0
    extra = found.model_extra or {}
    hour = (extra.get("cache_creation_token_details") or {}).get("ephemeral_1h_input_tokens", 0)
    return found.cached_tokens or 0, found.cache_write_tokens or 0, hour


def priced(model: str, usage: Any) -> float:
    """What the catalog's prices make of ``usage``: the cost the router must report."""
    price = PRICES[model]
    read, written, hour = details(usage)
    fresh = usage.prompt_tokens - read - written
    total = (
        fresh * price["input"]
        + read * price["read"]
        + (written - hour) * price["write"]
        + hour * price["write_1h"]
        + usage.completion_tokens * price["output"]
    )
    return total / 1_000_000


def chat(client: OpenAI, model: str, messages: list[dict[str, Any]], **extra: Any) -> tuple[Any, float]:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=messages, max_tokens=20, **extra
    )
    return raw.parse().usage, float(raw.headers["x-router-cost-usd"])


def logged(router: Router, request_id: str) -> dict[str, Any]:
    """The request log line of ``request_id`` (written when the answer is over)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in router.logs().splitlines():
            if request_id in line and line.startswith("{"):
                record: dict[str, Any] = json.loads(line)
                if record.get("request_id") == request_id and "status" in record:
                    return record
        time.sleep(0.05)
    raise AssertionError(f"no log line for {request_id}")


def test_second_turn_of_a_marked_conversation_is_read_from_the_cache_and_costs_less(
    client: OpenAI, mock: Mock
) -> None:
    first, first_cost = chat(client, "claude", conversation(1, marked=True))
    read, written, _ = details(first)
    assert read == 0 and written > 1024 and first.prompt_tokens >= written
    assert first_cost == pytest.approx(priced("claude", first), rel=1e-6)

    second, second_cost = chat(client, "claude", conversation(2, marked=True))
    read, written, _ = details(second)
    assert read == first.prompt_tokens  # everything the first turn wrote
    assert written == second.prompt_tokens - read  # the new turns, written for the third
    assert second_cost == pytest.approx(priced("claude", second), rel=1e-6)
    # A longer prompt, yet cheaper: most of it is read at a tenth of the input price.
    assert second.prompt_tokens > first.prompt_tokens and second_cost < first_cost
    uncached = (second.prompt_tokens * 3.0 + second.completion_tokens * 15.0) / 1e6
    assert second_cost < uncached / 2

    sent = [r["body"] for r in mock.requests("anthropic")]
    assert sent[1]["system"][0]["cache_control"] == EPHEMERAL
    assert sent[1]["messages"][-1]["content"][-1]["cache_control"] == EPHEMERAL
    assert "cache_control" not in sent[1]["messages"][0]["content"][-1]


def test_a_streamed_second_turn_reports_and_prices_the_cached_tokens(
    cached: Router, client: OpenAI, mock: Mock
) -> None:
    chat(client, "claude", conversation(1, marked=True))
    raw = client.chat.completions.with_raw_response.create(
        model="claude",
        messages=conversation(2, marked=True),
        max_tokens=20,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())
    usage = chunks[-1].usage
    assert usage is not None and details(usage)[0] > 1024
    record = logged(cached, raw.headers["x-request-id"])
    assert record["tokens_cached"] == details(usage)[0]
    assert record["tokens_cache_write"] == details(usage)[1]
    assert record["cost_usd"] == pytest.approx(priced("claude", usage), rel=1e-5)


def test_auto_cache_marks_a_conversation_that_carries_no_markers(client: OpenAI, mock: Mock) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    first, first_cost = chat(client, "claude-auto", conversation(1, marked=False), tools=tools)
    second, second_cost = chat(client, "claude-auto", conversation(2, marked=False), tools=tools)
    assert details(first)[0] == 0 and details(second)[0] == first.prompt_tokens
    assert second_cost < first_cost
    assert second_cost == pytest.approx(priced("claude", second), rel=1e-6)
    sent = mock.requests("anthropic")[-1]["body"]
    assert sent["tools"][-1]["cache_control"] == EPHEMERAL
    assert sent["system"][-1]["cache_control"] == EPHEMERAL
    marked = [i for i, m in enumerate(sent["messages"]) if "cache_control" in m["content"][-1]]
    assert marked == [0, 2]  # the latest user turn, and the one the first request marked


def test_responses_api_second_turn_is_cheaper_too(client: OpenAI, mock: Mock) -> None:
    def turn(items: list[dict[str, Any]]) -> tuple[Any, float]:
        raw = client.responses.with_raw_response.create(
            model="claude", instructions=SYSTEM, input=items, max_output_tokens=20, store=False
        )
        return raw.parse().usage, float(raw.headers["x-router-cost-usd"])

    mark = {"cache_control": EPHEMERAL}
    question = {"role": "user", "content": [{"type": "input_text", "text": QUESTIONS[0], **mark}]}
    first, first_cost = turn([question])
    assert first.input_tokens_details.cache_write_tokens > 1024
    follow = [
        {"role": "user", "content": [{"type": "input_text", "text": QUESTIONS[0]}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": ANSWER}]},
        {"role": "user", "content": [{"type": "input_text", "text": QUESTIONS[1], **mark}]},
    ]
    second, second_cost = turn(follow)
    assert second.input_tokens_details.cached_tokens == first.input_tokens
    assert second.input_tokens > first.input_tokens and second_cost < first_cost


def test_more_than_four_breakpoints_is_refused_before_any_call(client: OpenAI, mock: Mock) -> None:
    messages = [
        {
            "role": "user",
            "content": [{"type": "text", "text": t, "cache_control": EPHEMERAL} for t in "abcde"],
        }
    ]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="claude", messages=messages, max_tokens=5)  # type: ignore[arg-type]
    assert info.value.code == "too_many_cache_breakpoints"
    assert "maximum of 4 blocks with cache_control" in info.value.message
    assert mock.requests("anthropic") == []


def test_openai_gets_its_own_cache_fields_and_no_markers_and_prices_its_cached_tokens(
    client: OpenAI, mock: Mock
) -> None:
    extra = {"prompt_cache_key": "contract-42", "prompt_cache_retention": "24h"}
    first, first_cost = chat(client, "gpt", conversation(1, marked=True), **extra)
    second, second_cost = chat(client, "gpt", conversation(2, marked=True), **extra)
    assert details(first)[0] == 0 and details(second)[0] >= 1024
    assert second_cost == pytest.approx(priced("gpt", second), rel=1e-6) and second_cost < first_cost
    sent = [r["body"] for r in mock.requests("openai")]
    assert all("cache_control" not in json.dumps(body) for body in sent)
    assert (sent[-1]["prompt_cache_key"], sent[-1]["prompt_cache_retention"]) == ("contract-42", "24h")


def test_gemini_implicit_cache_is_reported_and_priced(client: OpenAI, mock: Mock) -> None:
    first, first_cost = chat(client, "gem", conversation(1, marked=True))
    second, second_cost = chat(client, "gem", conversation(2, marked=True))
    assert details(first)[0] == 0 and details(second)[0] >= 1024
    assert second_cost == pytest.approx(priced("gem", second), rel=1e-6) and second_cost < first_cost
    assert "cache_control" not in json.dumps(mock.requests("gemini")[-1]["body"])


def test_a_long_responses_chain_replays_no_old_breakpoints(client: OpenAI, mock: Mock) -> None:
    mark = {"cache_control": EPHEMERAL}
    previous = None
    for turn in range(6):  # each turn marks its own input: six markers in all, never more than one sent
        response = client.responses.create(
            model="claude",
            instructions=SYSTEM,
            input=[{"role": "user", "content": [{"type": "input_text", "text": f"Clause {turn}?", **mark}]}],
            previous_response_id=previous,
            max_output_tokens=20,
        )
        previous = response.id
    assert response.usage is not None and response.usage.input_tokens_details.cached_tokens > 1024
    sent = mock.requests("anthropic")[-1]["body"]
    assert json.dumps(sent).count('"cache_control"') == 1
    assert "cache_control" in sent["messages"][-1]["content"][-1]


def test_responses_passed_through_to_openai_carry_no_marker(client: OpenAI, mock: Mock) -> None:
    part = {"type": "input_text", "text": "Hello", "cache_control": EPHEMERAL}
    tool = {
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object"},
        "cache_control": EPHEMERAL,
    }
    response = client.responses.create(
        model="gpt",
        input=[{"role": "user", "content": [part]}],
        tools=[tool],  # type: ignore[list-item]
        prompt_cache_key="contract-42",
        max_output_tokens=20,
    )
    assert response.status == "completed"
    sent = mock.requests("openai")[-1]
    assert sent["path"].endswith("/responses") and "cache_control" not in json.dumps(sent["body"])
    assert sent["body"]["prompt_cache_key"] == "contract-42"
