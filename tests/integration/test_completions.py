"""Legacy Completions through the router, with the official OpenAI SDK as the client.

gpt-3.5-turbo-instruct is served natively by the simulated OpenAI ``/v1/completions``; chat models of
every provider kind are served translated (one chat call per prompt).
"""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.integration.conftest import Mock, Router
from tests.openapi import validate

NATIVE = "gpt-3.5-turbo-instruct"
TRANSLATED = ["gpt-5-mini", "claude", "gemini"]
ALL = [NATIVE, *TRANSLATED]


@pytest.fixture()
def client(router: Router, mock: Mock) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key="client-key", max_retries=0, timeout=20)


def _sse(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]


def _stream(router: Router, body: dict[str, Any]) -> tuple[Any, list[str]]:
    with router.http.stream("POST", "/v1/completions", json={"stream": True, **body}) as answer:
        text = answer.read().decode()
    return answer, _sse(text)


def _validate_event(event: dict[str, Any]) -> None:
    """The schema says stream events share the answer's shape, but OpenAI's streams (which the SDK types
    accept) say ``finish_reason: null`` until a choice ends, and ``usage: null`` before the usage event
    when it was asked for (as ``stream_options`` documents); those two fields are checked apart."""
    for choice in event["choices"]:
        assert choice["finish_reason"] in (None, "stop", "length", "content_filter")
    shaped = {
        **event,
        "choices": [{**c, "finish_reason": c["finish_reason"] or "stop"} for c in event["choices"]],
    }
    if shaped.get("usage", {}) is None:
        del shaped["usage"]
    validate(shaped, "CreateCompletionResponse")


# --- success paths -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ALL)
def test_non_stream_answer_is_a_text_completion(client: OpenAI, model: str) -> None:
    raw = client.completions.with_raw_response.create(model=model, prompt="Say hello words=5", max_tokens=20)
    body = json.loads(raw.http_response.text)
    validate(body, "CreateCompletionResponse")
    assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
    completion = raw.parse()
    assert completion.choices[0].text.strip()
    assert completion.choices[0].finish_reason == "stop" and completion.choices[0].index == 0
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["x-router-model"] == model
    assert float(raw.headers["x-router-cost-usd"]) > 0


@pytest.mark.parametrize("model", ALL)
def test_stream_ends_with_done_and_usage_when_asked(client: OpenAI, router: Router, model: str) -> None:
    answer, events = _stream(
        router, {"model": model, "prompt": "Say hello words=5", "stream_options": {"include_usage": True}}
    )
    assert answer.status_code == 200 and answer.headers["x-router-model"] == model
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    for chunk in chunks:
        _validate_event(chunk)
    assert all(c["object"] == "text_completion" for c in chunks)
    text = "".join(ch["text"] for c in chunks for ch in c["choices"])
    assert len(text.split()) == 5
    assert [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"]] == ["stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])


@pytest.mark.parametrize("model", [NATIVE, "claude"])
def test_sdk_stream_without_usage_sees_no_usage(client: OpenAI, model: str) -> None:
    chunks = list(client.completions.create(model=model, prompt="count words=4", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices).split() == [
        "lorem",
        "ipsum",
        "dolor",
        "sit",
    ]
    assert all(c.usage is None and c.choices for c in chunks)


def test_list_prompt_with_n_is_indexed_prompt_major(client: OpenAI) -> None:
    completion = client.completions.create(
        model=NATIVE, prompt=["one words=2", "two words=3"], n=2, max_tokens=10
    )
    assert [c.index for c in completion.choices] == [0, 1, 2, 3]
    assert [len(c.text.split()) for c in completion.choices] == [2, 2, 3, 3]
    validate(completion.model_dump(exclude_unset=True), "CreateCompletionResponse")


def test_translated_n_is_passed_on_and_choices_are_indexed_prompt_major(client: OpenAI, mock: Mock) -> None:
    completion = client.completions.create(model="gpt-5-mini", prompt=["one words=2", "two words=3"], n=2)
    assert sorted(r["body"]["n"] for r in mock.requests()) == [2, 2]
    # The simulated chat API answers one choice whatever n says: choice 0 of prompt i is index i * n.
    assert [(c.index, len(c.text.split())) for c in completion.choices] == [(0, 2), (2, 3)]
    validate(completion.model_dump(exclude_unset=True), "CreateCompletionResponse")


def test_list_prompt_on_anthropic_is_one_call_per_prompt(client: OpenAI, mock: Mock) -> None:
    completion = client.completions.create(model="claude", prompt=["a words=1", "b words=2", "c words=3"])
    assert [len(c.text.split()) for c in completion.choices] == [1, 2, 3]
    assert len(mock.requests(provider="anthropic")) == 3
    assert completion.usage is not None and completion.usage.completion_tokens == 6


@pytest.mark.parametrize("model", ALL)
def test_echo_puts_the_prompt_before_the_text(client: OpenAI, model: str) -> None:
    completion = client.completions.create(model=model, prompt="Echo me words=3\n", echo=True)
    text = completion.choices[0].text
    assert text.startswith("Echo me words=3\n") and len(text.removeprefix("Echo me words=3\n").split()) == 3


def test_translated_stream_echo(router: Router) -> None:
    _, events = _stream(router, {"model": "gemini", "prompt": "Echo words=2\n", "echo": True})
    text = "".join(ch["text"] for e in events[:-1] for ch in json.loads(e)["choices"])
    assert text.startswith("Echo words=2\n") and len(text.removeprefix("Echo words=2\n").split()) == 2


def test_translated_call_is_a_chat_request_with_legacy_defaults(client: OpenAI, mock: Mock) -> None:
    client.completions.create(model="gpt-5-mini", prompt="hi", temperature=0.3, stop=["\n"], user="u1")
    [sent] = mock.requests()
    assert sent["path"].endswith("/chat/completions")
    body = sent["body"]
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["max_completion_tokens"] == 16  # the legacy default, renamed for this provider
    assert (body["temperature"], body["stop"], body["user"]) == (0.3, ["\n"], "u1")
    assert "prompt" not in body and "models" not in body


def test_native_call_forwards_the_clients_body(client: OpenAI, mock: Mock) -> None:
    client.completions.create(
        model=NATIVE, prompt="hi", suffix="!", extra_body={"models": ["gpt-5-mini"], "custom": 1}
    )
    [sent] = mock.requests()
    assert sent["path"].endswith("/completions") and not sent["path"].endswith("/chat/completions")
    assert sent["body"]["suffix"] == "!" and sent["body"]["custom"] == 1
    assert "models" not in sent["body"]


def test_strategy_keyword_is_served_translated(client: OpenAI) -> None:
    raw = client.completions.with_raw_response.create(model="cost", prompt="hi words=2")
    assert raw.headers["x-router-strategy"] == "cost"
    assert raw.headers["x-router-model"] != NATIVE
    assert len(raw.parse().choices[0].text.split()) == 2


def test_request_log_line_says_completions(client: OpenAI, router: Router) -> None:
    raw = client.completions.with_raw_response.create(model="claude", prompt="hi words=2")
    request_id = raw.headers["x-request-id"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in router.logs().splitlines() if request_id in x and x.startswith("{")]
        if lines:
            break
        time.sleep(0.1)
    [line] = [x for x in lines if x.get("msg") == "request"]
    assert line["route"] == "completions" and line["model"] == "claude" and line["status"] == 200
    assert line["tokens_out"] == 2 and "hi words" not in json.dumps(line)


def test_routes_answer_without_v1_prefix(router: Router) -> None:
    answer = router.http.post("/completions", json={"model": NATIVE, "prompt": "hi words=1"})
    assert answer.status_code == 200 and answer.json()["object"] == "text_completion"


# --- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [("suffix", "end."), ("logprobs", 2), ("best_of", 3)])
def test_native_only_fields_on_a_translated_model_are_refused(client: OpenAI, field: str, value: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="claude", prompt="hi", **{field: value})
    assert caught.value.body["param"] == field  # type: ignore[index]
    assert "chat API" in caught.value.body["message"]  # type: ignore[index]


def test_token_prompt_on_a_chat_model_cannot_be_detokenised(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="gpt-5-mini", prompt=[1212, 318])
    assert caught.value.body["param"] == "prompt" and "detokenise" in caught.value.body["message"]  # type: ignore[index]


def test_token_prompt_on_the_native_model_is_forwarded(client: OpenAI) -> None:
    completion = client.completions.create(model=NATIVE, prompt=[[1212, 318], [257]], max_tokens=5)
    assert len(completion.choices) == 2 and all(c.text for c in completion.choices)


def test_list_prompt_stream_on_a_chat_model_is_refused(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="gemini", prompt=["a", "b"], stream=True)
    assert caught.value.body["param"] == "prompt"  # type: ignore[index]


def test_list_prompt_stream_on_the_native_model_works(router: Router) -> None:
    _, events = _stream(router, {"model": NATIVE, "prompt": ["a words=1", "b words=2"]})
    assert events[-1] == "[DONE]"
    indexes = {ch["index"] for e in events[:-1] for ch in json.loads(e)["choices"]}
    assert indexes == {0, 1}


def test_chat_with_an_instruct_model_is_not_supported(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=NATIVE, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_supported"
    assert "/v1/completions" in caught.value.body["message"]  # type: ignore[index]


def test_embeddings_model_is_not_supported(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="text-embedding-3-small", prompt="hi")
    assert caught.value.code == "model_not_supported"


def test_unknown_model_is_not_found(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.completions.create(model="gpt-3.5-turbo-instrukt", prompt="hi")
    assert caught.value.code == "model_not_found"
    assert NATIVE in caught.value.body["message"]  # type: ignore[index]


def test_decode_error_names_the_parameter(router: Router) -> None:
    answer = router.http.post("/v1/completions", json={"model": NATIVE, "prompt": "x", "temperature": "hot"})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "temperature"
    validate(answer.json(), "ErrorResponse")


def test_native_failure_falls_back_to_a_chat_model(client: OpenAI, mock: Mock) -> None:
    mock.fault(NATIVE, {"kind": "status", "status": 503})
    raw = client.completions.with_raw_response.create(
        model=NATIVE, prompt="hi words=2", extra_body={"models": ["gpt-5-mini"]}
    )
    assert raw.headers["x-router-model"] == "gpt-5-mini"
    assert raw.headers["x-router-fallback-reason"] == "server_error"
    assert len(raw.parse().choices[0].text.split()) == 2


def test_stream_cut_after_output_ends_with_an_error_event_and_no_done(router: Router, mock: Mock) -> None:
    mock.fault("gpt-5-mini", {"kind": "cut", "after_chunks": 3})
    _, events = _stream(router, {"model": "gpt-5-mini", "prompt": "long words=30"})
    assert events[-1] != "[DONE]"
    assert "error" in json.loads(events[-1])
