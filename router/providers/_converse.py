"""Chat Completions → Bedrock Converse request bodies (the policy is stated in ``bedrock``'s docstring).

Converse names its fields in lowerCamelCase and writes each union (a content block, a tool choice) as
an object with exactly one key. Roles must alternate, starting with the user: consecutive messages of
one role are merged, and all tool results of a turn go into one user message.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

import msgspec

from router.errors import InvalidRequest
from router.providers._translate import (
    append_turn,
    chosen_function,
    data_url,
    refuse_unsupported,
    text_of,
    tool_arguments,
)
from router.providers.base import UpstreamCall
from router.types import CacheControl, ChatRequest, ContentPart, Message, Tool, ToolCall

IMAGE_FORMATS: Final = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
THINKING_BUDGET: Final = {"low": 1024, "medium": 4096, "high": 16384, "xhigh": 32000, "max": 32000}
JSON_OBJECT_INSTRUCTION: Final = "Respond only with a single valid JSON object."
# Models without structured output on Bedrock answer a json_schema request by calling this tool.
JSON_TOOL: Final = "json_response"
# A conversation that holds tool calls needs a toolConfig even when the request offers no tool.
STUB_TOOL: Final = {
    "toolSpec": {
        "name": "no_tool_offered",
        "description": "Not to be called: no tool is offered in this turn.",
        "inputSchema": {"json": {"type": "object", "properties": {}}},
    }
}
MAX_CACHE_POINTS: Final = 4
# Inference-profile prefixes in front of a model id (``us.anthropic.claude-...``).
GEO_PREFIXES: Final = frozenset({"us", "eu", "apac", "jp", "au", "ca", "us-gov", "global"})

_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode


class Family(NamedTuple):
    """What a model accepts beyond the common core, from its id's provider part."""

    name: str  # anthropic, nova, meta, mistral, ... ("" for an ARN)
    caches: bool  # takes cachePoint blocks
    structured: bool  # takes outputConfig.textFormat
    tool_choice: bool  # takes toolChoice any / tool
    streams_tools: bool  # streams tool use (others are asked without a stream when tools are offered)


def family_of(model_id: str) -> Family:
    """The family of a Bedrock model or inference-profile id (an ARN's family is not known)."""
    parts = model_id.split(".")
    if parts and parts[0] in GEO_PREFIXES:
        parts = parts[1:]
    vendor = parts[0] if len(parts) > 1 and not model_id.startswith("arn:") else ""
    if vendor == "anthropic":
        return Family("anthropic", caches=True, structured=True, tool_choice=True, streams_tools=True)
    if vendor == "amazon" and parts[1].startswith("nova"):
        return Family("nova", caches=True, structured=False, tool_choice=True, streams_tools=True)
    if vendor in ("meta", "mistral"):
        return Family(
            vendor, caches=False, structured=vendor == "mistral", tool_choice=False, streams_tools=False
        )
    return Family(vendor, caches=False, structured=True, tool_choice=True, streams_tools=True)


class Converse(NamedTuple):
    """A built request: its body, and the tool that stands for a JSON answer (``None``: none)."""

    body: bytes
    json_tool: str | None


def build_body(call: UpstreamCall) -> Converse:
    request = call.request
    refuse_unsupported(request, "Bedrock models", max_temperature=1.0)
    family = family_of(call.model.upstream)
    points = _Points(family.caches)
    system, messages = _messages(request.messages, points)
    if messages and isinstance(request.cache_control, CacheControl):
        points.after(messages[-1]["content"], request.cache_control)
    body: dict[str, Any] = {"messages": messages}
    config: dict[str, Any] = {"maxTokens": request.output_limit or call.model.max_output}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or ())
    if any(stops):
        config["stopSequences"] = [s for s in stops if s]
    body["inferenceConfig"] = config
    tools = _tools(request, points)
    choice = _tool_choice(request, family)
    json_tool = _response_format(request, family, body, system, tools)
    if json_tool is not None:
        choice = {"tool": {"name": json_tool}}
    if choice is None and tools and request.tool_choice == "none":
        tools = []  # Converse has no "none": no tools offered, unless the conversation needs some
    if not tools and _holds_tool_blocks(messages):
        tools = [STUB_TOOL]
    if tools:
        body["toolConfig"] = {"tools": tools, **({"toolChoice": choice} if choice else {})}
    if system:
        body["system"] = system
    thinking = _thinking(request, family, config["maxTokens"])
    if thinking is not None:
        body["additionalModelRequestFields"] = {"thinking": thinking}
    points.check()
    return Converse(_encode(body), json_tool)


class _Points:
    """Cache breakpoints as cachePoint blocks, for the models that take them (others: none at all)."""

    __slots__ = ("count", "enabled")

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.count = 0

    def after(self, blocks: list[dict[str, Any]], control: object) -> None:
        """Append a cachePoint to ``blocks`` when ``control`` marks their end (and none is there)."""
        if (
            not self.enabled
            or not isinstance(control, CacheControl)
            or not blocks
            or "cachePoint" in blocks[-1]
        ):
            return
        point: dict[str, Any] = {"type": "default"}
        if control.ttl == "1h":
            point["ttl"] = "1h"
        blocks.append({"cachePoint": point})
        self.count += 1

    def check(self) -> None:
        if self.count > MAX_CACHE_POINTS:
            raise InvalidRequest(
                f"A maximum of {MAX_CACHE_POINTS} cache_control markers may be sent to Bedrock models; "
                f"this request has {self.count} (counted on tools, system parts and message parts).",
                code="too_many_cache_breakpoints",
            )


def _messages(source: list[Message], points: _Points) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The system blocks, and the conversation's turns."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(source):
        if message.role in ("system", "developer"):
            system.extend(_system_blocks(message, i, points))
            continue
        if message.role in ("tool", "function"):
            blocks = [_tool_result(message, i)]
            parts = message.content if isinstance(message.content, list) else []
            for control in (*(p.cache_control for p in parts), message.cache_control):
                points.after(blocks, control)
            append_turn(turns, "user", blocks, "content")
            continue
        blocks = _blocks(message, i, points)
        if message.role == "assistant":
            for j, tool_call in enumerate(message.tool_calls or []):
                blocks.append(_tool_use(tool_call, i, j))
                points.after(blocks, tool_call.cache_control)
        points.after(blocks, message.cache_control)
        if blocks:
            append_turn(turns, "user" if message.role == "user" else "assistant", blocks, "content")
    return system, turns


def _system_blocks(message: Message, i: int, points: _Points) -> list[dict[str, Any]]:
    text_of(message, i)  # refuses parts that are not text
    content = message.content
    blocks: list[dict[str, Any]] = []
    if isinstance(content, list):
        for part in content:
            if part.text:
                blocks.append({"text": part.text})
                points.after(blocks, part.cache_control)
    elif content:
        blocks.append({"text": content})
    points.after(blocks, message.cache_control)
    return blocks


def _tool_result(message: Message, i: int) -> dict[str, Any]:
    if not isinstance(message.tool_call_id, str) or not message.tool_call_id:
        raise InvalidRequest("A tool message needs 'tool_call_id'.", param=f"messages[{i}].tool_call_id")
    text = text_of(message, i)
    try:
        value = _decode_any(text) if text.lstrip().startswith("{") else None
    except msgspec.DecodeError:
        value = None
    # A JSON object goes as a json block (the model reads it as data); anything else as text.
    content = [{"json": value}] if isinstance(value, dict) else [{"text": text or " "}]
    return {"toolResult": {"toolUseId": message.tool_call_id, "content": content}}


def _blocks(message: Message, i: int, points: _Points) -> list[dict[str, Any]]:
    content = message.content
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        block = _part(part, f"messages[{i}].content[{j}]")
        if block is not None:
            blocks.append(block)
            points.after(blocks, part.cache_control)
    if any("document" in b for b in blocks) and not any("text" in b for b in blocks):
        raise InvalidRequest(
            "Bedrock needs text beside a file in the same message; add a text part.",
            param=f"messages[{i}].content",
        )
    return blocks


def _part(part: ContentPart, param: str) -> dict[str, Any] | None:
    if part.type == "text":
        return {"text": part.text} if part.text else None
    if part.type == "refusal":
        return {"text": part.refusal} if part.refusal else None
    if part.type == "image_url" and part.image_url:
        url = part.image_url.url
        if not url.startswith("data:"):
            raise InvalidRequest(
                "Bedrock models take images as data: URLs only (the router never fetches a URL).", param=param
            )
        mime, data = data_url(url, param)
        image_format = IMAGE_FORMATS.get(mime)
        if image_format is None:
            raise InvalidRequest(
                f"Bedrock models accept images of type {', '.join(sorted(IMAGE_FORMATS))}.", param=param
            )
        return {"image": {"format": image_format, "source": {"bytes": data}}}
    if part.type == "file" and part.file:
        file_data = part.file.file_data
        if not isinstance(file_data, str):
            raise InvalidRequest("File ids cannot be sent to Bedrock models; send file_data.", param=param)
        is_url = file_data.startswith("data:")
        mime, payload = data_url(file_data, param) if is_url else ("application/pdf", file_data)
        if mime != "application/pdf":
            raise InvalidRequest("Bedrock models accept PDF files only.", param=param)
        name = "".join(
            c if c.isalnum() else " " for c in (part.file.filename or "document").rsplit(".", 1)[0]
        )
        name = " ".join(name.split())[:200] or "document"  # letters, digits and single spaces only
        return {"document": {"format": "pdf", "name": name, "source": {"bytes": payload}}}
    raise InvalidRequest(f"Content of type '{part.type}' has no counterpart for Bedrock models.", param=param)


def _tool_use(call: ToolCall, i: int, j: int) -> dict[str, Any]:
    return {
        "toolUse": {"toolUseId": call.id, "name": call.function.name, "input": tool_arguments(call, i, j)}
    }


def _tools(request: ChatRequest, points: _Points) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(request.tools or ()):
        tools.append(_tool(i, tool))
        points.after(tools, tool.cache_mark)
    return tools


def _tool(i: int, tool: Tool) -> dict[str, Any]:
    if tool.type != "function" or not tool.function:
        raise InvalidRequest(
            f"Bedrock models accept function tools only, not '{tool.type}'.", param=f"tools[{i}]"
        )
    fn = tool.function
    schema = fn.parameters if isinstance(fn.parameters, dict) else {"type": "object", "properties": {}}
    spec: dict[str, Any] = {"name": fn.name, "inputSchema": {"json": schema}}
    if isinstance(fn.description, str) and fn.description:
        spec["description"] = fn.description
    return {"toolSpec": spec}


def _tool_choice(request: ChatRequest, family: Family) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None or choice in ("auto", "none"):
        return {"auto": {}} if choice == "auto" else None
    if choice == "required":
        out: dict[str, Any] = {"any": {}}
    elif chosen_function(choice) is not None:
        out = {"tool": {"name": chosen_function(choice)}}
    else:
        raise InvalidRequest("Unsupported tool_choice for Bedrock models.", param="tool_choice")
    if not family.tool_choice:
        raise InvalidRequest(
            f"Bedrock models of the '{family.name}' family choose their tools themselves: "
            "tool_choice may only be 'auto' or 'none'.",
            param="tool_choice",
        )
    return out


def _response_format(
    request: ChatRequest,
    family: Family,
    body: dict[str, Any],
    system: list[dict[str, Any]],
    tools: list[dict[str, Any]],
) -> str | None:
    """JSON answers: an instruction (json_object), Bedrock's structured output (json_schema), or, for a
    model without it, a forced tool whose input is the answer; the tool's name when one stands in."""
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        system.append({"text": JSON_OBJECT_INSTRUCTION})
        return None
    if fmt.type != "json_schema":
        raise InvalidRequest(f"response_format '{fmt.type}' has no counterpart for Bedrock models.")
    spec = fmt.json_schema
    schema = spec.schema if spec is not None and isinstance(spec.schema, dict) else {"type": "object"}
    name = spec.name if spec is not None and spec.name else "response"
    if family.structured:
        definition = {"schema": _encode(schema).decode(), "name": name}
        body["outputConfig"] = {
            "textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}
        }
        return None
    if not family.tool_choice:
        raise InvalidRequest(
            f"Bedrock models of the '{family.name}' family have no structured output.",
            param="response_format",
        )
    description = f"Answer with the '{name}' JSON object this tool takes."
    tools.append(
        {"toolSpec": {"name": JSON_TOOL, "description": description, "inputSchema": {"json": schema}}}
    )
    return JSON_TOOL


def _holds_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def _thinking(request: ChatRequest, family: Family, max_tokens: int) -> dict[str, Any] | None:
    """Claude's extended thinking for ``reasoning_effort`` (other families: not sent, a tuning hint)."""
    effort = request.raw.get("reasoning_effort")
    budget = THINKING_BUDGET.get(effort) if isinstance(effort, str) else None
    if family.name != "anthropic" or budget is None or budget >= max_tokens:
        return None
    if request.temperature not in (None, 1, 1.0):
        raise InvalidRequest(
            "Claude models accept only temperature 1 with extended thinking (reasoning_effort).",
            param="temperature",
        )
    return {"type": "enabled", "budget_tokens": budget}
