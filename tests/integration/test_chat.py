"""Chat Completions through the router, with the official OpenAI SDK as the client.

The router runs under Granian on a real port; the upstream is the simulated OpenAI provider on another.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.integration.conftest import MAX_BODY, SECRET_KEY, Mock, Router
from tests.openapi import validate

USER = [{"role": "user", "content": "Say hello words=6"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}


@pytest.fixture()
def client(router: Router, mock: Mock) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key="client-key", max_retries=0, timeout=20)


def _sse_events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]


# --- success paths -------------------------------------------------------------------------------


def test_non_stream_answer_has_openai_shape_and_router_headers(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-5-mini", messages=USER)  # type: ignore[arg-type]
    completion = raw.parse()
    assert completion.choices[0].message.content == "lorem ipsum dolor sit amet consectetur"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 6
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 6
    assert raw.headers["x-router-model"] == "gpt-5-mini"
    assert raw.headers["x-router-provider"] == "openai"
    assert raw.headers["x-request-id"].startswith("req_")
    validate(json.loads(raw.http_response.text), "CreateChatCompletionResponse")


def test_stream_assembles_text_with_finish_reason_and_usage_chunk(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="mini",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "lorem ipsum dolor sit amet consectetur"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 6
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_wire_format_ends_with_done_and_validates(router: Router, mock: Mock) -> None:
    body = {"model": "gpt-5-mini", "messages": USER, "stream": True}
    with router.http.stream("POST", "/v1/chat/completions", json=body) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/event-stream; charset=utf-8"  # one charset
        assert answer.headers["x-router-model"] == "gpt-5-mini"
        text = answer.read().decode()
    events = _sse_events(text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    # Without include_usage the client sees no usage at all, though the router asked upstream for it.
    assert all("usage" not in c for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert sum(1 for c in chunks if c["choices"][0]["finish_reason"]) == 1
    for chunk in chunks:
        validate(chunk, "CreateChatCompletionStreamResponse")


def test_the_router_starts_without_framework_warnings(router: Router) -> None:
    assert "Warning" not in router.logs()


def test_routes_answer_without_v1_prefix(router: Router, client: OpenAI) -> None:
    bare = OpenAI(base_url=router.url, api_key="k", max_retries=0)
    completion = bare.chat.completions.create(model="gpt-5-mini", messages=USER)  # type: ignore[arg-type]
    assert completion.choices[0].message.content
    assert {m.id for m in bare.models.list()} == {m.id for m in client.models.list()}


def test_tool_calls_non_stream(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-5-mini",
        messages=[{"role": "user", "content": "get_weather and get_time please"}],
        tools=[WEATHER_TOOL, TIME_TOOL],  # type: ignore[list-item]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    assert all(c.id.startswith("call_") for c in calls)


def test_tool_calls_streamed_assemble_once_each(client: OpenAI) -> None:
    with client.chat.completions.stream(
        model="gpt-5-mini",
        messages=[{"role": "user", "content": "get_weather and get_time please"}],
        tools=[WEATHER_TOOL, TIME_TOOL],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert json.loads(calls[1].function.arguments) == {"zone": "example"}  # type: ignore[union-attr]
    assert len({c.id for c in calls}) == 2
    assert final.choices[0].finish_reason == "tool_calls"


def test_tool_round_trip(client: OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "get_weather"}]
    first = client.chat.completions.create(model="gpt-5-mini", messages=messages, tools=[WEATHER_TOOL])  # type: ignore[list-item]
    call = (first.choices[0].message.tool_calls or [])[0]
    messages += [first.choices[0].message.model_dump(exclude_none=True)]
    messages += [{"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 4}'}]
    second = client.chat.completions.create(model="gpt-5-mini", messages=messages, tools=[WEATHER_TOOL])  # type: ignore[list-item]
    assert second.choices[0].finish_reason == "stop"
    assert '{"temp_c": 4}' in (second.choices[0].message.content or "")


def test_unknown_fields_reach_the_upstream_untouched(client: OpenAI, mock: Mock) -> None:
    client.chat.completions.create(
        model="gpt-5-mini",
        messages=USER,  # type: ignore[arg-type]
        max_tokens=50,
        seed=7,
        logprobs=True,
        metadata={"team": "a"},
        extra_body={"future_field": {"nested": [1, 2]}},
    )
    sent = mock.requests()[-1]
    body = sent["body"]
    assert body["model"] == "gpt-5-mini"
    assert body["seed"] == 7 and body["logprobs"] is True and body["metadata"] == {"team": "a"}
    assert body["future_field"] == {"nested": [1, 2]}
    # GPT-5 models refuse max_tokens: the router renames it for this provider.
    assert "max_tokens" not in body and body["max_completion_tokens"] == 50
    assert sent["headers"]["authorization"] == f"Bearer {SECRET_KEY}"


def test_flex_alias_sends_the_flex_tier(client: OpenAI, mock: Mock) -> None:
    completion = client.chat.completions.create(model="mini-flex", messages=USER)  # type: ignore[arg-type]
    assert mock.requests()[-1]["body"]["service_tier"] == "flex"
    assert completion.service_tier == "flex"


def test_models_list_has_models_aliases_and_strategies(client: OpenAI, router: Router) -> None:
    listed = {m.id: m for m in client.models.list()}
    assert {"gpt-5-mini", "mini", "mini-flex", "fast", "balanced-flex", "cost"} <= set(listed)
    assert listed["gpt-5-mini"].owned_by == "openai"
    assert listed["fast"].owned_by == "router"
    one = router.http.get("/v1/models/mini").json()
    assert one["router"] == {"kind": "alias", "target": "gpt-5-mini", "provider": "openai"}
    validate(router.http.get("/v1/models").json(), "ListModelsResponse")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_fallback_serves_from_the_next_model(client: OpenAI, mock: Mock) -> None:
    mock.fault("primary-upstream", {"kind": "status", "status": 503})
    raw = client.chat.completions.with_raw_response.create(model="primary", messages=USER)  # type: ignore[arg-type]
    assert raw.headers["x-router-model"] == "backup"
    assert raw.headers["x-router-attempts"] == "2"
    assert raw.headers["x-router-fallback-reason"] == "server_error"
    assert raw.parse().choices[0].message.content


def test_strategy_keyword_routes_to_a_configured_model(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="cost", messages=USER)  # type: ignore[arg-type]
    assert raw.headers["x-router-strategy"] == "cost"
    # local-llama is free, but it is excluded when the request needs tools.
    assert raw.headers["x-router-model"] == "local-llama"
    tools = client.chat.completions.with_raw_response.create(
        model="cost",
        messages=USER,
        tools=[WEATHER_TOOL],  # type: ignore[arg-type, list-item]
    )
    assert tools.headers["x-router-model"] == "backup"


# --- client errors -------------------------------------------------------------------------------


def test_unknown_model_is_not_found_with_suggestions(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-5-mimi", messages=USER)  # type: ignore[arg-type]
    assert info.value.code == "model_not_found"
    assert "gpt-5-mini" in info.value.message


def test_an_unknown_model_gets_the_same_hint_on_the_models_route(client: OpenAI) -> None:
    for call in (
        lambda: client.models.retrieve("nope"),
        lambda: client.chat.completions.create(model="nope", messages=USER),  # type: ignore[arg-type]
    ):
        with pytest.raises(openai.NotFoundError) as info:
            call()
        assert info.value.code == "model_not_found"
        assert "GET /v1/models lists every model, alias and strategy" in info.value.message


def test_wrong_types_name_the_field(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-5-mini", messages=[{"role": "user", "content": 5}])  # type: ignore[list-item, misc]
    assert info.value.param == "messages[0].content"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-5-mini", messages=USER, temperature="hot")  # type: ignore[arg-type]
    assert info.value.param == "temperature"


def test_malformed_json_is_a_bad_request(router: Router) -> None:
    answer = router.http.post(
        "/v1/chat/completions",
        content=b'{"model": "gpt-5-mini", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and "JSON" in error["message"]
    assert answer.headers["x-request-id"].startswith("req_")


def test_oversized_body_is_413(client: OpenAI) -> None:
    big = [{"role": "user", "content": "x" * (MAX_BODY + 1)}]
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gpt-5-mini", messages=big)  # type: ignore[arg-type]
    assert info.value.status_code == 413
    assert info.value.body["type"] == "invalid_request_error"  # type: ignore[index]


def test_unknown_route_and_wrong_method_get_envelopes(router: Router) -> None:
    missing = router.http.get("/v1/nothing-here")
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = router.http.get("/v1/chat/completions")
    assert wrong.status_code == 405 and "error" in wrong.json()


def test_missing_provider_key_is_503_naming_the_variable(client: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="needs-key", messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 503
    assert "TEST_NEVER_SET_KEY" in info.value.message
    assert info.value.response.headers["x-should-retry"] == "false"


# --- upstream failures ---------------------------------------------------------------------------


def test_upstream_500_passes_back_status_and_message(client: OpenAI, mock: Mock) -> None:
    mock.fault("gpt-5-mini", {"kind": "status", "status": 500, "message": "upstream exploded"})
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-5-mini", messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 500
    assert "upstream exploded" in info.value.message


def test_upstream_400_passes_back_with_its_param(client: OpenAI, mock: Mock) -> None:
    mock.fault(
        "gpt-5-mini", {"kind": "status", "status": 400, "message": "bad thing", "code": "invalid_value"}
    )
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-5-mini", messages=USER)  # type: ignore[arg-type]
    assert info.value.code == "invalid_value"


def test_upstream_429_keeps_retry_after(client: OpenAI, mock: Mock) -> None:
    mock.fault("gpt-5-mini", {"kind": "status", "status": 429, "retry_after": 7})
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-5-mini", messages=USER)  # type: ignore[arg-type]
    assert info.value.response.headers["retry-after"] == "7"


def test_upstream_timeout_is_504(client: OpenAI, mock: Mock) -> None:
    mock.fault("gpt-5-mini", {"kind": "timeout", "delay": 6})
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-5-mini", messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 504
    assert info.value.type == "upstream_timeout"  # type: ignore[attr-defined]


def test_refused_connection_is_502_unreachable(client: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="dead-model", messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert info.value.type == "upstream_unreachable"  # type: ignore[attr-defined]


def test_dropped_connection_is_502(client: OpenAI, mock: Mock) -> None:
    mock.fault("gpt-5-mini", {"kind": "drop"})
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-5-mini", messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 502


def test_malformed_upstream_answer_is_502_bad_response(client: OpenAI, mock: Mock) -> None:
    mock.fault("gpt-5-mini", {"kind": "malformed"})
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-5-mini", messages=USER)  # type: ignore[arg-type]
    assert info.value.type == "upstream_bad_response"  # type: ignore[attr-defined]


def test_stream_cut_after_output_ends_with_error_and_no_done(router: Router, mock: Mock) -> None:
    mock.fault("gpt-5-mini", {"kind": "cut", "after_chunks": 3})
    body = {"model": "gpt-5-mini", "messages": USER, "stream": True}
    with router.http.stream("POST", "/v1/chat/completions", json=body) as answer:
        assert answer.status_code == 200
        events = _sse_events(answer.read().decode())
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert last["error"]["type"] == "upstream_stream_interrupted"
    assert any(json.loads(e)["choices"][0]["delta"].get("content") for e in events[:-1])


def test_stream_cut_raises_in_the_sdk(client: OpenAI, mock: Mock) -> None:
    mock.fault("gpt-5-mini", {"kind": "cut", "after_chunks": 3})
    stream = client.chat.completions.create(model="gpt-5-mini", messages=USER, stream=True)  # type: ignore[arg-type]
    with pytest.raises(openai.APIError, match="broke off"):
        for _ in stream:
            pass


def test_in_band_upstream_error_mid_stream_is_relayed(client: OpenAI, mock: Mock) -> None:
    mock.fault("gpt-5-mini", {"kind": "stream_error", "after_chunks": 3})
    stream = client.chat.completions.create(model="gpt-5-mini", messages=USER, stream=True)  # type: ignore[arg-type]
    with pytest.raises(openai.APIError, match="mid-stream"):
        for _ in stream:
            pass


def test_stream_failure_before_first_token_is_a_plain_error(client: OpenAI, mock: Mock) -> None:
    mock.fault("gpt-5-mini", {"kind": "cut", "after_chunks": 1})
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-5-mini", messages=USER, stream=True)  # type: ignore[arg-type]
    assert info.value.status_code == 502


def test_stream_stall_before_first_token_times_out(client: OpenAI, mock: Mock) -> None:
    mock.fault("gpt-5-mini", {"kind": "stall", "delay": 5})
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-5-mini", messages=USER, stream=True)  # type: ignore[arg-type]
    assert info.value.status_code == 504
    assert "first-token" in info.value.message


def test_stream_falls_back_before_the_commit_point(client: OpenAI, mock: Mock) -> None:
    mock.fault("primary-upstream", {"kind": "stream_error", "after_chunks": 1})
    raw = client.chat.completions.with_raw_response.create(model="primary", messages=USER, stream=True)  # type: ignore[arg-type]
    assert raw.headers["x-router-model"] == "backup"
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "lorem ipsum dolor sit amet consectetur"


def test_upstream_key_never_reaches_answers_or_logs(client: OpenAI, mock: Mock, router: Router) -> None:
    mock.fault(
        "gpt-5-mini",
        {"kind": "status", "status": 401, "message": f"Incorrect API key provided: {SECRET_KEY}"},
    )
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gpt-5-mini", messages=USER)  # type: ignore[arg-type]
    # The router's own key was refused: a gateway failure, not the client's authentication error.
    assert info.value.status_code == 502
    assert "TEST_OPENAI_KEY" in info.value.message
    assert SECRET_KEY not in info.value.response.text
    assert SECRET_KEY[:12] not in info.value.response.text
    assert SECRET_KEY not in router.logs()
