"""The ``input`` items, ``tools`` and ``tool_choice`` of a Responses request, checked one by one as OpenAI
checks them (raising ``Rejected``): the conversation turns and function tools the fake model sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

import msgspec

from router.mock.openai_responses_checks import (
    Rejected,
    convert,
    invalid_value,
    missing_param,
    strict_problem,
    type_of,
)
from router.mock.openai_wire import invalid_request, openai_error
from router.mock.textgen import ToolSpec

_ITEM_TYPES: Final = ("message", "function_call", "function_call_output", "reasoning", "item_reference")
_ROLES: Final = ("user", "assistant", "system", "developer")
_INPUT_PARTS: Final = ("input_text", "input_image", "input_file")
_ASSISTANT_PARTS: Final = ("output_text", "refusal")
_TOOL_CHOICES: Final = ("none", "auto", "required")
_HOSTED_TOOLS: Final = (
    "file_search",
    "web_search",
    "web_search_2025_08_26",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "computer",
    "computer_use_preview",
    "mcp",
    "code_interpreter",
    "image_generation",
    "local_shell",
    "shell",
    "apply_patch",
    "custom",
    "tool_search",
)
_FUNCTION_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")


# --- input items (only what the fake reads; unknown fields are ignored) --------------------------


class _MessageItem(msgspec.Struct):
    role: str
    content: str | list[dict[str, Any]]


class _FunctionCallItem(msgspec.Struct):
    call_id: str
    name: str
    arguments: str


class _FunctionCallOutputItem(msgspec.Struct):
    call_id: str
    output: str | list[dict[str, Any]]


class _ReasoningItem(msgspec.Struct):
    summary: list[dict[str, Any]]
    id: str | None = None
    encrypted_content: str | None = None


class _ItemReference(msgspec.Struct):
    id: str


class _TextPart(msgspec.Struct):
    text: str


class _RefusalPart(msgspec.Struct):
    refusal: str


class _ImagePart(msgspec.Struct):
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class _FilePart(msgspec.Struct):
    file_id: str | None = None
    file_data: str | None = None
    file_url: str | None = None


class Turn(NamedTuple):
    """One input item as the fake model sees it: ``role`` is ``tool`` for a function call output."""

    kind: str
    role: str
    text: str
    counted: bool
    """Whether ``text`` counts towards prompt tokens (as the same content would on Chat Completions)."""
    item_id: str | None = None


def _parts_text(parts: list[dict[str, Any]], where: str, allowed: Sequence[str]) -> str:
    texts: list[str] = []
    for index, part in enumerate(parts):
        at = f"{where}[{index}]"
        kind = type_of(part, at)
        if kind not in allowed:
            raise invalid_value(kind, f"{at}.type", allowed)
        if kind in ("input_text", "output_text"):
            texts.append(convert(part, _TextPart, at).text)
        elif kind == "refusal":
            convert(part, _RefusalPart, at)
        elif kind == "input_image":
            image = convert(part, _ImagePart, at)
            if image.image_url is None and image.file_id is None:
                raise Rejected(
                    invalid_request(
                        f"Invalid '{at}': one of 'image_url' or 'file_id' must be provided.",
                        param=at,
                        code="missing_required_parameter",
                    )
                )
        else:
            file = convert(part, _FilePart, at)
            if file.file_id is None and file.file_data is None and file.file_url is None:
                raise Rejected(
                    invalid_request(
                        f"Invalid '{at}': one of 'file_id', 'file_data' or 'file_url' must be provided.",
                        param=at,
                        code="missing_required_parameter",
                    )
                )
    return "".join(texts)


def read_turns(items: list[dict[str, Any]]) -> list[Turn]:
    """The checked input items; raises ``Rejected`` as OpenAI would answer a bad one."""
    turns: list[Turn] = []
    calls: set[str] = set()
    for index, item in enumerate(items):
        where = f"input[{index}]"
        kind = type_of(item, where, "message")
        if kind == "message":
            message = convert(item, _MessageItem, where)
            if message.role not in _ROLES:
                raise invalid_value(message.role, f"{where}.role", _ROLES)
            content = message.content
            allowed = _ASSISTANT_PARTS if message.role == "assistant" else _INPUT_PARTS
            text = content if isinstance(content, str) else _parts_text(content, f"{where}.content", allowed)
            turns.append(Turn("message", message.role, text, counted=True))
        elif kind == "function_call":
            call = convert(item, _FunctionCallItem, where)
            calls.add(call.call_id)
            turns.append(Turn("function_call", "assistant", call.arguments, counted=False))
        elif kind == "function_call_output":
            result = convert(item, _FunctionCallOutputItem, where)
            if result.call_id not in calls:
                raise Rejected(
                    invalid_request(
                        f"No tool call found for function call output with call_id {result.call_id}.",
                        param="input",
                    )
                )
            output = result.output
            text = output if isinstance(output, str) else _parts_text(output, f"{where}.output", _INPUT_PARTS)
            turns.append(Turn("function_call_output", "tool", text, counted=True))
        elif kind == "reasoning":
            reasoning = convert(item, _ReasoningItem, where)
            turns.append(Turn("reasoning", "assistant", "", counted=False, item_id=reasoning.id))
        elif kind == "item_reference":
            reference = convert(item, _ItemReference, where)
            raise Rejected(
                openai_error(
                    404, f"Item with id '{reference.id}' not found.", "invalid_request_error", param="input"
                )
            )
        else:
            raise invalid_value(kind, f"{where}.type", _ITEM_TYPES)
    for turn, following in zip(turns, [*turns[1:], None], strict=True):
        produced = following is not None and (
            following.kind == "function_call"
            or (following.kind == "message" and following.role == "assistant")
        )
        if turn.kind == "reasoning" and not produced:
            raise Rejected(
                invalid_request(
                    f"Item '{turn.item_id}' of type 'reasoning' was provided without its required "
                    "following item.",
                    param="input",
                )
            )
    return turns


# --- tools ---------------------------------------------------------------------------------------


class _FunctionTool(msgspec.Struct):
    name: str
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class Tools(NamedTuple):
    """The function tools: as the fake model sees them (``specs``) and as the response echoes them."""

    specs: tuple[ToolSpec, ...]
    echo: list[dict[str, Any]]


def read_tools(listed: list[dict[str, Any]] | None, model: str) -> Tools:
    """The checked ``tools`` of a request for ``model``; raises ``Rejected`` as OpenAI answers a bad one."""
    specs: list[ToolSpec] = []
    echo: list[dict[str, Any]] = []
    for index, tool in enumerate(listed or ()):
        where = f"tools[{index}]"
        kind = type_of(tool, where)
        if kind != "function":
            if kind in _HOSTED_TOOLS:
                raise Rejected(
                    invalid_request(f"Hosted tool '{kind}' is not supported with {model}.", param="tools")
                )
            raise invalid_value(kind, f"{where}.type", ("function", *_HOSTED_TOOLS))
        function = convert(tool, _FunctionTool, where)
        if not _FUNCTION_NAME.fullmatch(function.name):
            raise Rejected(
                invalid_request(
                    f"Invalid '{where}.name': string does not match pattern. Expected a string that matches "
                    "the pattern '^[a-zA-Z0-9_-]{1,64}$'.",
                    param=f"{where}.name",
                    code="invalid_value",
                )
            )
        if function.strict and function.parameters is not None:
            problem = strict_problem(function.parameters)
            if problem:
                raise Rejected(
                    invalid_request(
                        f"Invalid schema for function '{function.name}': {problem}",
                        param=f"{where}.parameters",
                        code="invalid_function_parameters",
                    )
                )
        specs.append(ToolSpec(function.name, function.parameters))
        echo.append(
            {
                "type": "function",
                "description": function.description,
                "name": function.name,
                "parameters": function.parameters,
                "strict": True if function.strict is None else function.strict,
            }
        )
    return Tools(tuple(specs), echo)


class ToolChoice(NamedTuple):
    """What ``tool_choice`` allows: any tool call at all, one forced tool, or only the named tools."""

    allowed: bool
    forced: str | None
    only: frozenset[str] | None


def read_tool_choice(choice: str | dict[str, Any] | None, names: Iterable[str]) -> ToolChoice:
    """The checked ``tool_choice``, given the ``names`` of the request's tools."""
    if choice is None:
        return ToolChoice(True, None, None)
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise invalid_value(choice, "tool_choice", _TOOL_CHOICES)
        return ToolChoice(choice != "none", None, None)
    known = set(names)
    kind = type_of(choice, "tool_choice")
    if kind == "function":
        name = choice.get("name")
        if not isinstance(name, str):
            raise missing_param("tool_choice.name")
        if name not in known:
            raise Rejected(
                invalid_request("Tool choice 'function' not found in 'tools' parameter.", param="tool_choice")
            )
        return ToolChoice(True, name, None)
    if kind == "allowed_tools":
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            raise invalid_value(mode, "tool_choice.mode", ("auto", "required"))
        listed = choice.get("tools")
        if not isinstance(listed, list):
            raise missing_param("tool_choice.tools")
        only = frozenset(str(t.get("name")) for t in listed if isinstance(t, dict))
        return ToolChoice(True, None, only)
    raise Rejected(
        invalid_request(f"Tool choice '{kind}' not found in 'tools' parameter.", param="tool_choice")
    )
