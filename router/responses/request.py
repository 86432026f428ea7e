"""Responses API requests: the validated request, and its translation to a Chat Completions body.

Every input form a client may send is accepted (a string; message items with or without
``"type": "message"``; string or part content; echoed ``function_call`` and ``reasoning`` items with
their extra fields; ``function_call_output``). What has no chat equivalent is refused with a 400 that
names the field, never dropped silently. See ``shared/reference/openai-responses.md`` §4.1.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from router.errors import InvalidRequest
from router.jsonschema import check_schema

# Hosted tools run inside OpenAI's platform; a router cannot execute them for any provider.
HOSTED_TOOLS = frozenset(
    {
        "web_search",
        "web_search_preview",
        "web_search_2025_08_26",
        "web_search_preview_2025_03_11",
        "file_search",
        "code_interpreter",
        "mcp",
        "image_generation",
        "local_shell",
        "shell",
        "computer_use_preview",
        "computer_use",
        "apply_patch",
        "custom",
    }
)
# Chat Completions carries these the same way under the same name.
_SAME_NAME = ("temperature", "top_p", "parallel_tool_calls", "service_tier", "user", "safety_identifier")
_SAME_NAME_EXTRA = ("prompt_cache_key", "prompt_cache_retention", "cache_control")


class ResponsesRequest(Struct):
    """A ``POST /v1/responses`` body as the router reads it; ``raw`` is the body as sent."""

    model: str
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    background: bool | None = None
    max_output_tokens: Annotated[int, Meta(ge=1)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    include: list[str] | None = None
    service_tier: str | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    truncation: str | None = None
    max_tool_calls: Annotated[int, Meta(ge=1)] | None = None
    conversation: str | dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    # The router's ordered fallback list, as on chat.
    models: list[str] | None = None
    raw: dict[str, Any] = msgspec.field(default_factory=dict, name="__router_raw__")

    @property
    def stores(self) -> bool:
        return self.store is not False  # Responses stores by default


def check(request: ResponsesRequest) -> None:
    """Refuse what no provider behind this router can do, naming the field."""
    if request.background:
        raise InvalidRequest(
            "Background responses are not supported by this router: send 'background': false "
            "(or leave it out) and wait for the answer, or stream it.",
            param="background",
        )
    if request.conversation is not None:
        raise InvalidRequest(
            "Conversation objects are not supported by this router; continue a conversation with "
            "'previous_response_id' instead.",
            param="conversation",
        )
    if request.prompt is not None:
        raise InvalidRequest(
            "Stored prompt templates ('prompt') live in an OpenAI project and are not supported by this "
            "router; send the prompt text as 'instructions' and 'input'.",
            param="prompt",
        )
    if request.stream_options is not None and not request.stream:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )
    if request.truncation not in (None, "disabled", "auto"):
        raise InvalidRequest(
            f"Invalid value for 'truncation': {request.truncation!r}; use 'auto' or 'disabled'.",
            param="truncation",
        )
    for i, tool in enumerate(request.tools or ()):
        kind = tool.get("type")
        if isinstance(kind, str) and kind in HOSTED_TOOLS:
            raise InvalidRequest(
                f"The hosted tool '{kind}' runs inside OpenAI's platform and is not supported by this "
                "router; only function tools are.",
                param=f"tools[{i}].type",
                code="unsupported_tool",
            )
        if kind != "function":
            raise InvalidRequest(
                f"Invalid value for 'tools[{i}].type': {kind!r}; this router supports function tools.",
                param=f"tools[{i}].type",
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise InvalidRequest(f"Missing required parameter: 'tools[{i}].name'.", param=f"tools[{i}].name")
    if not request.input and not request.instructions and request.previous_response_id is None:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input")


def input_items(request: ResponsesRequest) -> list[dict[str, Any]]:
    """The request's input as a list of items (a string is one user message)."""
    if request.input is None:
        return []
    if isinstance(request.input, str):
        return [{"type": "message", "role": "user", "content": request.input}]
    return list(request.input)


# --- Responses → Chat Completions ------------------------------------------------------------------


def _marked(source: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """``target`` with the prompt-cache breakpoint (``cache_control``) of ``source``, if it has one:
    Anthropic models read it from the chat form (OpenRouter and LiteLLM accept it on Responses input)."""
    marker = source.get("cache_control")
    if marker is not None:
        target["cache_control"] = marker
    return target


def to_chat_body(request: ResponsesRequest, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The Chat Completions body equivalent to ``request`` with the conversation ``items``."""
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    messages.extend(chat_messages(items))
    if not messages:
        raise InvalidRequest("The request has no input to answer.", param="input")
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    raw = request.raw
    for name in (*_SAME_NAME, *_SAME_NAME_EXTRA):
        if raw.get(name) is not None:
            body[name] = raw[name]
    if request.max_output_tokens is not None:
        body["max_completion_tokens"] = request.max_output_tokens
    if request.top_logprobs:
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs
    if request.tools:
        body["tools"] = [chat_tool(tool, i) for i, tool in enumerate(request.tools)]
    if request.tool_choice is not None:
        body["tool_choice"] = chat_tool_choice(request.tool_choice)
    text = request.text or {}
    fmt = text.get("format")
    if isinstance(fmt, dict):
        body["response_format"] = chat_response_format(fmt)
    if isinstance(text.get("verbosity"), str):
        body["verbosity"] = text["verbosity"]
    effort = (request.reasoning or {}).get("effort")
    if isinstance(effort, str):
        body["reasoning_effort"] = effort
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if request.models:
        body["models"] = request.models
    return body


def chat_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        append_item(item, i, messages)
    return messages


def append_item(item: Any, i: int, messages: list[dict[str, Any]]) -> None:
    """Append the chat form of input item ``i`` to ``messages``."""
    if not isinstance(item, dict):
        raise InvalidRequest(f"Invalid value for 'input[{i}]': expected an object.", param=f"input[{i}]")
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        _message(item, i, messages)
    elif kind == "function_call":
        _function_call(item, i, messages)
    elif kind == "function_call_output":
        call_id = _required_str(item, "call_id", f"input[{i}]")
        result = {"role": "tool", "tool_call_id": call_id, "content": _tool_output(item, i)}
        messages.append(_marked(item, result))
    elif kind == "reasoning":
        pass  # provider-bound (encrypted) reasoning; a chat backend cannot take it back
    elif kind == "item_reference":
        raise InvalidRequest(
            "Item references are not supported by this router; send the item itself, or continue "
            "with 'previous_response_id'.",
            param=f"input[{i}]",
        )
    elif kind is None:
        raise InvalidRequest(f"Missing required parameter: 'input[{i}].type'.", param=f"input[{i}].type")
    else:
        raise InvalidRequest(
            f"Input items of type {kind!r} are not supported by this router (it supports message, "
            "function_call, function_call_output and reasoning items).",
            param=f"input[{i}].type",
        )


def _message(item: dict[str, Any], i: int, messages: list[dict[str, Any]]) -> None:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise InvalidRequest(
            f"Invalid value for 'input[{i}].role': {role!r}; expected user, assistant, system or developer.",
            param=f"input[{i}].role",
        )
    content = item.get("content")
    where = f"input[{i}].content"
    if role == "assistant":
        text, refusal, marked = _assistant_content(content, where)
        message: dict[str, Any] = _marked(item, {"role": "assistant", "content": text})
        if refusal:
            message["refusal"] = refusal
        if marked is not None:
            message.setdefault("cache_control", marked)  # a breakpoint on a part: after the message
        messages.append(message)
        return
    if isinstance(content, str):
        messages.append(_marked(item, {"role": role, "content": content}))
        return
    if not isinstance(content, list):
        raise InvalidRequest(f"Invalid value for '{where}': expected a string or an array.", param=where)
    parts = [_input_part(part, f"{where}[{j}]") for j, part in enumerate(content)]
    if role in ("system", "developer") and not any("cache_control" in p for p in parts):
        # Chat system messages take text only; joined, they suit every chat server.
        messages.append(_marked(item, {"role": role, "content": "".join(p.get("text", "") for p in parts)}))
    else:
        messages.append(_marked(item, {"role": role, "content": parts}))


def _assistant_content(content: Any, where: str) -> tuple[str | None, str | None, Any]:
    """The text, the refusal and the last prompt-cache breakpoint of an assistant item's content."""
    if content is None or isinstance(content, str):
        return content, None, None
    if not isinstance(content, list):
        raise InvalidRequest(f"Invalid value for '{where}': expected a string or an array.", param=where)
    texts: list[str] = []
    refusals: list[str] = []
    marked = None
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind is not None and part.get("cache_control") is not None:
            marked = part["cache_control"]
        if kind in ("output_text", "input_text", "text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            refusals.append(part["refusal"])
        else:
            raise InvalidRequest(
                f"Invalid value for '{where}[{j}].type': {kind!r}; assistant content takes output_text "
                "and refusal parts.",
                param=f"{where}[{j}].type",
            )
    return "".join(texts) if texts else None, "".join(refusals) or None, marked


def _input_part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise InvalidRequest(f"Invalid value for '{where}': expected an object.", param=where)
    return _marked(part, _chat_part(part, where))


def _chat_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "text", "output_text"):
        return {"type": "text", "text": _required_str(part, "text", where)}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            if part.get("file_id"):
                raise InvalidRequest(
                    "Images by 'file_id' refer to OpenAI file storage, which this router cannot read; "
                    "send 'image_url' (a URL or a data URL).",
                    param=f"{where}.file_id",
                )
            raise InvalidRequest(
                f"Missing required parameter: '{where}.image_url'.", param=f"{where}.image_url"
            )
        image: dict[str, Any] = {"url": url}
        detail = part.get("detail")
        if detail in ("low", "high", "auto"):
            image["detail"] = detail
        elif detail == "original":
            image["detail"] = "high"
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file: dict[str, Any] = {}
        if isinstance(part.get("file_data"), str):
            file["file_data"] = part["file_data"]
            # n8n spells it ``file_name``; the spec ``filename``.
            name = part.get("filename") or part.get("file_name")
            if isinstance(name, str):
                file["filename"] = name
        elif isinstance(part.get("file_id"), str):
            file["file_id"] = part["file_id"]
        elif part.get("file_url"):
            raise InvalidRequest(
                "Files by 'file_url' are not supported by this router; send the file inline as 'file_data'.",
                param=f"{where}.file_url",
            )
        else:
            raise InvalidRequest(
                f"Missing required parameter: '{where}.file_data'.", param=f"{where}.file_data"
            )
        return {"type": "file", "file": file}
    raise InvalidRequest(
        f"Invalid value for '{where}.type': {kind!r}; expected input_text, input_image or input_file.",
        param=f"{where}.type",
    )


def _function_call(item: dict[str, Any], i: int, messages: list[dict[str, Any]]) -> None:
    """Consecutive calls (and the assistant text just before them) become one assistant turn, as chat
    requires every tool result to follow the message that issued the calls."""
    where = f"input[{i}]"
    call = {
        "id": _required_str(item, "call_id", where),
        "type": "function",
        "function": {"name": _required_str(item, "name", where), "arguments": item.get("arguments") or "{}"},
    }
    _marked(item, call)
    if not isinstance(call["function"]["arguments"], str):  # type: ignore[index]
        raise InvalidRequest(
            f"Invalid value for '{where}.arguments': expected a string.", param=f"{where}.arguments"
        )
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _tool_output(item: dict[str, Any], i: int) -> str:
    output = item.get("output")
    if isinstance(output, str):
        return output
    where = f"input[{i}].output"
    if isinstance(output, list):
        texts: list[str] = []
        for j, part in enumerate(output):
            if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text"):
                texts.append(str(part.get("text", "")))
            else:
                raise InvalidRequest(
                    f"Invalid value for '{where}[{j}]': function outputs support text parts on this router.",
                    param=f"{where}[{j}]",
                )
        return "".join(texts)
    raise InvalidRequest(f"Missing required parameter: '{where}'.", param=where)


def chat_tool(tool: dict[str, Any], i: int) -> dict[str, Any]:
    if tool.get("parameters") is not None:
        check_schema(tool["parameters"], f"tools[{i}].parameters")
    function: dict[str, Any] = {"name": tool["name"]}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return _marked(tool, {"type": "function", "function": function})


def chat_tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise InvalidRequest(
                f"Invalid value for 'tool_choice': {choice!r}; expected none, auto or required.",
                param="tool_choice",
            )
        return choice
    kind = choice.get("type")
    if kind == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    if kind == "allowed_tools":
        listed = choice.get("tools")
        if not isinstance(listed, list):
            raise InvalidRequest(
                "Invalid value for 'tool_choice.tools': expected an array of tools.",
                param="tool_choice.tools",
            )
        tools = [
            {"type": "function", "function": {"name": t["name"]}}
            for t in listed
            if isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("name"), str)
        ]
        return {
            "type": "allowed_tools",
            "allowed_tools": {"mode": choice.get("mode", "auto"), "tools": tools},
        }
    raise InvalidRequest(
        f"Invalid value for 'tool_choice.type': {kind!r}; this router supports function tool choices.",
        param="tool_choice.type",
    )


def chat_response_format(fmt: dict[str, Any]) -> dict[str, Any]:
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        if not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict):
            raise InvalidRequest(
                "A 'json_schema' text format needs 'name' and 'schema'.", param="text.format.schema"
            )
        check_schema(fmt["schema"], "text.format.schema")
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest(
        f"Invalid value for 'text.format.type': {kind!r}; expected text, json_object or json_schema.",
        param="text.format.type",
    )


def _required_str(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"Missing required parameter: '{where}.{key}'.", param=f"{where}.{key}")
    return value
