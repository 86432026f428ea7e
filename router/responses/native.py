"""Bodies for an upstream that speaks the Responses API itself (OpenAI).

Two cases: a Responses client passed through natively (its body forwarded with the conversation
expanded), and a Chat Completions client of a Responses-only model (its chat body translated,
reference §4.4). The router keeps conversation state itself, so upstream storage is always off.
"""

from __future__ import annotations

from typing import Any

from router.errors import InvalidRequest

ENCRYPTED_REASONING = "reasoning.encrypted_content"
# Never sent upstream: the router answers these itself.
_ROUTER_FIELDS = ("models", "previous_response_id", "store", "background")
MIN_OUTPUT_TOKENS = 16  # the Responses API refuses smaller max_output_tokens


def passthrough_body(
    raw: dict[str, Any], items: list[dict[str, Any]], upstream: str, reasoning: bool
) -> dict[str, Any]:
    """The client's Responses body for the upstream: conversation expanded, storage off.

    Reasoning items are replayable without upstream storage only with their encrypted content, so
    that content is asked for, and items that lack it are left out.
    """
    body = {k: v for k, v in raw.items() if k not in _ROUTER_FIELDS}
    body["model"] = upstream
    body["store"] = False
    body["input"] = [
        item for item in items if item.get("type") != "reasoning" or item.get("encrypted_content")
    ]
    if reasoning:
        include = list(body.get("include") or ())
        if ENCRYPTED_REASONING not in include:
            include.append(ENCRYPTED_REASONING)
        body["include"] = include
    max_output = body.get("max_output_tokens")
    if isinstance(max_output, int) and max_output < MIN_OUTPUT_TOKENS:
        body["max_output_tokens"] = MIN_OUTPUT_TOKENS
    return body


def from_chat_body(chat: dict[str, Any], upstream: str, *, stream: bool) -> dict[str, Any]:
    """A Chat Completions body as a Responses body, for a model that only speaks Responses (built field
    by field, so Anthropic's ``cache_control`` markers stay behind)."""
    n = chat.get("n")
    if isinstance(n, int) and n > 1:
        raise InvalidRequest(
            "This model answers on the Responses API, which returns one choice: use n=1.", param="n"
        )
    if chat.get("stop"):
        raise InvalidRequest(
            "This model answers on the Responses API, which has no stop sequences: remove 'stop'.",
            param="stop",
        )
    body: dict[str, Any] = {"model": upstream, "input": _items(chat.get("messages") or []), "store": False}
    for name in ("temperature", "top_p", "parallel_tool_calls", "service_tier", "user", "safety_identifier",
                 "prompt_cache_key", "prompt_cache_retention", "metadata", "top_logprobs"):  # fmt: skip
        if chat.get(name) is not None:
            body[name] = chat[name]
    limit = chat.get("max_completion_tokens") or chat.get("max_tokens")
    if isinstance(limit, int):
        body["max_output_tokens"] = max(limit, MIN_OUTPUT_TOKENS)
    if chat.get("tools"):
        body["tools"] = [_flat_tool(t) for t in chat["tools"]]
    choice = chat.get("tool_choice")
    if choice is not None:
        body["tool_choice"] = _flat_choice(choice)
    text: dict[str, Any] = {}
    fmt = chat.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), dict):
            text["format"] = {"type": "json_schema", **fmt["json_schema"]}
        elif fmt.get("type") in ("text", "json_object"):
            text["format"] = {"type": fmt["type"]}
    if isinstance(chat.get("verbosity"), str):
        text["verbosity"] = chat["verbosity"]
    if text:
        body["text"] = text
    if isinstance(chat.get("reasoning_effort"), str):
        body["reasoning"] = {"effort": chat["reasoning_effort"]}
    if stream:
        body["stream"] = True
    return body


def _items(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.get("tool_call_id", ""),
                    "output": _text(content),
                }
            )
            continue
        if role == "assistant":
            text = _text(content)
            if text:
                items.append(
                    {"type": "message", "role": "assistant",
                     "content": [{"type": "output_text", "text": text, "annotations": []}]}
                )  # fmt: skip
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "arguments": function.get("arguments") or "{}",
                    }
                )
            continue
        if role == "function":
            role = "user"
        if isinstance(content, list):
            items.append({"type": "message", "role": role, "content": [_input_part(p) for p in content]})
        else:
            items.append({"type": "message", "role": role, "content": content or ""})
    return items


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _input_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url") or {}
        url = image.get("url") if isinstance(image, dict) else image
        return {
            "type": "input_image",
            "image_url": url,
            "detail": (image.get("detail") if isinstance(image, dict) else None) or "auto",
        }
    if kind == "file":
        file = dict(part.get("file") or {})
        return {"type": "input_file", **file}
    if kind in ("text", "input_text"):
        return {"type": "input_text", "text": part.get("text", "")}
    raise InvalidRequest(
        f"Content parts of type {kind!r} cannot be sent to a Responses-only model.", param="messages"
    )


def _flat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    flat: dict[str, Any] = {"type": "function", "name": function.get("name", "")}
    for key in ("description", "parameters"):
        if key in function:
            flat[key] = function[key]
    # Chat tools are not strict unless they say so; Responses tools are, unless told otherwise.
    flat["strict"] = bool(function.get("strict", False))
    return flat


def _flat_choice(choice: Any) -> Any:
    if isinstance(choice, dict):
        if choice.get("type") == "function":
            return {"type": "function", "name": (choice.get("function") or {}).get("name", "")}
        if choice.get("type") == "allowed_tools":
            allowed = choice.get("allowed_tools") or {}
            tools = [
                {"type": "function", "name": (t.get("function") or {}).get("name", "")}
                for t in allowed.get("tools") or ()
            ]
            return {"type": "allowed_tools", "mode": allowed.get("mode", "auto"), "tools": tools}
    return choice
