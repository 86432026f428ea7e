"""The response cache through a real router process and the simulated providers: hit, miss, refresh
and bypass, for JSON and streams, on chat, completions, responses and embeddings.

Each test asks with a marker of its own in the prompt, so it counts its own upstream calls in the
mock's request log (a hit makes none) and never meets another test's entries. Every answer, replayed
or not, is checked against the official OpenAI schemas; a stream event by event.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from openai import OpenAI

from tests.inprocess import sse_data
from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router
from tests.openapi import validate

ALPHA = "rk-alpha-0123456789abcdef012"
BETA = "rk-beta-0123456789abcdef0123"
TIGHT = "rk-tight-0123456789abcdef012"
NARROW = "rk-narrow-0123456789abcdef01"
SECTIONS = """
cache: {enabled: true, ttl_s: 600, max_entries: 500}
access:
  keys:
    - {name: alpha, key_env: TEST_KEY_ALPHA}
    - {name: beta, key_env: TEST_KEY_BETA}
    - {name: tight, key_env: TEST_KEY_TIGHT, requests_per_minute: 1, burst: 2}
    - {name: narrow, key_env: TEST_KEY_NARROW, models: [claude]}
"""
KEYS = {"TEST_KEY_ALPHA": ALPHA, "TEST_KEY_BETA": BETA, "TEST_KEY_TIGHT": TIGHT, "TEST_KEY_NARROW": NARROW}


def cache_catalog(directory: Path, sections: str = SECTIONS) -> Path:
    path = directory / "catalog.yaml"
    path.write_text(TEST_CATALOG.read_text() + sections)
    return path


@pytest.fixture(scope="module")
def cached(mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    catalog = cache_catalog(tmp_path_factory.mktemp("cache"))
    router = start_router(mock_process, artifacts, catalog, "router-cache", env=KEYS)
    try:
        yield router
    finally:
        router.process.stop()


def marker() -> str:
    return "m" + uuid.uuid4().hex[:12]


def post(router: Router, path: str, body: dict[str, Any], key: str = ALPHA, **headers: str) -> httpx.Response:
    sent = {"authorization": f"Bearer {key}", **{k.replace("_", "-"): v for k, v in headers.items()}}
    return router.http.post(path, json=body, headers=sent)


def calls(mock: Mock, provider: str, mark: str) -> int:
    """How many upstream requests carried ``mark``."""
    return sum(1 for r in mock.requests(provider) if mark in json.dumps(r.get("body")))


# --- each API's answers, checked against the official schemas ------------------------------------


def chat_stream(text: str) -> str:
    events = sse_data(text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    for chunk in chunks:
        validate(chunk, "CreateChatCompletionStreamResponse")
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert sum(1 for c in chunks for ch in c["choices"] if ch["finish_reason"]) == 1
    return "".join(ch["delta"].get("content") or "" for c in chunks for ch in c["choices"])


def text_stream(text: str) -> str:
    events = sse_data(text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    for chunk in chunks:
        assert chunk["object"] == "text_completion"
        # ``finish_reason`` and ``usage`` are null until the choice or the stream ends (as
        # test_completions.py explains): checked as the schema's types when set.
        choices = [{**c, "finish_reason": c["finish_reason"] or "stop"} for c in chunk["choices"]]
        shaped = {k: v for k, v in {**chunk, "choices": choices}.items() if v is not None}
        validate(shaped, "CreateCompletionResponse")
    return "".join(ch["text"] for c in chunks for ch in c["choices"])


def responses_events(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"]
        validate(data, "ResponseStreamEvent")
        events.append(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def responses_stream(text: str) -> str:
    events = responses_events(text)
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    final = events[-1]["response"]
    validate(final, "Response")
    assert final["id"] == events[0]["response"]["id"]
    streamed = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert streamed == response_text(final)
    return streamed


def response_text(body: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in body["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


class Api(NamedTuple):
    name: str
    path: str
    provider: str
    body: Callable[[str], dict[str, Any]]
    schema: str
    text: Callable[[dict[str, Any]], str]
    stream_text: Callable[[str], str]


APIS = [
    Api(
        "chat",
        "/v1/chat/completions",
        "openai",
        lambda m: {
            "model": "gpt-5-mini",
            "messages": [{"role": "user", "content": f"Say hello words=4 {m}"}],
        },
        "CreateChatCompletionResponse",
        lambda b: str(b["choices"][0]["message"]["content"]),
        chat_stream,
    ),
    Api(
        "completions",
        "/v1/completions",
        "openai",
        lambda m: {"model": "gpt-3.5-turbo-instruct", "prompt": f"Say hello words=4 {m}", "max_tokens": 20},
        "CreateCompletionResponse",
        lambda b: str(b["choices"][0]["text"]),
        text_stream,
    ),
    Api(
        "responses",  # passed through to the simulated OpenAI Responses API (a reasoning item first)
        "/v1/responses",
        "openai",
        lambda m: {"model": "gpt-5-mini", "input": f"Say hello words=4 {m}"},
        "Response",
        response_text,
        responses_stream,
    ),
    Api(
        "responses-translated",
        "/v1/responses",
        "anthropic",
        lambda m: {"model": "claude", "input": f"Say hello words=4 {m}"},
        "Response",
        response_text,
        responses_stream,
    ),
]
IDS = [api.name for api in APIS]


def stream_of(api: Api, mark: str, **extra: Any) -> dict[str, Any]:
    body = {**api.body(mark), "stream": True, **extra}
    if api.path != "/v1/responses":
        body["stream_options"] = {"include_usage": True}
    return body


def check_hit(answer: httpx.Response, model: str) -> None:
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-router-cache"] == "hit"
    assert answer.headers["x-router-model"] == model
    assert answer.headers["x-router-attempts"] == "0"
    assert int(answer.headers["age"]) >= 0
    assert "x-router-fallback-reason" not in answer.headers


# --- hit and miss, JSON and streams ------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS, ids=IDS)
def test_json_miss_then_hit_without_calling_the_provider(cached: Router, mock: Mock, api: Api) -> None:
    mark = marker()
    first = post(cached, api.path, api.body(mark))
    assert first.status_code == 200 and first.headers["x-router-cache"] == "miss"
    assert float(first.headers["x-router-cost-usd"]) > 0
    second = post(cached, api.path, api.body(mark))
    check_hit(second, first.headers["x-router-model"])
    assert second.headers["x-router-provider"] == first.headers["x-router-provider"]
    assert second.headers["x-router-cost-usd"] == "0.00000000"  # a hit costs nothing
    assert calls(mock, api.provider, mark) == 1
    body = second.json()
    validate(body, api.schema)
    assert api.text(body) == api.text(first.json()) == "lorem ipsum dolor sit"
    if api.path == "/v1/responses":
        # A hit is a Response of its own: a new id, the same output and usage.
        assert body["id"] != first.json()["id"] and body["id"].startswith("resp_")
        assert body["output"] == first.json()["output"] and body["usage"] == first.json()["usage"]
    else:
        assert body == first.json()  # replayed as it was, id included


@pytest.mark.parametrize("api", APIS, ids=IDS)
def test_stream_miss_then_stream_hit_replays_a_proper_stream(cached: Router, mock: Mock, api: Api) -> None:
    mark = marker()
    first = post(cached, api.path, stream_of(api, mark))
    assert first.headers["x-router-cache"] == "miss"
    second = post(cached, api.path, stream_of(api, mark))
    check_hit(second, first.headers["x-router-model"])
    assert second.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert api.stream_text(second.text) == api.stream_text(first.text) == "lorem ipsum dolor sit"
    assert calls(mock, api.provider, mark) == 1
    if api.path != "/v1/responses":  # include_usage: the usage chunk is replayed too, and last
        chunks = [json.loads(e) for e in sse_data(second.text)[:-1]]
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
        assert all(c["usage"] is None for c in chunks[:-1])


@pytest.mark.parametrize("api", APIS, ids=IDS)
def test_a_streamed_miss_is_kept_for_a_json_hit(cached: Router, mock: Mock, api: Api) -> None:
    mark = marker()
    streamed = post(cached, api.path, stream_of(api, mark))
    assert streamed.headers["x-router-cache"] == "miss"
    text = api.stream_text(streamed.text)
    hit = post(cached, api.path, api.body(mark))
    check_hit(hit, streamed.headers["x-router-model"])
    body = hit.json()
    validate(body, api.schema)
    assert api.text(body) == text
    assert calls(mock, api.provider, mark) == 1
    if api.path != "/v1/responses":
        assert body["usage"]["completion_tokens"] == 4  # the stream's usage, assembled in


@pytest.mark.parametrize("api", APIS, ids=IDS)
def test_a_json_miss_is_kept_for_a_stream_hit(cached: Router, mock: Mock, api: Api) -> None:
    mark = marker()
    first = post(cached, api.path, api.body(mark))
    hit = post(cached, api.path, stream_of(api, mark))
    check_hit(hit, first.headers["x-router-model"])
    assert api.stream_text(hit.text) == api.text(first.json())
    assert calls(mock, api.provider, mark) == 1


def test_a_stream_hit_without_include_usage_sends_no_usage(cached: Router, mock: Mock) -> None:
    api = APIS[0]
    mark = marker()
    post(cached, api.path, api.body(mark))
    hit = post(cached, api.path, {**api.body(mark), "stream": True})
    check_hit(hit, "gpt-5-mini")
    chunks = [json.loads(e) for e in sse_data(hit.text)[:-1]]
    assert chunks and all("usage" not in c and c["choices"] for c in chunks)


def test_a_stream_without_include_usage_is_kept_with_its_usage(cached: Router, mock: Mock) -> None:
    api = APIS[0]
    mark = marker()
    streamed = post(cached, api.path, {**api.body(mark), "stream": True})
    assert all("usage" not in json.loads(e) for e in sse_data(streamed.text)[:-1])
    hit = post(cached, api.path, api.body(mark))
    check_hit(hit, "gpt-5-mini")
    assert hit.json()["usage"]["completion_tokens"] == 4  # the router asked the upstream for it anyway


# --- refresh and bypass --------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("api", APIS, ids=IDS)
def test_no_cache_refreshes_and_no_store_bypasses(cached: Router, mock: Mock, api: Api, stream: bool) -> None:
    mark = marker()

    def ask(**headers: str) -> httpx.Response:
        answer = post(cached, api.path, stream_of(api, mark) if stream else api.body(mark), **headers)
        assert answer.status_code == 200, answer.text
        if stream:
            api.stream_text(answer.text)
        else:
            validate(answer.json(), api.schema)
        return answer

    def identity(answer: httpx.Response) -> str:
        """Which upstream answer this is (a replayed Response keeps its output items' ids)."""
        if stream:
            events = [json.loads(d) for d in sse_data(answer.text) if d != "[DONE]"]
            if api.path == "/v1/responses":
                return str(events[-1]["response"]["output"][-1]["id"])
            return str(events[0]["id"])
        body = answer.json()
        return str(body["output"][-1]["id"] if api.path == "/v1/responses" else body["id"])

    assert ask().headers["x-router-cache"] == "miss"
    refreshed = ask(cache_control="no-cache")
    assert refreshed.headers["x-router-cache"] == "miss"  # answered by the model again...
    assert calls(mock, api.provider, mark) == 2
    hit = ask()
    assert hit.headers["x-router-cache"] == "hit"  # ... and kept in place of the first answer
    assert identity(hit) == identity(refreshed)
    bypassed = ask(cache_control="no-store")
    assert bypassed.headers["x-router-cache"] == "bypass"
    assert calls(mock, api.provider, mark) == 3
    assert identity(bypassed) != identity(refreshed)
    assert identity(ask()) == identity(refreshed)  # no-store kept nothing
    assert calls(mock, api.provider, mark) == 3


def test_a_bypassed_answer_is_not_kept(cached: Router, mock: Mock) -> None:
    api = APIS[0]
    mark = marker()
    assert (
        post(cached, api.path, api.body(mark), cache_control="no-store").headers["x-router-cache"] == "bypass"
    )
    assert post(cached, api.path, api.body(mark)).headers["x-router-cache"] == "miss"
    assert calls(mock, api.provider, mark) == 2


# --- embeddings ------------------------------------------------------------------------------------


def test_embeddings_hit_miss_refresh_and_bypass(cached: Router, mock: Mock) -> None:
    mark = marker()
    body = {
        "model": "text-embedding-3-small",
        "input": [f"hello {mark}", "world"],
        "encoding_format": "float",
    }
    path = "/v1/embeddings"
    first = post(cached, path, body)
    assert first.headers["x-router-cache"] == "miss"
    hit = post(cached, path, body)
    check_hit(hit, "text-embedding-3-small")
    assert hit.headers["x-router-cost-usd"] == "0.00000000"
    validate(hit.json(), "CreateEmbeddingResponse")
    assert hit.json() == first.json()
    base64 = post(cached, path, {**body, "encoding_format": "base64"})
    assert base64.headers["x-router-cache"] == "miss"  # another answer: an entry of its own
    assert isinstance(base64.json()["data"][0]["embedding"], str)
    assert calls(mock, "openai", mark) == 2
    assert post(cached, path, body, cache_control="no-cache").headers["x-router-cache"] == "miss"
    assert post(cached, path, body, cache_control="no-store").headers["x-router-cache"] == "bypass"
    assert calls(mock, "openai", mark) == 4


# --- what is never kept --------------------------------------------------------------------------


def test_an_error_is_not_kept(cached: Router, mock: Mock) -> None:
    api = APIS[0]
    mark = marker()
    mock.fault("gpt-5-mini", {"kind": "status", "status": 500})
    failed = post(cached, api.path, api.body(mark))
    assert failed.status_code == 500 and failed.json()["error"]["type"]
    assert failed.headers["x-router-cache"] == "miss"
    answered = post(cached, api.path, api.body(mark))
    assert answered.status_code == 200 and answered.headers["x-router-cache"] == "miss"
    assert post(cached, api.path, api.body(mark)).headers["x-router-cache"] == "hit"
    assert calls(mock, "openai", mark) == 2


@pytest.mark.parametrize(
    ("api", "upstream"), [(APIS[0], "gpt-5-mini"), (APIS[3], "claude-haiku-4-5")], ids=["chat", "responses"]
)
def test_a_stream_cut_after_its_first_output_is_not_kept(
    cached: Router, mock: Mock, api: Api, upstream: str
) -> None:
    mark = marker()
    body = json.loads(json.dumps(stream_of(api, mark)).replace("words=4 ", "words=40 "))
    mock.fault(upstream, {"kind": "cut", "after_chunks": 6}, provider=api.provider)
    cut = post(cached, api.path, body)
    assert cut.status_code == 200 and cut.headers["x-router-cache"] == "miss"
    assert "[DONE]" not in cut.text and "response.completed" not in cut.text
    again = post(cached, api.path, body)
    assert again.headers["x-router-cache"] == "miss"
    api.stream_text(again.text)
    assert calls(mock, api.provider, mark) == 2


def test_a_stream_whose_client_left_is_not_kept(cached: Router, mock: Mock) -> None:
    api = APIS[0]
    mark = marker()
    body = {**api.body(mark), "stream": True}
    body["messages"][0]["content"] = f"Say hello words=30 {mark}"
    mock.fault("gpt-5-mini", {"kind": "trickle", "interval": 0.1})
    with cached.http.stream(
        "POST", api.path, json=body, headers={"authorization": f"Bearer {ALPHA}"}
    ) as answer:
        assert answer.headers["x-router-cache"] == "miss"
        for line in answer.iter_lines():
            if line.startswith("data: "):
                break  # the client leaves after the first event
    time.sleep(0.5)
    again = post(cached, api.path, body)
    assert again.headers["x-router-cache"] == "miss"
    assert len(chat_stream(again.text).split()) == 30
    assert calls(mock, "openai", mark) == 2


# --- scope, admission and state ----------------------------------------------------------------------


def test_each_api_key_has_entries_of_its_own(cached: Router, mock: Mock) -> None:
    api = APIS[0]
    mark = marker()
    assert post(cached, api.path, api.body(mark), key=ALPHA).headers["x-router-cache"] == "miss"
    assert post(cached, api.path, api.body(mark), key=BETA).headers["x-router-cache"] == "miss"
    assert post(cached, api.path, api.body(mark), key=ALPHA).headers["x-router-cache"] == "hit"
    assert post(cached, api.path, api.body(mark), key=BETA).headers["x-router-cache"] == "hit"
    assert calls(mock, "openai", mark) == 2


def test_a_hit_is_still_authenticated_allowed_and_rate_limited(cached: Router, mock: Mock) -> None:
    api = APIS[0]
    mark = marker()
    assert post(cached, api.path, api.body(mark), key=TIGHT).headers["x-router-cache"] == "miss"
    assert post(cached, api.path, api.body(mark), key=TIGHT).headers["x-router-cache"] == "hit"
    limited = post(cached, api.path, api.body(mark), key=TIGHT)  # the burst of two is spent
    assert limited.status_code == 429 and "x-router-cache" not in limited.headers
    assert post(cached, api.path, api.body(mark), key="rk-unknown-0123456789abcdef0").status_code == 401
    assert post(cached, api.path, api.body(mark), key=NARROW).status_code == 403
    assert calls(mock, "openai", mark) == 1


def test_a_response_continuing_another_bypasses_the_cache(cached: Router, mock: Mock) -> None:
    mark = marker()
    first = post(cached, "/v1/responses", {"model": "claude", "input": f"My name is Ada {mark}"})
    follow = {"model": "claude", "input": "What is my name?", "previous_response_id": first.json()["id"]}
    for _ in range(2):
        answer = post(cached, "/v1/responses", follow)
        assert answer.status_code == 200 and answer.headers["x-router-cache"] == "bypass"
    assert calls(mock, "anthropic", mark) == 3


def test_a_responses_hit_is_stored_under_its_own_id_and_can_be_continued(cached: Router, mock: Mock) -> None:
    client = OpenAI(base_url=cached.url + "/v1", api_key=ALPHA, max_retries=0, timeout=20)
    mark = marker()
    first = client.responses.create(model="claude", input=f"My name is Ada {mark}")
    raw = client.responses.with_raw_response.create(model="claude", input=f"My name is Ada {mark}")
    assert raw.headers["x-router-cache"] == "hit"
    hit = raw.parse()
    assert hit.id != first.id and hit.output_text == first.output_text
    assert client.responses.retrieve(hit.id).id == hit.id
    follow = client.responses.create(model="claude", input="What is my name?", previous_response_id=hit.id)
    assert follow.previous_response_id == hit.id
    with client.responses.stream(model="claude", input=f"My name is Ada {mark}") as stream:
        final = stream.get_final_response()  # the SDK's stream helper reads a replayed stream
    assert final.id not in (first.id, hit.id) and final.output_text == first.output_text
    assert client.responses.retrieve(final.id).output_text == first.output_text
    assert calls(mock, "anthropic", mark) == 2  # the first answer, and the continuation (its history)


def test_the_sdk_reads_a_replayed_chat_stream(cached: Router, mock: Mock) -> None:
    client = OpenAI(base_url=cached.url + "/v1", api_key=ALPHA, max_retries=0, timeout=20)
    mark = marker()
    messages: Any = [{"role": "user", "content": f"Say hello words=6 {mark}"}]
    client.chat.completions.create(model="gpt-5-mini", messages=messages)
    stream = client.chat.completions.create(
        model="gpt-5-mini", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "lorem ipsum dolor sit amet consectetur"
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    assert calls(mock, "openai", mark) == 1


def log_lines(router: Router, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for line in router.logs().splitlines():
            if request_id in line and '"route":' in line:
                found: dict[str, Any] = json.loads(line)
                return found
        time.sleep(0.05)
    raise AssertionError(f"no request-log line for {request_id}")


def test_a_hit_costs_nothing_in_its_record_and_is_counted(cached: Router, mock: Mock) -> None:
    api = APIS[0]
    mark = marker()
    miss = post(cached, api.path, api.body(mark), key=BETA)
    hit = post(cached, api.path, api.body(mark), key=BETA)
    missed = log_lines(cached, miss.headers["x-request-id"])
    assert missed["cache"] == "miss" and missed["cost_usd"] > 0 and missed["tokens_out"] == 4
    replayed = log_lines(cached, hit.headers["x-request-id"])
    assert replayed["cache"] == "hit" and replayed["cost_usd"] == 0.0
    assert replayed["model"] == "gpt-5-mini" and replayed["provider"] == "openai"
    assert replayed["attempts"] == [] and "tokens_in" not in replayed and "upstream_ms" not in replayed
    metrics = cached.http.get("/metrics").text
    assert 'router_cache_requests_total{result="hit",route="chat"}' in metrics
    assert 'router_cache_requests_total{result="miss",route="chat"}' in metrics
    hits = [
        line
        for line in metrics.splitlines()
        if line.startswith("router_requests_total{") and 'key="beta"' in line and 'model="gpt-5-mini"' in line
    ]
    assert hits and float(hits[0].rsplit(" ", 1)[1]) >= 2  # the hit is counted as a request too


def test_help_describes_the_cache_in_force(cached: Router) -> None:
    cache = cached.http.get("/help").json()["cache"]
    assert cache["enabled"] is True and cache["ttl_s"] == 600 and cache["max_entries"] == 500
    assert cache["store"].startswith("memory")
