"""The response cache's parts: the memory store (TTL on an injected clock, LRU bounds), the key, the
request's Cache-Control, its catalog section and environment switch, which answers are kept, and the
round trip of each route's answer through a stream (assembled, then replayed), checked against the
official OpenAI schemas."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from router.api.cache import NO_STORE, REFRESH, CachedAnswer, Directives, ResponseCache, directives
from router.api.chunks import ChunkWriter
from router.api.replay import (
    ChatAssembler,
    TextAssembler,
    chat_chunks,
    chat_keeps,
    text_chunks,
    text_keeps,
)
from router.catalog import CacheSpec, CatalogError, parse_catalog
from router.clock import FakeClock
from router.responses.replay import FinalResponse, response_events, response_keeps
from router.settings import Settings, SettingsError
from router.store import MemoryCacheStore
from router.telemetry.metrics import Metrics
from router.telemetry.record import RequestRecord
from router.types import ChatChunk, ChatCompletion, TextCompletion
from tests.openapi import validate
from tests.unit.test_catalog import MINIMAL

ON = CacheSpec(enabled=True, ttl_s=60, max_entries=3, max_entry_bytes=4096)

# --- the memory store ----------------------------------------------------------------------------


async def test_an_entry_expires_after_its_ttl_on_the_injected_clock() -> None:
    clock = FakeClock()
    store = MemoryCacheStore(clock, 10)
    await store.put("k", b"answer", 60)
    clock.advance(59.9)
    assert await store.get("k") == b"answer"
    clock.advance(0.1)
    assert await store.get("k") is None
    assert len(store) == 0  # an expired entry goes when it is next asked for


async def test_the_least_recently_used_entry_goes_first_when_full() -> None:
    store = MemoryCacheStore(FakeClock(), 3)
    for key in ("a", "b", "c"):
        await store.put(key, key.encode(), 60)
    assert await store.get("a") == b"a"  # "a" is now the most recently used
    await store.put("d", b"d", 60)
    assert [await store.get(k) for k in ("a", "b", "c", "d")] == [b"a", None, b"c", b"d"]
    assert len(store) == 3


async def test_a_smaller_bound_evicts_at_once_and_expired_entries_leave_on_put() -> None:
    clock = FakeClock()
    store = MemoryCacheStore(clock, 10)
    await store.put("old", b"1", 5)
    clock.advance(10)
    await store.put("new", b"2", 60)
    assert len(store) == 1  # the expired "old" went with the put
    for key in "wxyz":
        await store.put(key, b"v", 60)
    store.resize(2)
    assert len(store) == 2 and await store.get("z") == b"v" and await store.get("new") is None


# --- the key and what a request asks -------------------------------------------------------------


def _cache(spec: CacheSpec = ON, clock: FakeClock | None = None) -> ResponseCache:
    clock = clock or FakeClock()
    return ResponseCache(spec, MemoryCacheStore(clock, spec.max_entries), clock)


def _raw(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    return data


def test_key_order_whitespace_and_streaming_do_not_split_entries() -> None:
    cache = _cache()
    one = _raw('{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2}')
    two = _raw(
        '{"temperature":0.2,"stream":true,"stream_options":{"include_usage":true},'
        '"messages":[{"content":"hi","role":"user"}],"model":"m"}'
    )
    assert cache.key("alpha", "chat", one) == cache.key("alpha", "chat", two)


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.3},
        {"n": 2},
        {"seed": 7},
        {"user": "someone-else"},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"messages": [{"role": "user", "content": "hi!"}]},
    ],
)
def test_every_field_that_can_change_the_answer_is_part_of_the_key(change: dict[str, Any]) -> None:
    cache = _cache()
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2, "user": "u"}
    assert cache.key(None, "chat", base) != cache.key(None, "chat", {**base, **change})


def test_each_api_key_and_each_route_has_its_own_entries() -> None:
    cache = _cache()
    body = {"model": "m", "prompt": "hi"}
    keys = {
        cache.key("alpha", "completions", body),
        cache.key("beta", "completions", body),
        cache.key(None, "completions", body),
        cache.key("alpha", "chat", body),
    }
    assert len(keys) == 4


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], Directives()),
        ([(b"cache-control", b"no-cache")], REFRESH),
        ([(b"cache-control", b"max-age=0")], REFRESH),
        ([(b"cache-control", b"No-Store")], NO_STORE),
        ([(b"cache-control", b"no-cache, no-store")], NO_STORE),
        ([(b"cache-control", b"max-age=60, no-transform")], Directives()),
        ([(b"pragma", b"no-cache")], Directives()),
    ],
)
def test_cache_control_refreshes_or_bypasses(
    headers: list[tuple[bytes, bytes]], expected: Directives
) -> None:
    assert directives(headers) == expected


async def test_an_answer_over_max_entry_bytes_is_served_but_not_kept() -> None:
    cache = _cache()
    assert await cache.put("small", b"x" * 1000, "m", "p", None)
    assert not await cache.put("large", b"x" * 5000, "m", "p", None)
    assert await cache.get("large") is None
    kept = await cache.get("small")
    assert kept == CachedAnswer(
        body=b"x" * 1000, model="m", provider="p", stored_at=kept.stored_at if kept else 0
    )


async def test_a_kept_answer_that_cannot_be_read_is_a_miss() -> None:
    cache = _cache()
    await cache.store.put("k", b"not msgpack of an answer \xff", 60)
    assert await cache.get("k") is None


async def test_a_hit_reports_its_age_from_the_wall_clock() -> None:
    clock = FakeClock()
    cache = _cache(clock=clock)
    await cache.put("k", b"{}", "m", "p", "fast")
    clock.advance(42.5)
    entry = await cache.get("k")
    assert entry is not None and entry.strategy == "fast" and cache.age(entry) == 42


# --- configuration -------------------------------------------------------------------------------


def test_the_cache_is_off_unless_the_catalog_or_the_environment_turns_it_on() -> None:
    clock = FakeClock()
    store = MemoryCacheStore(clock, 1000)
    off = Settings.from_env({})
    assert ResponseCache.configured(CacheSpec(), off, store, clock) is None
    configured = ResponseCache.configured(ON, off, store, clock)
    assert configured is not None and configured.spec == ON and store.max_entries == 3
    env = Settings.from_env({"ROUTER_CACHE_TTL_S": "90"})
    assert env.cache_ttl_s == 90 and env.to_env()["ROUTER_CACHE_TTL_S"] == "90"
    switched = ResponseCache.configured(CacheSpec(), env, store, clock)
    assert switched is not None and switched.spec == CacheSpec(enabled=True, ttl_s=90)


@pytest.mark.parametrize("value", ["-1", "soon", str(31 * 86_400)])
def test_a_bad_cache_ttl_in_the_environment_is_refused_by_name(value: str) -> None:
    with pytest.raises(SettingsError, match="ROUTER_CACHE_TTL_S"):
        Settings.from_env({"ROUTER_CACHE_TTL_S": value})


def test_the_catalog_cache_section_is_read() -> None:
    catalog = parse_catalog(MINIMAL + "cache: {enabled: true, ttl_s: 120}\n", {})
    assert catalog.cache == CacheSpec(enabled=True, ttl_s=120)
    assert parse_catalog(MINIMAL, {}).cache == CacheSpec()


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("cache: {enabled: true, ttl_s: 0}", "cache.ttl_s: Expected `int` >= 1"),
        ("cache: {max_entries: -5}", "cache.max_entries: Expected `int` >= 1"),
        ("cache: {max_entry_bytes: 10}", "cache.max_entry_bytes: Expected `int` >= 1024"),
        ("cache: {enabled: yes-please}", "cache.enabled: Expected `bool`"),
        ("cache: {ttl: 60}", "cache: Object contains unknown field `ttl`"),
    ],
)
def test_bad_cache_values_are_catalog_errors_naming_the_field(section: str, expected: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(MINIMAL + section + "\n", {}, source="catalog.yaml")
    assert expected in str(caught.value) and "catalog.yaml:" in str(caught.value)


# --- which answers are kept ----------------------------------------------------------------------


def _completion(*choices: dict[str, Any], usage: bool = True) -> ChatCompletion:
    body: dict[str, Any] = {"id": "chatcmpl-1", "created": 1, "model": "m", "choices": list(choices)}
    if usage:
        body["usage"] = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    return msgspec.convert(body, ChatCompletion)


def _choice(index: int = 0, finish: str = "stop", **message: Any) -> dict[str, Any]:
    return {"index": index, "finish_reason": finish, "message": {"role": "assistant", **message}}


def test_complete_chat_answers_are_kept_and_filtered_or_empty_ones_are_not() -> None:
    assert chat_keeps(_completion(_choice(content="hi")))
    assert chat_keeps(_completion(_choice(finish="length", content="hi")))  # the request's own limit
    assert not chat_keeps(_completion(_choice(finish="content_filter", content="hi")))
    assert not chat_keeps(_completion(_choice(content="")))
    assert not chat_keeps(_completion(_choice(content="hi"), _choice(1, finish="content_filter")))
    assert (
        text_keeps(msgspec.convert({"id": "c", "created": 1, "model": "m", "choices": [{}]}, TextCompletion))
        is False
    )


def test_complete_responses_are_kept_and_failed_or_filtered_ones_are_not() -> None:
    message = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": []}
    assert response_keeps({"status": "completed", "output": [message]})
    incomplete = {"status": "incomplete", "output": [message]}
    assert response_keeps({**incomplete, "incomplete_details": {"reason": "max_output_tokens"}})
    assert not response_keeps({**incomplete, "incomplete_details": {"reason": "content_filter"}})
    assert not response_keeps({"status": "failed", "output": [message]})
    assert not response_keeps({"status": "completed", "output": [{"type": "reasoning", "id": "rs_1"}]})


# --- chat: answer → stream → answer --------------------------------------------------------------


def _frames(chunks: list[Any], include_usage: bool) -> list[dict[str, Any]]:
    writer: ChunkWriter[Any] = ChunkWriter(include_usage, None)
    framed = [writer.frame(chunk) for chunk in chunks]
    return [json.loads(f[len(b"data: ") :]) for f in framed if f is not None]


CHAT = _completion(
    _choice(content="lorem ipsum", reasoning_content="thinking first"),
    _choice(
        1,
        finish="tool_calls",
        content=None,
        tool_calls=[
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
            },
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
        ],
    ),
)


@pytest.mark.parametrize("include_usage", [True, False])
def test_a_kept_chat_answer_replays_as_a_valid_stream(include_usage: bool) -> None:
    body = msgspec.json.encode(CHAT)
    validate(json.loads(body), "CreateChatCompletionResponse")
    frames = _frames(chat_chunks(body), include_usage)
    for frame in frames:
        validate(frame, "CreateChatCompletionStreamResponse")
    first = [f["choices"][0]["delta"] for f in frames if f["choices"] and f["choices"][0]["index"] == 0]
    assert first[0] == {"role": "assistant", "reasoning_content": "thinking first"}
    assert first[1] == {"content": "lorem ipsum"}
    finishes = [(c["index"], c["finish_reason"]) for f in frames for c in f["choices"] if c["finish_reason"]]
    assert finishes == [(0, "stop"), (1, "tool_calls")]
    if include_usage:
        assert frames[-1]["choices"] == [] and frames[-1]["usage"]["total_tokens"] == 5
        assert all(f["usage"] is None for f in frames[:-1])
    else:
        assert all("usage" not in f for f in frames)


def test_a_chat_stream_assembles_into_the_answer_it_replays() -> None:
    body = msgspec.json.encode(CHAT)
    assembler = ChatAssembler()
    for chunk in chat_chunks(body):
        assembler.feed(chunk)
    assembled = assembler.answer()
    assert assembled is not None
    assert json.loads(assembled) == json.loads(body)


def test_a_chat_stream_split_in_many_deltas_assembles_whole() -> None:
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}
                        ]
                    },
                }
            ]
        },
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}], "service_tier": "flex"},
        {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}},
    ]
    assembler = ChatAssembler()
    for chunk in chunks:
        assembler.feed(msgspec.convert({"id": "x", "created": 5, "model": "m", **chunk}, ChatChunk))
    answer = json.loads(assembler.answer() or b"null")
    validate(answer, "CreateChatCompletionResponse")
    message = answer["choices"][0]["message"]
    assert message["content"] == "Hello" and message["tool_calls"][0]["function"]["arguments"] == '{"a":1}'
    assert answer["usage"]["total_tokens"] == 3 and answer["service_tier"] == "flex"


def test_a_stream_cut_by_a_content_filter_or_without_a_finish_is_not_kept() -> None:
    unfinished = ChatAssembler()
    unfinished.feed(
        msgspec.convert(
            {"id": "x", "created": 5, "model": "m", "choices": [{"delta": {"content": "Hi"}}]}, ChatChunk
        )
    )
    assert unfinished.answer() is None
    filtered = ChatAssembler()
    filtered.feed(
        msgspec.convert(
            {
                "id": "x",
                "created": 5,
                "model": "m",
                "choices": [{"delta": {"content": "Hi"}, "finish_reason": "content_filter"}],
            },
            ChatChunk,
        )
    )
    assert filtered.answer() is None


# --- legacy completions --------------------------------------------------------------------------


def test_a_kept_legacy_completion_replays_and_assembles_back() -> None:
    answer = msgspec.convert(
        {
            "id": "cmpl-1",
            "created": 1,
            "model": "m",
            "choices": [
                {"text": "one", "index": 0, "finish_reason": "stop", "logprobs": None},
                {"text": "two", "index": 1, "finish_reason": "length", "logprobs": None},
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        },
        TextCompletion,
    )
    body = msgspec.json.encode(answer)
    validate(json.loads(body), "CreateCompletionResponse")
    chunks = text_chunks(body)
    frames = _frames(chunks, include_usage=True)
    for frame in frames:
        # A stream event says ``usage: null`` before the usage event (test_completions.py explains).
        validate({k: v for k, v in frame.items() if v is not None}, "CreateCompletionResponse")
    assert [c["text"] for f in frames for c in f["choices"]] == ["one", "two"]
    assert frames[-1]["choices"] == [] and frames[-1]["usage"]["total_tokens"] == 3
    assembler = TextAssembler()
    for chunk in text_chunks(body):
        assembler.feed(chunk)
    assert json.loads(assembler.answer() or b"null") == json.loads(body)


# --- Responses -----------------------------------------------------------------------------------

RESPONSE: dict[str, Any] = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "completed_at": 2,
    "status": "completed",
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "model": "m",
    "output": [
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "why"}],
            "encrypted_content": "e",
        },
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []},
                {"type": "refusal", "refusal": "not that"},
            ],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "f",
            "arguments": "{}",
            "status": "completed",
        },
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "temperature": 1.0,
    "top_p": 1.0,
    "metadata": {},
    "usage": {
        "input_tokens": 4,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 7,
    },
}


def test_a_kept_response_replays_as_the_exact_event_sequence() -> None:
    validate(RESPONSE, "Response")
    events = response_events(json.loads(json.dumps(RESPONSE)))
    for number, event in enumerate(events):
        validate({**event, "sequence_number": number}, "ResponseStreamEvent")
    kinds = [e["type"] for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    assert "usage" not in events[0]["response"]
    assert events[-1]["response"] == RESPONSE
    final = FinalResponse()
    for event in events:
        final.feed(event)
    assert json.loads(final.answer() or b"null") == RESPONSE


# --- metrics -------------------------------------------------------------------------------------


def test_hits_misses_and_bypasses_are_counted_and_a_hit_adds_no_upstream_time() -> None:
    metrics = Metrics()
    base = {
        "request_id": "r",
        "key": None,
        "model_asked": "m",
        "stream": False,
        "status": 200,
        "attempts": (),
    }
    for cached in ("hit", "hit", "miss", "bypass"):
        record = RequestRecord(
            route="chat",
            duration_ms=1.0,
            model="m",
            provider="p",
            overhead_ms=1.0,
            cost_usd=0.0,
            cache=cached,
            **base,
        )
        metrics.record_request(record)
    metrics.record_request(RequestRecord(route="chat", duration_ms=1.0, **base))  # cache off: not counted

    class Sources:
        def catalog(self) -> None:
            return None

        def in_flight(self) -> int:
            return 0

        def routable(self) -> int:
            return 0

        def tick(self) -> None:
            return None

    text = metrics.exposition(Sources()).decode()
    assert 'router_cache_requests_total{result="hit",route="chat"} 2.0' in text
    assert 'router_cache_requests_total{result="miss",route="chat"} 1.0' in text
    assert 'router_cache_requests_total{result="bypass",route="chat"} 1.0' in text
    assert "router_upstream_duration_seconds_count" not in text
