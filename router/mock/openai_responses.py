"""Fake OpenAI Responses API, ``POST /openai/v1/responses``, in the real wire format.

The fake stores nothing: a request naming ``previous_response_id``, a ``conversation`` or an
``item_reference`` gets OpenAI's not-found answer, so a router under test must send whole conversations.
Only function tools are served; hosted tools (``web_search`` …) get a 400.

Order: request views, request checks (raising ``_Rejected``), prompt extraction, answer rendering (the
``Response`` object and its SSE events), then the endpoint that wires them to the shared fake state.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeVar

import msgspec
from aiohttp import web

from router.mock._base import act_out, answer
from router.mock.faultspec import Fault
from router.mock.openai_wire import (
    PROVIDER,
    REASONING_MODEL,
    STREAM_ERROR_MESSAGE,
    OpenAIGate,
    decode_failure,
    fault_error,
    invalid_request,
    invalid_tier,
    openai_error,
    served_tier,
)
from router.mock.streaming import FIRST, SSE_HEADERS, Pace, write_stream
from router.mock.textgen import Finish, LastRole, Prompt, Reply, ToolSpec, fake_arguments, plan_reply

MIN_OUTPUT_TOKENS: Final = 16
JSON_PIECE_CHARS: Final = 8
"""A JSON answer (``text.format`` json_object/json_schema) streams in pieces of this many characters."""
ENCRYPTED_REASONING: Final = "reasoning.encrypted_content"

_ITEM_TYPES: Final = ("message", "function_call", "function_call_output", "reasoning", "item_reference")
_ROLES: Final = ("user", "assistant", "system", "developer")
_INPUT_PARTS: Final = ("input_text", "input_image", "input_file")
_ASSISTANT_PARTS: Final = ("output_text", "refusal")
_TOOL_CHOICES: Final = ("none", "auto", "required")
_FORMATS: Final = ("text", "json_object", "json_schema")
_VERBOSITIES: Final = ("low", "medium", "high")
_EFFORTS: Final = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_SUMMARIES: Final = ("auto", "concise", "detailed")
_TRUNCATIONS: Final = ("auto", "disabled")
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
# ResponseErrorCode values a failed response may carry; anything else becomes server_error.
_ERROR_CODES: Final = frozenset(
    {"server_error", "rate_limit_exceeded", "invalid_prompt", "vector_store_timeout", "invalid_image"}
)

_T = TypeVar("_T")


# --- request views (only what the fake reads; unknown fields are ignored) --------------------------


class _Reasoning(msgspec.Struct):
    effort: str | None = None
    summary: str | None = None


class _Text(msgspec.Struct):
    format: dict[str, Any] | None = None
    verbosity: str | None = None


class ResponsesRequest(msgspec.Struct):
    """The part of a Responses request the fake looks at; input items and tools are checked one by one."""

    model: str
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    text: _Text | None = None
    reasoning: _Reasoning | None = None
    include: list[str] | None = None
    stream: bool | None = None
    store: bool | None = None
    background: bool | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    service_tier: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_logprobs: int | None = None
    truncation: str | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None


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


class _FunctionTool(msgspec.Struct):
    name: str
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class _Format(msgspec.Struct):
    type: str
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


# --- request checks ------------------------------------------------------------------------------


class _Rejected(Exception):
    """A request check failed; ``response`` is OpenAI's answer."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _listing(values: Sequence[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def _invalid_value(value: object, param: str, supported: Sequence[str]) -> _Rejected:
    return _Rejected(
        invalid_request(
            f"Invalid value: '{value}'. Supported values are: {_listing(supported)}.",
            param=param,
            code="invalid_value",
        )
    )


def _missing(param: str) -> _Rejected:
    return _Rejected(
        invalid_request(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    )


def _convert(obj: Any, kind: type[_T], where: str) -> _T:
    try:
        return msgspec.convert(obj, kind)
    except msgspec.ValidationError as exc:
        raise _Rejected(decode_failure(exc, where)) from None


def _type_of(obj: Mapping[str, Any], where: str, default: str | None = None) -> str:
    kind = obj.get("type", default)
    if kind is None:
        raise _missing(f"{where}.type")
    if not isinstance(kind, str):
        raise _Rejected(
            invalid_request(
                f"Invalid type for '{where}.type': expected a string.",
                param=f"{where}.type",
                code="invalid_type",
            )
        )
    return kind


def _strict_problem(schema: Mapping[str, Any], context: tuple[str, ...] = ()) -> str | None:
    """What OpenAI's strict mode rejects in a JSON schema: objects must close and require every key."""
    properties = schema.get("properties")
    if schema.get("type") == "object" or isinstance(properties, Mapping):
        if schema.get("additionalProperties") is not False:
            return f"In context={context}, 'additionalProperties' is required to be supplied and to be false."
        properties = properties if isinstance(properties, Mapping) else {}
        required = schema.get("required")
        listed = required if isinstance(required, list) else []
        missing = [str(name) for name in properties if name not in listed]
        if missing:
            return (
                f"In context={context}, 'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'."
            )
        for name, sub in properties.items():
            if isinstance(sub, Mapping):
                problem = _strict_problem(sub, (*context, "properties", str(name)))
                if problem:
                    return problem
    items = schema.get("items")
    if isinstance(items, Mapping):
        return _strict_problem(items, (*context, "items"))
    return None


class _Turn(NamedTuple):
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
        kind = _type_of(part, at)
        if kind not in allowed:
            raise _invalid_value(kind, f"{at}.type", allowed)
        if kind in ("input_text", "output_text"):
            texts.append(_convert(part, _TextPart, at).text)
        elif kind == "refusal":
            _convert(part, _RefusalPart, at)
        elif kind == "input_image":
            image = _convert(part, _ImagePart, at)
            if image.image_url is None and image.file_id is None:
                raise _Rejected(
                    invalid_request(
                        f"Invalid '{at}': one of 'image_url' or 'file_id' must be provided.",
                        param=at,
                        code="missing_required_parameter",
                    )
                )
        else:
            file = _convert(part, _FilePart, at)
            if file.file_id is None and file.file_data is None and file.file_url is None:
                raise _Rejected(
                    invalid_request(
                        f"Invalid '{at}': one of 'file_id', 'file_data' or 'file_url' must be provided.",
                        param=at,
                        code="missing_required_parameter",
                    )
                )
    return "".join(texts)


def _turns(items: list[dict[str, Any]]) -> list[_Turn]:
    """The checked input items; raises ``_Rejected`` as OpenAI would answer a bad one."""
    turns: list[_Turn] = []
    calls: set[str] = set()
    for index, item in enumerate(items):
        where = f"input[{index}]"
        kind = _type_of(item, where, "message")
        if kind == "message":
            message = _convert(item, _MessageItem, where)
            if message.role not in _ROLES:
                raise _invalid_value(message.role, f"{where}.role", _ROLES)
            content = message.content
            allowed = _ASSISTANT_PARTS if message.role == "assistant" else _INPUT_PARTS
            text = content if isinstance(content, str) else _parts_text(content, f"{where}.content", allowed)
            turns.append(_Turn("message", message.role, text, counted=True))
        elif kind == "function_call":
            call = _convert(item, _FunctionCallItem, where)
            calls.add(call.call_id)
            turns.append(_Turn("function_call", "assistant", call.arguments, counted=False))
        elif kind == "function_call_output":
            result = _convert(item, _FunctionCallOutputItem, where)
            if result.call_id not in calls:
                raise _Rejected(
                    invalid_request(
                        f"No tool call found for function call output with call_id {result.call_id}.",
                        param="input",
                    )
                )
            output = result.output
            text = output if isinstance(output, str) else _parts_text(output, f"{where}.output", _INPUT_PARTS)
            turns.append(_Turn("function_call_output", "tool", text, counted=True))
        elif kind == "reasoning":
            reasoning = _convert(item, _ReasoningItem, where)
            turns.append(_Turn("reasoning", "assistant", "", counted=False, item_id=reasoning.id))
        elif kind == "item_reference":
            reference = _convert(item, _ItemReference, where)
            raise _Rejected(
                openai_error(
                    404, f"Item with id '{reference.id}' not found.", "invalid_request_error", param="input"
                )
            )
        else:
            raise _invalid_value(kind, f"{where}.type", _ITEM_TYPES)
    for turn, following in zip(turns, [*turns[1:], None], strict=True):
        produced = following is not None and (
            following.kind == "function_call"
            or (following.kind == "message" and following.role == "assistant")
        )
        if turn.kind == "reasoning" and not produced:
            raise _Rejected(
                invalid_request(
                    f"Item '{turn.item_id}' of type 'reasoning' was provided without its required "
                    "following item.",
                    param="input",
                )
            )
    return turns


class _Tools(NamedTuple):
    specs: tuple[ToolSpec, ...]
    echo: list[dict[str, Any]]


def _tools(req: ResponsesRequest) -> _Tools:
    specs: list[ToolSpec] = []
    echo: list[dict[str, Any]] = []
    for index, tool in enumerate(req.tools or ()):
        where = f"tools[{index}]"
        kind = _type_of(tool, where)
        if kind != "function":
            if kind in _HOSTED_TOOLS:
                raise _Rejected(
                    invalid_request(f"Hosted tool '{kind}' is not supported with {req.model}.", param="tools")
                )
            raise _invalid_value(kind, f"{where}.type", ("function", *_HOSTED_TOOLS))
        function = _convert(tool, _FunctionTool, where)
        if not _FUNCTION_NAME.fullmatch(function.name):
            raise _Rejected(
                invalid_request(
                    f"Invalid '{where}.name': string does not match pattern. Expected a string that matches "
                    "the pattern '^[a-zA-Z0-9_-]{1,64}$'.",
                    param=f"{where}.name",
                    code="invalid_value",
                )
            )
        if function.strict and function.parameters is not None:
            problem = _strict_problem(function.parameters)
            if problem:
                raise _Rejected(
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
    return _Tools(tuple(specs), echo)


class _Choice(NamedTuple):
    allowed: bool
    forced: str | None
    only: frozenset[str] | None


def _tool_choice(choice: str | dict[str, Any] | None, names: Iterable[str]) -> _Choice:
    if choice is None:
        return _Choice(True, None, None)
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise _invalid_value(choice, "tool_choice", _TOOL_CHOICES)
        return _Choice(choice != "none", None, None)
    known = set(names)
    kind = _type_of(choice, "tool_choice")
    if kind == "function":
        name = choice.get("name")
        if not isinstance(name, str):
            raise _missing("tool_choice.name")
        if name not in known:
            raise _Rejected(
                invalid_request("Tool choice 'function' not found in 'tools' parameter.", param="tool_choice")
            )
        return _Choice(True, name, None)
    if kind == "allowed_tools":
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            raise _invalid_value(mode, "tool_choice.mode", ("auto", "required"))
        listed = choice.get("tools")
        if not isinstance(listed, list):
            raise _missing("tool_choice.tools")
        only = frozenset(str(t.get("name")) for t in listed if isinstance(t, dict))
        return _Choice(True, None, only)
    raise _Rejected(
        invalid_request(f"Tool choice '{kind}' not found in 'tools' parameter.", param="tool_choice")
    )


def _text_format(req: ResponsesRequest) -> tuple[_Format, dict[str, Any]]:
    """The requested output format and the ``text`` object the response echoes."""
    text = req.text or _Text()
    verbosity = text.verbosity or "medium"
    if verbosity not in _VERBOSITIES:
        raise _invalid_value(verbosity, "text.verbosity", _VERBOSITIES)
    if text.format is None:
        return _Format("text"), {"format": {"type": "text"}, "verbosity": verbosity}
    fmt = _convert(text.format, _Format, "text.format")
    if fmt.type not in _FORMATS:
        raise _invalid_value(fmt.type, "text.format.type", _FORMATS)
    if fmt.type != "json_schema":
        return fmt, {"format": {"type": fmt.type}, "verbosity": verbosity}
    if fmt.name is None:
        raise _missing("text.format.name")
    if fmt.schema is None:
        raise _missing("text.format.schema")
    if fmt.strict:
        problem = _strict_problem(fmt.schema)
        if problem:
            raise _Rejected(
                invalid_request(
                    f"Invalid schema for response_format '{fmt.name}': {problem}",
                    param="text.format.schema",
                    code="invalid_json_schema",
                )
            )
    echoed: dict[str, Any] = {"type": "json_schema"}
    if fmt.description is not None:
        echoed["description"] = fmt.description
    echoed.update(name=fmt.name, schema=fmt.schema, strict=bool(fmt.strict))
    return fmt, {"format": echoed, "verbosity": verbosity}


def _reasoning_echo(req: ResponsesRequest, reasons: bool) -> dict[str, Any]:
    asked = req.reasoning or _Reasoning()
    if asked.effort is not None:
        if not reasons:
            raise _Rejected(
                invalid_request(
                    "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
                    param="reasoning.effort",
                    code="unsupported_parameter",
                )
            )
        if asked.effort not in _EFFORTS:
            raise _invalid_value(asked.effort, "reasoning.effort", _EFFORTS)
    if asked.summary is not None and asked.summary not in _SUMMARIES:
        raise _invalid_value(asked.summary, "reasoning.summary", _SUMMARIES)
    effort = asked.effort if asked.effort is not None else "medium" if reasons else None
    return {"effort": effort, "summary": asked.summary}


def _check_stateless(req: ResponsesRequest) -> None:
    """Refuse what needs stored state: the fake keeps no responses or conversations."""
    if req.previous_response_id is not None:
        raise _Rejected(
            invalid_request(
                f"Previous response with id '{req.previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        )
    if req.conversation is not None:
        conversation = req.conversation
        named = conversation if isinstance(conversation, str) else conversation.get("id")
        raise _Rejected(
            openai_error(
                404,
                f"Conversation with id '{named}' not found.",
                "invalid_request_error",
                param="conversation",
            )
        )
    if req.background:
        raise _Rejected(
            invalid_request(
                "Background responses are not supported by this fake (it stores no responses).",
                param="background",
                code="unsupported_parameter",
            )
        )


def _check_scalars(req: ResponsesRequest) -> None:
    if req.max_output_tokens is not None and req.max_output_tokens < MIN_OUTPUT_TOKENS:
        raise _Rejected(
            invalid_request(
                "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
                f"{MIN_OUTPUT_TOKENS}, but got {req.max_output_tokens} instead.",
                param="max_output_tokens",
                code="integer_below_min_value",
            )
        )
    if served_tier(req.service_tier) is None:
        raise _Rejected(invalid_tier(req.service_tier))
    if req.truncation is not None and req.truncation not in _TRUNCATIONS:
        raise _invalid_value(req.truncation, "truncation", _TRUNCATIONS)


# --- prompt extraction ---------------------------------------------------------------------------


class Parsed(NamedTuple):
    """A checked Responses request: the neutral prompt and what the response echoes."""

    prompt: Prompt
    format: _Format
    text: dict[str, Any]
    tools: list[dict[str, Any]]
    reasoning: dict[str, Any]
    reasons: bool


def parse(req: ResponsesRequest) -> Parsed:
    """Check ``req`` as OpenAI would (raising ``_Rejected``) and map it to the fake model's ``Prompt``."""
    _check_stateless(req)
    _check_scalars(req)
    if req.input is None:
        raise _missing("input")
    if isinstance(req.input, str):
        turns = [_Turn("message", "user", req.input, counted=True)]
    elif not req.input:
        raise _Rejected(
            invalid_request(
                "Invalid 'input': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead.",
                param="input",
                code="empty_array",
            )
        )
    else:
        turns = _turns(req.input)
    tools = _tools(req)
    choice = _tool_choice(req.tool_choice, (t.name for t in tools.specs))
    fmt, text = _text_format(req)
    reasons = bool(REASONING_MODEL.match(req.model))
    reasoning = _reasoning_echo(req, reasons)
    texts = [req.instructions] if req.instructions else []
    texts += [t.text for t in turns if t.counted]
    if fmt.type == "json_object" and not any("json" in t.lower() for t in texts):
        raise _Rejected(
            invalid_request(
                "Response input messages must contain the word 'json' in some form to use 'text.format' "
                "of type 'json_object'.",
                param="input",
            )
        )
    last = turns[-1]
    last_role: LastRole = "tool" if last.role == "tool" else "user" if last.role == "user" else "other"
    results: list[str] = []
    if last_role == "tool":
        for turn in reversed(turns):
            if turn.role != "tool":
                break
            results.append(turn.text)
        results.reverse()
    specs = tools.specs if choice.only is None else tuple(t for t in tools.specs if t.name in choice.only)
    prompt = Prompt(
        user_text=next((t.text for t in reversed(turns) if t.kind == "message" and t.role == "user"), ""),
        prompt_chars=sum(len(t) for t in texts),
        last_role=last_role,
        tool_results=tuple(results),
        tools=specs,
        tools_allowed=choice.allowed,
        forced_tool=choice.forced,
        max_tokens=req.max_output_tokens,
    )
    return Parsed(prompt, fmt, text, tools.echo, reasoning, reasons)


def plan(parsed: Parsed, seed_hex: str) -> Reply:
    """The fake model's answer: textgen's plan, as JSON text when the format asks for JSON."""
    reply = plan_reply(parsed.prompt, seed_hex)
    fmt = parsed.format
    if reply.tool_calls or fmt.type == "text":
        return reply
    if fmt.type == "json_schema":
        value: Any = fake_arguments(fmt.schema)
    else:
        uncapped = msgspec.structs.replace(parsed.prompt, max_tokens=None)
        value = {"answer": plan_reply(uncapped, seed_hex).text}
    text = msgspec.json.encode(value).decode()
    pieces = [text[at : at + JSON_PIECE_CHARS] for at in range(0, len(text), JSON_PIECE_CHARS)]
    cap = parsed.prompt.max_tokens
    finish: Finish = "end"
    if cap is not None and len(pieces) > cap:
        pieces, finish = pieces[:cap], "length"
    return Reply(pieces, [], finish, None, reply.prompt_tokens, len(pieces))


# --- answer rendering ----------------------------------------------------------------------------


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _sse(payload: dict[str, Any]) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (payload["type"].encode(), msgspec.json.encode(payload))


class _EventList:
    """Stream events numbered from 0, each tagged with its pace: the first content event waits for the
    first token, each later content event one piece interval more; the others go at once."""

    __slots__ = ("_paced", "items")

    def __init__(self) -> None:
        self.items: list[tuple[bytes, Pace]] = []
        self._paced = 0

    def add(self, kind: str, *, content: bool = False, **fields: Any) -> None:
        pace: Pace = None
        if content:
            pace = FIRST if self._paced == 0 else self._paced
            self._paced += 1
        self.items.append((_sse({"type": kind, "sequence_number": len(self.items), **fields}), pace))


class Renderer:
    """Renders one answer: the ``Response`` object at each stage and the stream events."""

    __slots__ = ("_created", "_hex", "_parsed", "_reply", "_req", "_tier")

    def __init__(self, req: ResponsesRequest, parsed: Parsed, reply: Reply, hex_id: str) -> None:
        self._req = req
        self._parsed = parsed
        self._reply = reply
        self._hex = hex_id
        self._created = int(time.time())
        self._tier = served_tier(req.service_tier) or "default"

    @property
    def incomplete(self) -> bool:
        return self._reply.finish == "length"

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        *,
        error: dict[str, str] | None = None,
        final: bool = False,
    ) -> dict[str, Any]:
        """The ``Response`` object; ``final`` adds usage (a response in progress has none)."""
        req = self._req
        body: dict[str, Any] = {
            "id": f"resp_{self._hex}",
            "object": "response",
            "created_at": self._created,
            "status": status,
            "background": False,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "max_tool_calls": req.max_tool_calls,
            "model": req.model,
            "output": output,
            "parallel_tool_calls": True if req.parallel_tool_calls is None else req.parallel_tool_calls,
            "previous_response_id": None,
            "prompt_cache_key": req.prompt_cache_key,
            "reasoning": self._parsed.reasoning,
            "safety_identifier": req.safety_identifier,
            "service_tier": self._tier,
            "store": True if req.store is None else req.store,
            "temperature": 1.0 if req.temperature is None else req.temperature,
            "text": self._parsed.text,
            "tool_choice": "auto" if req.tool_choice is None else req.tool_choice,
            "tools": self._parsed.tools,
            "top_logprobs": 0 if req.top_logprobs is None else req.top_logprobs,
            "top_p": 1.0 if req.top_p is None else req.top_p,
            "truncation": req.truncation or "disabled",
        }
        if final:
            body["usage"] = _usage(self._reply)
        if req.user is not None:
            body["user"] = req.user
        body["metadata"] = req.metadata or {}
        return body

    def _reasoning_item(self, *, done: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"id": f"rs_{self._hex}", "type": "reasoning", "summary": []}
        if done and ENCRYPTED_REASONING in (self._req.include or ()):
            item["encrypted_content"] = base64.b64encode(f"mock-reasoning:{self._hex}".encode()).decode()
        return item

    def _message_item(self, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": f"msg_{self._hex}",
            "type": "message",
            "status": status,
            "content": content,
            "role": "assistant",
        }

    def _call_id(self, index: int) -> str:
        return f"fc_{self._hex[:20]}{index:04x}"

    def _call_item(self, index: int, status: str, arguments: str) -> dict[str, Any]:
        call = self._reply.tool_calls[index]
        return {
            "id": self._call_id(index),
            "type": "function_call",
            "status": status,
            "arguments": arguments,
            "call_id": call.id,
            "name": call.name,
        }

    def output(self) -> list[dict[str, Any]]:
        """The finished output items: a reasoning item for reasoning models, then calls or a message."""
        items = [self._reasoning_item(done=True)] if self._parsed.reasons else []
        reply = self._reply
        if reply.tool_calls:
            items += [self._call_item(i, "completed", c.arguments) for i, c in enumerate(reply.tool_calls)]
        else:
            status = "incomplete" if self.incomplete else "completed"
            items.append(self._message_item(status, [_text_part(reply.text)]))
        return items

    def final(self) -> dict[str, Any]:
        """The finished ``Response``: completed, or incomplete when the output token limit cut it."""
        return self.response("incomplete" if self.incomplete else "completed", self.output(), final=True)

    def events(self) -> list[tuple[bytes, Pace]]:
        """Every stream event before the terminal one, paced: the first content waits for the first
        token, then each delta one piece interval after the previous; the rest go at once."""
        events = _EventList()
        add = events.add
        in_progress = self.response("in_progress", [])
        add("response.created", response=in_progress)
        add("response.in_progress", response=in_progress)
        index = 0
        if self._parsed.reasons:
            add("response.output_item.added", output_index=0, item=self._reasoning_item(done=False))
            add("response.output_item.done", output_index=0, item=self._reasoning_item(done=True))
            index = 1
        reply = self._reply
        for number, call in enumerate(reply.tool_calls):
            at, item_id, args = index + number, self._call_id(number), call.arguments
            added = self._call_item(number, "in_progress", "")
            add("response.output_item.added", content=True, output_index=at, item=added)
            step = max(1, min(16, (len(args) + 1) // 2))  # always at least two fragments, as on chat
            for start in range(0, len(args), step):
                delta = args[start : start + step]
                add("response.function_call_arguments.delta", content=True, item_id=item_id, output_index=at,
                    delta=delta)  # fmt: skip
            add("response.function_call_arguments.done", item_id=item_id, name=call.name, output_index=at,
                arguments=args)  # fmt: skip
            add("response.output_item.done", output_index=at, item=self._call_item(number, "completed", args))
        if not reply.tool_calls:
            where: dict[str, Any] = {"item_id": f"msg_{self._hex}", "output_index": index, "content_index": 0}
            add("response.output_item.added", output_index=index, item=self._message_item("in_progress", []))
            add("response.content_part.added", **where, part=_text_part(""))
            for piece in reply.pieces:
                add("response.output_text.delta", content=True, **where, delta=piece, logprobs=[])
            text = reply.text
            add("response.output_text.done", content=not reply.pieces, **where, text=text, logprobs=[])
            add("response.content_part.done", **where, part=_text_part(text))
            status = "incomplete" if self.incomplete else "completed"
            item = self._message_item(status, [_text_part(text)])
            add("response.output_item.done", output_index=index, item=item)
        return events.items

    def terminal(self, sequence_number: int) -> bytes:
        """``response.completed`` (or ``response.incomplete``) with the whole response."""
        final = self.final()
        kind = "response.incomplete" if self.incomplete else "response.completed"
        return _sse({"type": kind, "sequence_number": sequence_number, "response": final})

    def failure(self, fault: Fault, sequence_number: int) -> bytes:
        """A ``stream_error`` fault: an ``error`` event, then ``response.failed`` (the fault's fields
        override the default code and message)."""
        code = fault.code if fault.code is not None else "server_error"
        message = fault.message if fault.message is not None else STREAM_ERROR_MESSAGE
        error = {
            "type": "error",
            "sequence_number": sequence_number,
            "code": code,
            "message": message,
            "param": fault.param,
        }
        failed = self.response(
            "failed", [], error={"code": code if code in _ERROR_CODES else "server_error", "message": message}
        )
        return _sse(error) + _sse(
            {"type": "response.failed", "sequence_number": sequence_number + 1, "response": failed}
        )


# --- endpoint ------------------------------------------------------------------------------------


class ResponsesEndpoint:
    """``POST /openai/v1/responses`` on the OpenAI fake: its key check, request log, faults and speed."""

    __slots__ = ("_decoder", "_gate")

    def __init__(self, gate: OpenAIGate) -> None:
        self._gate = gate
        self._decoder = msgspec.json.Decoder(ResponsesRequest)

    async def create(self, request: web.Request) -> web.StreamResponse:
        body, denied = await self._gate.admit(request)
        if denied is not None:
            return denied
        try:
            req = self._decoder.decode(body)
        except msgspec.DecodeError as exc:
            return decode_failure(exc)
        try:
            parsed = parse(req)
        except _Rejected as rejected:
            return rejected.response
        state = self._gate.state
        streaming = bool(req.stream)
        fault = await act_out(
            request,
            state.faults.take(PROVIDER, req.model, streaming=streaming),
            lambda f: fault_error(f, req.model),
        )
        if isinstance(fault, web.StreamResponse):
            return fault
        hex_id = state.ids.next_hex()
        reply = plan(parsed, hex_id)
        renderer = Renderer(req, parsed, reply, hex_id)
        behaviour = state.behaviour(PROVIDER, req.model)
        if streaming:
            events = renderer.events()
            count = len(events)
            return await write_stream(
                request,
                SSE_HEADERS,
                events,
                behaviour,
                fault,
                error_event=lambda f: renderer.failure(f, min(f.after_chunks, count)),
                end=lambda: renderer.terminal(count),
            )
        delay = behaviour.non_stream_delay(len(reply.pieces))
        if delay > 0:
            await asyncio.sleep(delay)
        return await answer(request, msgspec.json.encode(renderer.final()), fault)
