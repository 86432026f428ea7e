"""Pieces of Chat → native translation that the translating adapters share (Anthropic, Gemini)."""

from __future__ import annotations

from typing import Any

import msgspec

from router.errors import InvalidRequest
from router.types import ChatRequest, Message, ToolCall

# Chat parameters no translated provider has a counterpart for: refused rather than dropped.
REFUSED = ("logit_bias", "prediction", "audio", "top_logprobs")

_decode_any = msgspec.json.Decoder().decode


def text_of(message: Message, i: int) -> str:
    """The text of a system, developer or tool message, which may hold text parts only."""
    content = message.content
    if content is None or isinstance(content, str):
        return content or ""
    for j, part in enumerate(content):
        if part.type != "text" or not isinstance(part.text, str):
            raise InvalidRequest(
                f"A {message.role} message may only hold text parts.", param=f"messages[{i}].content[{j}]"
            )
    return "".join(part.text for part in content if isinstance(part.text, str))


def tool_arguments(call: ToolCall, i: int, j: int) -> dict[str, Any]:
    """A tool call's JSON-string arguments as the object native APIs want (empty string → {})."""
    try:
        value = _decode_any(call.function.arguments) if call.function.arguments.strip() else {}
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        param = f"messages[{i}].tool_calls[{j}].function.arguments"
        raise InvalidRequest("Tool call arguments must be a JSON object.", param=param)
    return value


def data_url(url: str, param: str) -> tuple[str, str]:
    """``data:<type>;base64,<data>`` → (type, data)."""
    header, sep, data = url.partition(",")
    if not header.startswith("data:") or not sep or not header.endswith(";base64"):
        raise InvalidRequest("A data URL must be base64-encoded (data:<type>;base64,<data>).", param=param)
    return header[5:-7], data


def append_turn(turns: list[dict[str, Any]], role: str, items: list[dict[str, Any]], key: str) -> None:
    """Add ``items`` as a turn of ``role``; consecutive turns of one role become one."""
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


def chosen_function(choice: object) -> str | None:
    """The function a ``tool_choice`` object names (``{"type": "function", "function": {"name"}}``)."""
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) and name else None


def refuse_unsupported(request: ChatRequest, models: str, *, max_temperature: float | None = None) -> None:
    """A 400 naming the first parameter ``models`` (e.g. "Anthropic models") cannot honour: more than
    one choice, log probabilities, one of ``REFUSED``, a temperature over ``max_temperature``."""
    raw = request.raw
    if (request.n or 1) > 1:
        raise InvalidRequest(f"The router serves one choice from {models}; 'n' must be 1.", param="n")
    if raw.get("logprobs"):
        raise InvalidRequest(f"{models} return no log probabilities.", param="logprobs")
    for name in REFUSED:
        if raw.get(name) is not None:
            raise InvalidRequest(f"'{name}' has no counterpart for {models}.", param=name)
    temperature = request.temperature
    if max_temperature is not None and temperature is not None and temperature > max_temperature:
        raise InvalidRequest(
            f"{models} accept temperature from 0 to {max_temperature:g}.", param="temperature"
        )
