"""Chat Completions request → the body of Anthropic's Messages API (Anthropic's own, and Claude on
Vertex AI); the policy for what is refused, dropped or emulated is in ``anthropic``'s docstring.
"""

from __future__ import annotations

from typing import Any

import msgspec

from router.errors import InvalidRequest
from router.providers._caching import auto_mark, check_breakpoints, mark_last, marked, system_field
from router.providers._translate import (
    append_turn,
    chosen_function,
    data_url,
    refuse_unsupported,
    text_of,
    tool_arguments,
)
from router.providers.base import UpstreamCall
from router.types import ChatRequest, ContentPart, FunctionDef, Message, Tool, ToolCall

# --- constants -----------------------------------------------------------------------------------

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
THINKING_BUDGET = {"low": 1024, "medium": 4096, "high": 16384, "xhigh": 32000, "max": 32000}
JSON_OBJECT_INSTRUCTION = "Respond only with a single valid JSON object."

_encode = msgspec.json.Encoder().encode


# --- request builder -----------------------------------------------------------------------------


def build_body(call: UpstreamCall, *, stream: bool, version: str | None = None) -> bytes:
    """The Messages body of ``call``; with ``version`` (Vertex AI), that ``anthropic_version`` stands
    in the body in place of ``model``, which the URL names."""
    request = call.request
    refuse_unsupported(request, "Anthropic models", max_temperature=1.0)
    groups, messages = _messages(request.messages)
    if messages:  # a top-level marker (OpenRouter's automatic caching): the conversation's end
        mark_last(messages[-1]["content"], request.cache_control)
    max_tokens = request.output_limit or call.model.max_output
    body: dict[str, Any] = (
        {"anthropic_version": version} if version is not None else {"model": call.model.upstream}
    )
    body["max_tokens"] = max_tokens
    body["messages"] = messages
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_object":
        groups.append([{"type": "text", "text": JSON_OBJECT_INSTRUCTION}])
    elif fmt is not None and fmt.type == "json_schema":
        schema = fmt.json_schema.schema if fmt.json_schema and fmt.json_schema.schema is not None else {}
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    system = system_field(groups)
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    user = request.raw.get("safety_identifier") or request.user
    if isinstance(user, str) and user:
        body["metadata"] = {"user_id": user}
    if request.tools:
        body["tools"] = [_tool(i, t) for i, t in enumerate(request.tools)]
    choice = _tool_choice(request)
    if choice is not None:
        body["tool_choice"] = choice
    effort = request.raw.get("reasoning_effort")
    budget = THINKING_BUDGET.get(effort) if isinstance(effort, str) else None
    if budget is not None and budget < max_tokens:
        if request.temperature not in (None, 1, 1.0):
            raise InvalidRequest(
                "Anthropic models accept only temperature 1 with extended thinking (reasoning_effort).",
                param="temperature",
            )
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if stream:
        body["stream"] = True
    if call.model.auto_cache is not None:
        auto_mark(body, call.model.auto_cache)
    check_breakpoints(body)
    return _encode(body)


def _messages(source: list[Message]) -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]:
    """The system prompt as the text blocks of each system message, and the conversation's turns."""
    system: list[list[dict[str, Any]]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(source):
        if message.role in ("system", "developer"):
            group = _system_blocks(message, i)
            if group:
                system.append(group)
            continue
        if message.role in ("tool", "function"):
            result = {
                "type": "tool_result",
                "tool_use_id": _tool_call_id(message, i),
                "content": text_of(message, i),
            }
            parts = message.content if isinstance(message.content, list) else []
            for control in (*(p.cache_control for p in parts), message.cache_control):
                marked(result, control)
            append_turn(turns, "user", [result], "content")
            continue
        blocks = _blocks(message, i)
        if message.role == "assistant":
            blocks += [_tool_use(tc, i, j) for j, tc in enumerate(message.tool_calls or [])]
        mark_last(blocks, message.cache_control)
        if blocks:
            append_turn(turns, "user" if message.role == "user" else "assistant", blocks, "content")
    return system, turns


def _system_blocks(message: Message, i: int) -> list[dict[str, Any]]:
    """A system or developer message's non-empty text parts as blocks, each with its breakpoint."""
    text_of(message, i)  # refuses parts that are not text
    content = message.content
    if isinstance(content, list):
        blocks = [marked({"type": "text", "text": p.text}, p.cache_control) for p in content if p.text]
    else:
        blocks = [{"type": "text", "text": content}] if content else []
    mark_last(blocks, message.cache_control)
    return blocks


def _tool_call_id(message: Message, i: int) -> str:
    if isinstance(message.tool_call_id, str) and message.tool_call_id:
        return message.tool_call_id
    raise InvalidRequest("A tool message needs 'tool_call_id'.", param=f"messages[{i}].tool_call_id")


def _blocks(message: Message, i: int) -> list[dict[str, Any]]:
    content = message.content
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [
        marked(b, part.cache_control)
        for j, part in enumerate(content)
        if (b := _part(part, f"messages[{i}].content[{j}]"))
    ]


def _part(part: ContentPart, param: str) -> dict[str, Any] | None:
    if part.type == "text":
        return {"type": "text", "text": part.text} if part.text else None
    if part.type == "refusal":
        return {"type": "text", "text": part.refusal} if part.refusal else None
    if part.type == "image_url" and part.image_url:
        url = part.image_url.url
        if url.startswith("data:"):
            mime, data = data_url(url, param)
            if mime not in IMAGE_TYPES:
                raise InvalidRequest(
                    f"Anthropic models accept images of type {', '.join(sorted(IMAGE_TYPES))}.", param=param
                )
            return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}
        if url.startswith(("https://", "http://")):
            return {"type": "image", "source": {"type": "url", "url": url}}
        raise InvalidRequest("An image URL must be https:// or a data: URL.", param=param)
    if part.type == "file" and part.file:
        file_data = part.file.file_data
        if isinstance(file_data, str):
            is_url = file_data.startswith("data:")
            mime, payload = data_url(file_data, param) if is_url else ("application/pdf", file_data)
            if mime != "application/pdf":
                raise InvalidRequest("Anthropic models accept PDF files only.", param=param)
            return {"type": "document", "source": {"type": "base64", "media_type": mime, "data": payload}}
        raise InvalidRequest("File ids cannot be sent to Anthropic models; send file_data.", param=param)
    raise InvalidRequest(
        f"Content of type '{part.type}' has no counterpart for Anthropic models.", param=param
    )


def _tool_use(call: ToolCall, i: int, j: int) -> dict[str, Any]:
    arguments = tool_arguments(call, i, j)
    block = {"type": "tool_use", "id": call.id, "name": call.function.name, "input": arguments}
    return marked(block, call.cache_control)


def _tool(i: int, tool: Tool) -> dict[str, Any]:
    if tool.type != "function" or not tool.function:
        raise InvalidRequest(
            f"Anthropic models accept function tools only, not '{tool.type}'.", param=f"tools[{i}]"
        )
    fn: FunctionDef = tool.function
    out: dict[str, Any] = {
        "name": fn.name,
        "input_schema": fn.parameters
        if isinstance(fn.parameters, dict)
        else {"type": "object", "properties": {}},
    }
    if isinstance(fn.description, str):
        out["description"] = fn.description
    return marked(out, tool.cache_mark)


def _tool_choice(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    out: dict[str, Any] | None
    if choice is None:
        out = None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif chosen_function(choice) is not None:
        out = {"type": "tool", "name": chosen_function(choice)}
    else:
        raise InvalidRequest("Unsupported tool_choice for Anthropic models.", param="tool_choice")
    if request.parallel_tool_calls is False and request.tools:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out
