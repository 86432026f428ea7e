"""Response objects: the Responses answer built from a chat completion, and the reverse.

The router owns every Response it returns: its id (``resp_…``), its echo of the request's
parameters, and (when stored) the conversation behind it. See the reference's §2 and §4.2 to §4.4.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec

from router.responses.request import ResponsesRequest
from router.types import (
    AssistantMessage,
    ChatCompletion,
    Choice,
    FunctionCall,
    ToolCall,
    Usage,
)

TERMINAL_STATUSES = frozenset({"completed", "incomplete", "failed", "cancelled"})


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def shell(request: ResponsesRequest, response_id: str, created_at: int, model: str) -> dict[str, Any]:
    """The Response object before any output: every echoed request parameter, status in_progress."""
    text = dict(request.text) if request.text else {}
    text.setdefault("format", {"type": "text"})
    reasoning = request.reasoning or {}
    response: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "model": model,
        "output": [],
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "service_tier": request.service_tier or "auto",
        "store": request.stores,
        "temperature": request.temperature if request.temperature is not None else 1.0,
        "text": text,
        "tool_choice": request.tool_choice if request.tool_choice is not None else "auto",
        "tools": [_echo_tool(t) for t in request.tools or ()],
        "top_logprobs": request.top_logprobs or 0,
        "top_p": request.top_p if request.top_p is not None else 1.0,
        "truncation": request.truncation or "disabled",
        "metadata": request.metadata or {},
    }
    # Optional and not nullable in the schema: present only when the request set them.
    for name in ("user", "max_tool_calls", "safety_identifier", "prompt_cache_key", "prompt_cache_retention"):
        value = getattr(request, name)
        if value is not None:
            response[name] = value
    return response


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    echoed = dict(tool)
    echoed.setdefault("description", None)
    echoed.setdefault("parameters", None)
    echoed.setdefault("strict", True)
    return echoed


def usage_of(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    prompt_details = usage.prompt_tokens_details if isinstance(usage.prompt_tokens_details, dict) else {}
    output_details = (
        usage.completion_tokens_details if isinstance(usage.completion_tokens_details, dict) else {}
    )
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": int(prompt_details.get("cached_tokens") or 0),
            "cache_write_tokens": int(prompt_details.get("cache_write_tokens") or 0),
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": int(output_details.get("reasoning_tokens") or 0)},
        "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
    }


def message_item(item_id: str, text: str | None, refusal: str | None, status: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text:
        content.append({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def finish_status(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def from_completion(completion: ChatCompletion, base: dict[str, Any], completed_at: int) -> dict[str, Any]:
    """A Responses answer from a chat completion (its first choice), on the request's ``shell``."""
    choice = completion.choices[0]
    message = choice.message
    output: list[dict[str, Any]] = []
    if message.content or message.refusal:
        output.append(message_item(new_id("msg"), message.content, message.refusal, "completed"))
    if isinstance(message.tool_calls, list):
        for call in message.tool_calls:
            output.append(
                function_call_item(
                    new_id("fc"), call.id, call.function.name, call.function.arguments, "completed"
                )
            )
    status, incomplete = finish_status(choice.finish_reason)
    response = dict(base)
    response.update(
        status=status,
        incomplete_details=incomplete,
        output=output,
        completed_at=completed_at if status == "completed" else None,
    )
    usage = usage_of(completion.usage if isinstance(completion.usage, Usage) else None)
    if usage is not None:
        response["usage"] = usage
    if isinstance(completion.service_tier, str):
        response["service_tier"] = completion.service_tier
    return response


# --- Responses → Chat Completions (a chat client served by a Responses-only model) -----------------


class _Part(msgspec.Struct):
    type: str
    text: str | None = None
    refusal: str | None = None


class _Item(msgspec.Struct):
    type: str
    id: str | None = None
    content: list[_Part] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    summary: list[_Part] | None = None


class _Details(msgspec.Struct):
    reason: str | None = None


class _UsageDetails(msgspec.Struct):
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


class _Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: _UsageDetails | None = None
    output_tokens_details: _UsageDetails | None = None


class WireResponse(msgspec.Struct):
    """The part of an upstream Response object a chat translation reads."""

    id: str
    model: str
    created_at: int = 0
    status: str | None = None
    output: list[_Item] = []
    incomplete_details: _Details | None = None
    usage: _Usage | None = None
    service_tier: str | None = None
    error: dict[str, Any] | None = None


def chat_usage(usage: _Usage | None) -> Usage | None:
    if usage is None:
        return None
    return Usage(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens or usage.input_tokens + usage.output_tokens,
        prompt_tokens_details={
            "cached_tokens": usage.input_tokens_details.cached_tokens,
            "cache_write_tokens": usage.input_tokens_details.cache_write_tokens,
        }
        if usage.input_tokens_details
        else msgspec.UNSET,
        completion_tokens_details={"reasoning_tokens": usage.output_tokens_details.reasoning_tokens}
        if usage.output_tokens_details
        else msgspec.UNSET,
    )


def chat_finish(status: str | None, incomplete: _Details | None, has_calls: bool) -> str:
    if status == "incomplete":
        reason = incomplete.reason if incomplete else None
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if has_calls else "stop"


def to_completion(response: WireResponse) -> ChatCompletion:
    texts: list[str] = []
    refusals: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for item in response.output:
        if item.type == "message":
            for part in item.content or ():
                if part.type == "output_text" and part.text:
                    texts.append(part.text)
                elif part.type == "refusal" and part.refusal:
                    refusals.append(part.refusal)
        elif item.type == "function_call" and item.name:
            calls.append(
                ToolCall(
                    id=item.call_id or item.id or new_id("call"),
                    function=FunctionCall(name=item.name, arguments=item.arguments or ""),
                )
            )
        elif item.type == "reasoning":
            reasoning.extend(p.text for p in item.summary or () if p.text)
    message = AssistantMessage(
        content="".join(texts) if texts or not calls else None,
        refusal="".join(refusals) or None,
        tool_calls=calls if calls else msgspec.UNSET,
        reasoning_content="\n\n".join(reasoning) if reasoning else msgspec.UNSET,
    )
    usage = chat_usage(response.usage)
    return ChatCompletion(
        id="chatcmpl-" + response.id.removeprefix("resp_"),
        created=response.created_at,
        model=response.model,
        choices=[
            Choice(
                index=0,
                message=message,
                finish_reason=chat_finish(response.status, response.incomplete_details, bool(calls)),
            )
        ],
        usage=usage if usage is not None else msgspec.UNSET,
        service_tier=response.service_tier if response.service_tier else msgspec.UNSET,
    )
