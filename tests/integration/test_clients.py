"""Real clients' requests, served as they are sent: n8n (recorded bodies), Cursor, LangChain.

The n8n bodies in tests/fixtures/n8n are what n8n 2.40 sends (OpenAI node v1 and v2, the Chat Model
node, an AI Agent's tool loop); each is replayed against an OpenAI, an Anthropic and a Gemini model,
with the base URL as a user may type it: with ``/v1`` and without.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.integration.conftest import Router
from tests.openapi import validate

MODELS = ["gpt-5-mini", "claude", "gemini"]
N8N = Path(__file__).resolve().parents[1] / "fixtures" / "n8n"


def _recording(name: str, model: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    recorded = json.loads((N8N / f"{name}.json").read_text())
    body = recorded["body"]
    body["model"] = model
    return recorded["path"], recorded["headers"], body


def _sse_data(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.split("\n") if line.startswith("data: {")]


@pytest.fixture(params=["/v1", ""], ids=["base-with-v1", "base-without-v1"])
def base(request: pytest.FixtureRequest, router: Router) -> str:
    return router.url + str(request.param)


# --- n8n -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_n8n_openai_node_v1_chat_json(base: str, model: str) -> None:
    path, headers, body = _recording("openai-node-v1-chat", model)
    answer = httpx.post(f"{base}/{path}", json=body, headers=headers, timeout=20)
    assert answer.status_code == 200, answer.text
    completion = answer.json()
    validate(completion, "CreateChatCompletionResponse")
    assert completion["choices"][0]["message"]["content"]
    assert completion["usage"]["prompt_tokens"] > 0


@pytest.mark.parametrize("model", MODELS)
def test_n8n_openai_node_v2_responses(base: str, model: str) -> None:
    path, headers, body = _recording("openai-node-v2-responses", model)
    answer = httpx.post(f"{base}/{path}", json=body, headers=headers, timeout=20)
    assert answer.status_code == 200, answer.text
    response = answer.json()
    validate(response, "Response")
    # What n8n reads: message items with output_text, and the token counts.
    messages = [item for item in response["output"] if item["type"] == "message"]
    assert messages[0]["content"][0] == {
        "type": "output_text",
        "text": "lorem ipsum dolor sit",
        "annotations": [],
        "logprobs": [],
    }
    assert response["usage"]["input_tokens"] > 0
    assert response["usage"]["output_tokens"] == 4


@pytest.mark.parametrize("model", MODELS)
def test_n8n_openai_node_v2_tool_loop(base: str, model: str) -> None:
    path, headers, body = _recording("openai-node-v2-responses-tools", model)
    first = httpx.post(f"{base}/{path}", json=body, headers=headers, timeout=20).json()
    calls = [item for item in first["output"] if item["type"] == "function_call"]
    assert calls and calls[0]["name"] == "calculator"
    # n8n pushes the call (and reasoning) items back verbatim, then the outputs, and re-posts.
    echoed = [item for item in first["output"] if item["type"] in ("function_call", "reasoning")]
    outputs = [{"type": "function_call_output", "call_id": c["call_id"], "output": "42"} for c in calls]
    body["input"] = [*body["input"], *echoed, *outputs]
    second = httpx.post(f"{base}/{path}", json=body, headers=headers, timeout=20)
    assert second.status_code == 200, second.text
    texts = [p["text"] for i in second.json()["output"] if i["type"] == "message" for p in i["content"]]
    assert "42" in "".join(texts)


@pytest.mark.parametrize("model", MODELS)
def test_n8n_chat_model_streams_responses(base: str, model: str) -> None:
    path, headers, body = _recording("chat-model-v1.3-responses-stream", model)
    answer = httpx.post(f"{base}/{path}", json=body, headers=headers, timeout=20)
    assert answer.status_code == 200, answer.text
    events = _sse_data(answer.text)
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.completed"
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "lorem ipsum dolor"


@pytest.mark.parametrize("model", MODELS)
def test_n8n_agent_streams_chat_with_usage(base: str, model: str) -> None:
    path, headers, body = _recording("chat-model-stream-chat", model)
    answer = httpx.post(f"{base}/{path}", json=body, headers=headers, timeout=20)
    chunks = _sse_data(answer.text)
    assert answer.text.rstrip().endswith("data: [DONE]")
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == (
        "lorem ipsum dolor"
    )
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize("model", MODELS)
def test_n8n_agent_tool_loop_on_chat(base: str, model: str) -> None:
    path, headers, body = _recording("agent-tool-loop-chat", model)
    answer = httpx.post(f"{base}/{path}", json=body, headers=headers, timeout=20)
    assert answer.status_code == 200, answer.text
    completion = answer.json()
    validate(completion, "CreateChatCompletionResponse")
    assert "42" in completion["choices"][0]["message"]["content"]


# --- Cursor ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["codex", "claude", "gemini"])
def test_cursor_responses_shaped_body_on_chat_completions(router: Router, model: str) -> None:
    """Cursor sends some models a Responses body (``input``, flat tools) on /chat/completions and
    reads chat chunks back."""
    body = {
        "model": model,
        "stream": True,
        "input": [
            {"role": "system", "content": "You are a coding agent"},
            {"role": "user", "content": [{"type": "input_text", "text": "Say hello words=3"}]},
        ],
        "tools": [
            {"type": "function", "name": "read_file", "parameters": {"type": "object", "properties": {}}}
        ],
        "tool_choice": "none",
    }
    answer = httpx.post(router.url + "/v1/chat/completions", json=body, timeout=20)
    assert answer.status_code == 200, answer.text
    chunks = _sse_data(answer.text)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == (
        "lorem ipsum dolor"
    )
    assert answer.text.rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize("model", ["gpt-5-mini", "claude", "gemini"])
def test_cursor_tool_turn_with_null_content_and_responses_items(router: Router, model: str) -> None:
    body = {
        "model": model,
        "messages": [
            {"role": "user", "content": [{"type": "input_text", "text": "Read main.py"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_c1",
                        "type": "function",
                        "function": {"name": "read_file", "arguments": "{}"},
                    }
                ],
            },
            {"type": "function_call_output", "call_id": "call_c1", "output": "print('hi')"},
        ],
        "tools": [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}],
        "stream": False,
    }
    answer = httpx.post(router.url + "/v1/chat/completions", json=body, timeout=20)
    assert answer.status_code == 200, answer.text
    assert "print('hi')" in answer.json()["choices"][0]["message"]["content"]


def test_stream_options_for_a_responses_only_model_are_handled(router: Router) -> None:
    body = {
        "model": "codex",
        "messages": [{"role": "user", "content": "Say hello words=2"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    answer = httpx.post(router.url + "/v1/chat/completions", json=body, timeout=20)
    chunks = _sse_data(answer.text)
    assert chunks[-1]["usage"]["completion_tokens"] == 2


# --- LangChain -------------------------------------------------------------------------------------


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("responses_api", [False, True], ids=["chat", "responses"])
def test_langchain_chat_openai(router: Router, model: str, responses_api: bool) -> None:
    paths: list[str] = []
    http = httpx.Client(timeout=20, event_hooks={"request": [lambda r: paths.append(r.url.path)]})
    llm = ChatOpenAI(
        model=model,
        base_url=router.url + "/v1",
        api_key="client-key",  # type: ignore[arg-type]
        use_responses_api=responses_api,
        max_retries=0,
        http_client=http,
    )
    answer = llm.invoke("Say hello words=3")
    assert answer.text == "lorem ipsum dolor" or answer.content == "lorem ipsum dolor"
    streamed = "".join(chunk.text for chunk in llm.stream("Say hello words=4"))
    assert streamed == "lorem ipsum dolor sit"

    with_tools = llm.bind_tools([get_weather])
    question = HumanMessage("Weather in Oslo? get_weather")
    call_message = with_tools.invoke([question])
    assert isinstance(call_message, AIMessage)
    (call,) = call_message.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "Oslo"}
    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
    final = with_tools.invoke([question, call_message, result])
    assert "sunny in Oslo" in final.text
    assert set(paths) == {"/v1/responses" if responses_api else "/v1/chat/completions"}
