"""Request decoding: JSON body → canonical Structs, with errors that name the offending field."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from router.errors import InvalidRequest
from router.jsonschema import check_schema
from router.responses.request import ResponsesRequest, append_item, input_items, to_chat_body
from router.types import ChatRequest

T = TypeVar("T", bound=msgspec.Struct)

_decode_any = msgspec.json.Decoder().decode
_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


# Deeper JSON than this is refused: no API body nests so far, and walking it costs the router.
MAX_JSON_DEPTH = 100


def decode_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        data = _decode_any(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"We could not parse the JSON body of your request: {exc}.") from None
    except UnicodeDecodeError:
        raise _not_utf8(body) from None
    except RecursionError:
        raise _too_deep() from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    # Fewer brackets than the limit cannot nest past it; only bodies with more are walked.
    if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH and _depth(data) > MAX_JSON_DEPTH:
        raise _too_deep()
    return data


def _not_utf8(body: bytes) -> InvalidRequest:
    """The body holds bytes that are not UTF-8 (inside a string: outside one the JSON parser says so)."""
    try:
        body.decode("utf-8")
        where = ""
    except UnicodeDecodeError as exc:
        where = f" (byte 0x{body[exc.start]:02x} at offset {exc.start})"
    return InvalidRequest(
        f"The request body is not valid UTF-8{where}; JSON bodies must be encoded in UTF-8.",
        code="invalid_encoding",
    )


def _too_deep() -> InvalidRequest:
    return InvalidRequest(
        f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels, which this router does not accept.",
        code="json_too_deep",
    )


def _depth(value: Any) -> int:
    """How deep ``value`` nests, walking containers only (strings and numbers cost nothing)."""
    deepest = 0
    level: list[Any] = [value]
    while level:
        deepest += 1
        if deepest > MAX_JSON_DEPTH:
            return deepest
        below: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            below.extend(c for c in children if isinstance(c, (dict, list)))
        level = below
    return deepest


def convert(data: dict[str, Any], kind: type[T]) -> T:
    try:
        return msgspec.convert(data, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc)) from None


def decode_chat(body: bytes) -> ChatRequest:
    data = decode_object(body)
    mixed = _check_messages(data.get("messages"))
    data = _chat_shaped(data, mixed)
    request = convert(data, ChatRequest)
    if request.stream_options is not None and not request.stream:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )
    check_chat(request)
    request.raw = data
    return request


ROLES = ("system", "developer", "user", "assistant", "tool", "function")
# Roles whose message must carry ``content`` (an assistant may carry tool calls instead).
_CONTENT_REQUIRED = frozenset({"system", "developer", "user", "tool"})
_INSTEAD_OF_CONTENT = ("tool_calls", "function_call", "refusal")


def _check_messages(messages: Any) -> bool:
    """What OpenAI requires of each chat message beyond its types: a known role, and the content that
    role needs. Responses-shaped items among the messages are checked by their own translation;
    whether there are any is the answer."""
    mixed = False
    if not isinstance(messages, list):
        return mixed  # the typed conversion names the field
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        if _responses_shaped(message):
            mixed = True
            continue
        where = f"messages[{i}]"
        role = message.get("role")
        if role is None:
            raise InvalidRequest(f"Missing required parameter: '{where}.role'.", param=f"{where}.role")
        if role not in ROLES:
            supported = ", ".join(f"'{r}'" for r in ROLES)
            raise InvalidRequest(
                f"Invalid value for '{where}.role': {_shown(role)}. Supported values are: {supported}.",
                param=f"{where}.role",
                code="invalid_value",
            )
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise InvalidRequest(
                f"Missing required parameter: '{where}.tool_call_id'.",
                param=f"{where}.tool_call_id",
                code="missing_required_parameter",
            )
        if message.get("content") is not None:
            continue
        if role in _CONTENT_REQUIRED:
            raise InvalidRequest(
                f"Missing required parameter: '{where}.content'.",
                param=f"{where}.content",
                code="missing_required_parameter",
            )
        if role == "assistant" and not any(
            message.get(k) for k in ("tool_calls", "function_call", "refusal")
        ):
            raise InvalidRequest(
                f"Missing required parameter: '{where}.content': an assistant message needs 'content' "
                "or 'tool_calls'.",
                param=f"{where}.content",
                code="missing_required_parameter",
            )
    return mixed


def check_chat(request: ChatRequest) -> None:
    """Checks of nested fields that the types alone do not make: the schemas the request carries, and
    a ``json_schema`` answer format that has its schema."""
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema":
        if fmt.json_schema is None:
            raise InvalidRequest(
                "Missing required parameter: 'response_format.json_schema'.",
                param="response_format.json_schema",
            )
        if fmt.json_schema.schema is not None:
            check_schema(fmt.json_schema.schema, "response_format.json_schema.schema")
    for i, tool in enumerate(request.tools or ()):
        if tool.function and isinstance(tool.function.parameters, dict):
            check_schema(tool.function.parameters, f"tools[{i}].function.parameters")


def _shown(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else msgspec.json.encode(value).decode()[:40]


def _chat_shaped(data: dict[str, Any], mixed: bool) -> dict[str, Any]:
    """Chat bodies that carry Responses-shaped input, as Cursor sends them for some models: an
    ``input`` instead of ``messages``, or (``mixed``) Responses items and parts among the messages."""
    messages = data.get("messages")
    if messages is None and "input" in data:
        responses = convert(data, ResponsesRequest)
        responses.raw = data
        body = to_chat_body(responses, input_items(responses))
        if isinstance(data.get("stream_options"), dict):
            body["stream_options"] = data["stream_options"]
        elif body.get("stream"):
            del body["stream_options"]  # the client did not ask for the usage chunk
        return body
    if mixed and isinstance(messages, list):
        converted: list[dict[str, Any]] = []
        for i, message in enumerate(messages):
            if _responses_shaped(message):
                append_item(message, i, converted)
            else:
                converted.append(message)
        return {**data, "messages": converted}
    return data


def _responses_shaped(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    if message.get("type") not in (None, "message"):
        return True  # function_call, function_call_output, reasoning, ...
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(part, dict) and str(part.get("type", "")).startswith(("input_", "output_"))
        for part in content
    )


def _invalid(text: str) -> InvalidRequest:
    match = _PATH.match(text)
    message, path = (match.group("msg"), match.group("path") or "") if match else (text, "")
    param = path.lstrip(".") or None
    missing = _MISSING.match(message)
    if missing:
        field = missing.group("field")
        param = f"{param}.{field}" if param else field
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    if param is None:
        return InvalidRequest(f"Invalid request body: {message}.")
    return InvalidRequest(f"Invalid value for '{param}': {_plain(message)}.", param=param)


_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "array": "an array",
    "object": "an object",
    "null": "null",
}
_TYPES = re.compile(r"`([a-z]+(?: \| [a-z]+)*)`")


def _plain(message: str) -> str:
    """msgspec's wording made readable: "Expected `str | null`" → "expected a string or null"."""

    def spell(match: re.Match[str]) -> str:
        names = [_NAMES.get(t, t) for t in match.group(1).split(" | ")]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]

    return _TYPES.sub(spell, message).replace("Expected", "expected").replace("`", "'")
