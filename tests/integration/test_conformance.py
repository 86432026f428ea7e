"""One scenario list, run against every adapter through the router with the official OpenAI SDK.

Each subject is a catalog model served by a different wire format, all of them simulated on real
sockets. A scenario a provider cannot express is declared in ``UNSUPPORTED`` with its reason.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.integration.conftest import Mock, Router

# catalog id → (simulated provider, upstream model name)
SUBJECTS = {
    "gpt-5-mini": ("openai", "gpt-5-mini"),
    "claude": ("anthropic", "claude-haiku-4-5"),
    "gemini": ("gemini", "gemini-3-flash-preview"),
}
UNSUPPORTED = {
    ("gpt-5-mini", "overloaded_529"): "OpenAI has no 529 status; its overload is a plain 503",
    ("gemini", "overloaded_529"): "Gemini reports overload as 503 UNAVAILABLE",
    ("gpt-5-mini", "retry_delay_in_body"): "OpenAI sends Retry-After as a header",
    ("claude", "retry_delay_in_body"): "Anthropic sends Retry-After as a header",
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}
PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture(params=list(SUBJECTS))
def subject(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def client(router: Router, mock: Mock) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key="k", max_retries=0, timeout=20)


def skip_unsupported(subject: str, scenario: str) -> None:
    reason = UNSUPPORTED.get((subject, scenario))
    if reason:
        pytest.skip(reason)


def fault(mock: Mock, subject: str, spec: dict[str, Any]) -> None:
    provider, upstream = SUBJECTS[subject]
    mock.fault(upstream, spec, provider=provider)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def test_simple_answer(client: OpenAI, subject: str) -> None:
    raw = client.chat.completions.with_raw_response.create(model=subject, messages=user("hello there"))
    completion = raw.parse()
    assert raw.headers["x-router-model"] == subject
    assert "hello there" in (completion.choices[0].message.content or "")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_stream_with_usage(client: OpenAI, subject: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model=subject, messages=user("say words=5"), stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.split() == ["lorem", "ipsum", "dolor", "sit", "amet"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5


def test_tool_round_trip(client: OpenAI, subject: str) -> None:
    messages: list[Any] = user("get_weather please")
    first = client.chat.completions.create(model=subject, messages=messages, tools=[WEATHER])  # type: ignore[list-item]
    assert first.choices[0].finish_reason == "tool_calls"
    call = (first.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 4}'},
    ]
    second = client.chat.completions.create(model=subject, messages=messages, tools=[WEATHER])  # type: ignore[list-item]
    assert second.choices[0].finish_reason == "stop"
    assert "temp_c" in (second.choices[0].message.content or "")


def test_tool_round_trip_streamed_with_parallel_calls(client: OpenAI, subject: str) -> None:
    messages: list[Any] = user("get_weather and get_time")
    with client.chat.completions.stream(model=subject, messages=messages, tools=[WEATHER, TIME]) as stream:  # type: ignore[list-item]
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert len({c.id for c in calls}) == 2 and final.choices[0].finish_reason == "tool_calls"
    messages += [final.choices[0].message.model_dump(exclude_none=True, exclude={"parsed"})]
    messages += [
        {"role": "tool", "tool_call_id": c.id, "content": f"result {i}"} for i, c in enumerate(calls)
    ]
    chunks = list(
        client.chat.completions.create(model=subject, messages=messages, tools=[WEATHER, TIME], stream=True)
    )  # type: ignore[list-item]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "result 0" in text and "result 1" in text


def test_image_input(client: OpenAI, subject: str, mock: Mock) -> None:
    content = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": PNG}}]
    completion = client.chat.completions.create(
        model=subject, messages=[{"role": "user", "content": content}]
    )  # type: ignore[misc, list-item]
    assert "what is this" in (completion.choices[0].message.content or "")
    provider, _ = SUBJECTS[subject]
    assert PNG.split(",")[1] in json.dumps(mock.requests(provider)[-1]["body"])


def test_json_schema(client: OpenAI, subject: str) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model=subject,
        messages=user("json please"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": schema, "strict": True},
        },
    )
    assert completion.choices[0].message.content


def test_stop_sequence(client: OpenAI, subject: str) -> None:
    completion = client.chat.completions.create(model=subject, messages=user("say words=6"), stop=["sit"])
    assert completion.choices[0].finish_reason == "stop"
    assert "sit" not in (completion.choices[0].message.content or "") and "dolor" in (
        completion.choices[0].message.content or ""
    )


def test_max_tokens_finish(client: OpenAI, subject: str) -> None:
    completion = client.chat.completions.create(model=subject, messages=user("say words=20"), max_tokens=3)
    assert completion.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("status", "exception"), [(400, openai.BadRequestError), (500, openai.InternalServerError)]
)
def test_upstream_status_errors(
    client: OpenAI, subject: str, mock: Mock, status: int, exception: type[Exception]
) -> None:
    fault(mock, subject, {"kind": "status", "status": status})
    with pytest.raises(exception) as info:
        client.chat.completions.create(model=subject, messages=user("hi"))
    assert info.value.status_code == status  # type: ignore[attr-defined]


def test_upstream_401_is_the_routers_key(client: OpenAI, subject: str, mock: Mock) -> None:
    fault(mock, subject, {"kind": "status", "status": 401})
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=subject, messages=user("hi"))
    assert info.value.status_code == 502 and "credentials" in info.value.message


def test_rate_limit_with_retry_after(client: OpenAI, subject: str, mock: Mock) -> None:
    fault(mock, subject, {"kind": "status", "status": 429, "retry_after": 9})
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=subject, messages=user("hi"))
    assert info.value.response.headers["retry-after"] == "9"


def test_overloaded_529(client: OpenAI, subject: str, mock: Mock) -> None:
    skip_unsupported(subject, "overloaded_529")
    fault(mock, subject, {"kind": "status", "status": 529})
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=subject, messages=user("hi"))
    assert info.value.status_code == 503


def test_retry_delay_in_body(client: OpenAI, subject: str, mock: Mock) -> None:
    skip_unsupported(subject, "retry_delay_in_body")
    fault(mock, subject, {"kind": "status", "status": 429, "retry_after": 12})
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=subject, messages=user("hi"))
    assert info.value.response.headers["retry-after"] == "12"


def test_read_timeout(client: OpenAI, subject: str, mock: Mock) -> None:
    fault(mock, subject, {"kind": "timeout", "delay": 6})
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=subject, messages=user("hi"))
    assert info.value.status_code == 504


def test_stall_before_first_token(client: OpenAI, subject: str, mock: Mock) -> None:
    fault(mock, subject, {"kind": "stall", "delay": 5})
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=subject, messages=user("hi"), stream=True)
    assert info.value.status_code == 504


def test_stream_cut_mid_way(router: Router, subject: str, mock: Mock) -> None:
    fault(mock, subject, {"kind": "cut", "after_chunks": 4})
    body = {"model": subject, "messages": user("say words=30"), "stream": True}
    with router.http.stream("POST", "/v1/chat/completions", json=body) as answer:
        assert answer.status_code == 200
        events = [line[6:] for line in answer.read().decode().split("\n") if line.startswith("data: ")]
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["type"] == "upstream_stream_interrupted"
