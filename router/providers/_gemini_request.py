"""Chat Completions request → the body of Gemini's ``generateContent`` (the Gemini API's and Vertex AI's
alike); the policy for what is refused, dropped or emulated is in ``gemini``'s docstring.

Gemini 3 requires each function call's ``thoughtSignature`` back on the next turn; ``Signatures``
keeps the ones the adapter saw, by the tool-call id it handed the client.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import msgspec

from router.errors import InvalidRequest
from router.providers._schema import sanitize_schema
from router.providers._translate import (
    append_turn,
    chosen_function,
    data_url,
    refuse_unsupported,
    text_of,
    tool_arguments,
)
from router.providers.base import UpstreamCall
from router.types import ChatRequest, ContentPart, Message

# --- constants -----------------------------------------------------------------------------------

SKIP_SIGNATURE = "skip_thought_signature_validator"
SIGNATURES_KEPT = 50_000
BUDGETS = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 32768,
}

_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode


class Signatures:
    """Thought signatures by the tool-call id the client saw; bounded, oldest forgotten first."""

    def __init__(self, limit: int = SIGNATURES_KEPT) -> None:
        self._kept: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def remember(self, call_id: str, signature: str) -> None:
        self._kept[call_id] = signature
        if len(self._kept) > self._limit:
            self._kept.popitem(last=False)

    def recall(self, call_id: str) -> str:
        return self._kept.get(call_id, SKIP_SIGNATURE)


# --- request builder -----------------------------------------------------------------------------


def build_body(call: UpstreamCall, signatures: Signatures) -> bytes:
    request = call.request
    refuse_unsupported(request, "Gemini models")
    system, contents = _contents(request.messages, signatures, call.model.upstream.startswith("gemini-3"))
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(i, t) for i, t in enumerate(request.tools)]}]
    config = _tool_config(request.tool_choice)
    if config:
        body["toolConfig"] = {"functionCallingConfig": config}
    generation = _generation(request, call.model.upstream)
    if generation:
        body["generationConfig"] = generation
    return _encode(body)


def _contents(
    source: list[Message], signatures: Signatures, needs_signatures: bool
) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool-call id → function name, for the results that follow
    for i, message in enumerate(source):
        if message.role in ("system", "developer"):
            system.append(text_of(message, i))
            continue
        if message.role in ("tool", "function"):
            call_id = message.tool_call_id if isinstance(message.tool_call_id, str) else ""
            name = names.get(call_id) or (message.name if isinstance(message.name, str) else "")
            if not name:
                raise InvalidRequest(
                    "A tool message must answer a tool call made earlier in the conversation.",
                    param=f"messages[{i}].tool_call_id",
                )
            response = {"functionResponse": {"name": name, "response": _as_object(text_of(message, i))}}
            append_turn(contents, "user", [response], "parts")
            continue
        parts = _parts(message, i)
        if message.role == "assistant":
            for j, tool_call in enumerate(message.tool_calls or []):
                names[tool_call.id] = tool_call.function.name
                part: dict[str, Any] = {
                    "functionCall": {"name": tool_call.function.name, "args": tool_arguments(tool_call, i, j)}
                }
                if needs_signatures:
                    part["thoughtSignature"] = signatures.recall(tool_call.id)
                parts.append(part)
        if parts:
            append_turn(contents, "model" if message.role == "assistant" else "user", parts, "parts")
    return "\n\n".join(s for s in system if s), contents


def _as_object(text: str) -> dict[str, Any]:
    try:
        value = _decode_any(text) if text.strip().startswith("{") else None
    except msgspec.DecodeError:
        value = None
    return value if isinstance(value, dict) else {"result": text}


def _parts(message: Message, i: int) -> list[dict[str, Any]]:
    content = message.content
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    return [p for j, part in enumerate(content) if (p := _part(part, f"messages[{i}].content[{j}]"))]


def _part(part: ContentPart, param: str) -> dict[str, Any] | None:
    if part.type in ("text", "refusal"):
        text = part.text if part.type == "text" else part.refusal
        return {"text": text} if isinstance(text, str) and text else None
    if part.type == "image_url" and part.image_url:
        url = part.image_url.url
        if url.startswith("data:"):
            mime, data = data_url(url, param)
            return {"inlineData": {"mimeType": mime, "data": data}}
        if url.startswith("https://generativelanguage.googleapis.com/"):
            return {"fileData": {"mimeType": "image/*", "fileUri": url}}
        raise InvalidRequest(
            "Gemini models take images as data: URLs or Gemini Files API URIs; the router fetches no URL.",
            param=param,
        )
    if part.type == "input_audio" and part.input_audio:
        audio = part.input_audio
        return {"inlineData": {"mimeType": f"audio/{audio.format}", "data": audio.data}}
    if part.type == "file" and part.file and isinstance(part.file.file_data, str):
        data = part.file.file_data
        mime, payload = data_url(data, param) if data.startswith("data:") else ("application/pdf", data)
        return {"inlineData": {"mimeType": mime, "data": payload}}
    raise InvalidRequest(f"Content of type '{part.type}' cannot be sent to Gemini models.", param=param)


def _declaration(i: int, tool: Any) -> dict[str, Any]:
    if tool.type != "function" or not tool.function:
        raise InvalidRequest(
            f"Gemini models accept function tools only, not '{tool.type}'.", param=f"tools[{i}]"
        )
    fn = tool.function
    out: dict[str, Any] = {"name": fn.name}
    if isinstance(fn.description, str):
        out["description"] = fn.description
    if isinstance(fn.parameters, dict) and fn.parameters.get("properties"):
        out["parameters"] = sanitize_schema(fn.parameters)
    return out


def _tool_config(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return None
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    if chosen_function(choice) is not None:
        return {"mode": "ANY", "allowedFunctionNames": [chosen_function(choice)]}
    raise InvalidRequest("Unsupported tool_choice for Gemini models.", param="tool_choice")


def _generation(request: ChatRequest, upstream: str) -> dict[str, Any]:
    raw = request.raw
    config: dict[str, Any] = {}
    for source, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if raw.get(source) is not None:
            config[target] = raw[source]
    if request.output_limit:
        config["maxOutputTokens"] = request.output_limit
    if request.stop:
        config["stopSequences"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    fmt = request.response_format
    if fmt is not None and fmt.type in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = fmt.json_schema.schema if fmt.json_schema else None
        if schema is not None:
            config["responseSchema"] = sanitize_schema(schema)
    effort = raw.get("reasoning_effort")
    if isinstance(effort, str) and effort in BUDGETS:
        if upstream.startswith("gemini-3"):
            config["thinkingConfig"] = {
                "thinkingLevel": "LOW" if effort in ("none", "minimal", "low") else "HIGH"
            }
        else:
            config["thinkingConfig"] = {"thinkingBudget": BUDGETS[effort]}
    return config
