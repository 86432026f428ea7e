"""Fake Anthropic upstream: Messages, count_tokens and models in the real wire format, under ``/anthropic``.

Order: constants, response wire types (request views are in ``anthropic_wire``), error envelope, request
checks, prompt extraction, answer rendering (JSON and SSE), then the handler class that wires state to
routes. Prompt caching follows the request's ``cache_control`` breakpoints (``anthropic_cache``); the knobs
``cache=N`` / ``cache_write=N`` in the system prompt report cache reads and writes instead. ``preamble`` in
the user text puts a text block before the ``tool_use`` blocks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Final

import msgspec
from aiohttp import web

from router.mock._base import (
    MISSING_FIELD,
    FakeProvider,
    Venue,
    act_out,
    answer,
    fault_headers,
    split_validation_error,
)
from router.mock.anthropic_cache import NO_CACHE, CacheUsage, breakpoint_problem, cache_usage
from router.mock.anthropic_wire import (
    Block,
    Document,
    Image,
    Message,
    MessagesRequest,
    Tagged,
    Text,
    ToolResult,
    ToolUse,
)
from router.mock.faults import MockState
from router.mock.faultspec import Fault
from router.mock.streaming import FIRST, SSE_HEADERS, Pace, write_stream
from router.mock.textgen import LastRole, Prompt, Reply, ToolSpec, plan_reply, prompt_tokens, split_pieces

PROVIDER: Final = "anthropic"
PREFIX: Final = "/anthropic"
MODELS: Final = (
    ("claude-opus-4-5-20251101", "Claude Opus 4.5", "2025-11-01T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
)
PING_EVERY: Final = 10
"""On a paced stream (``tokens_per_s``), a ``ping`` event precedes every this-many-th content delta."""
_UNKNOWN_FIELD: Final = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")
_INDEX: Final = re.compile(r"\[(\d+)\]")
_CACHE_READ: Final = re.compile(r"\bcache=(\d+)")
_CACHE_WRITE: Final = re.compile(r"\bcache_write=(\d+)")
_PREAMBLE: Final = re.compile(r"\bpreamble\b")
_DEFAULT_ERRORS: Final = (
    (401, "authentication_error", "invalid x-api-key"),
    (403, "permission_error", "Your API key does not have permission to use the specified resource."),
    (404, "not_found_error", "model: {model}"),
    (413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
    (429, "rate_limit_error", "This request would exceed the rate limit for your organization of 50 "
     "requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."),
    (504, "timeout_error", "Request timed out."),
    (529, "overloaded_error", "Overloaded"),
)  # fmt: skip
_PING: Final = b'event: ping\ndata: {"type":"ping"}\n\n'
_MESSAGE_STOP: Final = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


# --- wire types: responses -----------------------------------------------------------------------


class _TextOut(Tagged, tag="text"):
    text: str


class _ToolUseOut(Tagged, tag="tool_use"):
    id: str
    name: str
    input: msgspec.Raw


class _CacheCreation(msgspec.Struct):
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0


class _Usage(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation: _CacheCreation = msgspec.field(default_factory=_CacheCreation)
    service_tier: str = "standard"


class _MessageOut(msgspec.Struct):
    id: str
    type: str
    role: str
    model: str
    content: list[_TextOut | _ToolUseOut]
    stop_reason: str | None
    stop_sequence: str | None
    usage: _Usage


# --- error envelope ------------------------------------------------------------------------------


def anthropic_error(
    status: int, error_type: str, message: str, request_id: str, headers: dict[str, str] | None = None
) -> web.Response:
    """An Anthropic error: ``{"type": "error", "error": {type, message}, "request_id"}`` with ``status``."""
    error = {"type": error_type, "message": message}
    body = msgspec.json.encode({"type": "error", "error": error, "request_id": request_id})
    headers = {**(headers or {}), "request-id": request_id}
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def _ok(body: bytes, request_id: str) -> web.Response:
    return web.Response(body=body, content_type="application/json", headers={"request-id": request_id})


def invalid_request(message: str, request_id: str) -> web.Response:
    return anthropic_error(400, "invalid_request_error", message, request_id)


def fault_error(fault: Fault, model: str, request_id: str) -> web.Response:
    """Render a ``status`` fault as Anthropic would send it (``retry-after`` when the fault sets it)."""
    error_type, message = _default_error(fault.status, model)
    return anthropic_error(
        fault.status,
        fault.type if fault.type is not None else error_type,
        fault.message if fault.message is not None else message,
        request_id,
        fault_headers(fault),
    )


def stream_error_event(fault: Fault) -> bytes:
    """The in-band ``error`` event of a ``stream_error`` fault (default: overloaded)."""
    error = {"type": fault.type or "overloaded_error", "message": fault.message or "Overloaded"}
    return _event(b"error", b'"error":' + msgspec.json.encode(error))


def _default_error(status: int, model: str) -> tuple[str, str]:
    for code, error_type, message in _DEFAULT_ERRORS:
        if code == status:
            return error_type, message.format(model=model)
    if status >= 500:
        return "api_error", "Internal server error"
    return "invalid_request_error", f"Mock error {status}."


# --- request checks ------------------------------------------------------------------------------


def _decode_failure(exc: msgspec.DecodeError) -> str:
    if not isinstance(exc, msgspec.ValidationError):
        return "There was an error parsing the body of your request: it is not valid JSON."
    detail, path = split_validation_error(exc)
    path = _INDEX.sub(r".\1", path).lstrip(".")
    for pattern, wording in (
        (MISSING_FIELD, "Field required"),
        (_UNKNOWN_FIELD, "Extra inputs are not permitted"),
    ):
        named = pattern.match(detail)
        if named:
            return f"{path}.{named['field']}: {wording}" if path else f"{named['field']}: {wording}"
    return f"{path}: {detail}" if path else detail


def _blocks(content: str | list[Block]) -> list[Block]:
    return [Text(content)] if isinstance(content, str) else content


def _check(req: MessagesRequest, *, counting: bool) -> str | None:
    """The message of the 400 Anthropic would answer, or ``None`` when the request is acceptable."""
    if not counting and isinstance(req.max_tokens, msgspec.UnsetType):
        return "max_tokens: Field required"
    if isinstance(req.max_tokens, int) and req.max_tokens < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    messages = req.messages
    if not messages:
        return "messages: at least one message is required"
    if messages[0].role != "user":
        return 'messages: first message must use the "user" role'
    if isinstance(req.system, list) and any(not b.text for b in req.system):
        return "system: text content blocks must be non-empty"
    for index, message in enumerate(messages):
        if index and message.role == messages[index - 1].role:
            return (
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{message.role}" roles in a row'
            )
        blocks = _blocks(message.content)
        if message.content in ("", []) and not (message.role == "assistant" and index == len(messages) - 1):
            return (
                f"messages.{index}: all messages must have non-empty content "
                "except for the optional final assistant message"
            )
        if isinstance(message.content, list) and any(isinstance(b, Text) and not b.text for b in blocks):
            return "messages: text content blocks must be non-empty"
        problem = _check_tool_pairing(messages, index, blocks)
        if problem is not None:
            return problem
    if req.tool_choice is not None and req.tool_choice.type == "tool" and not req.tool_choice.name:
        return "tool_choice.tool.name: Field required"
    budget = req.thinking.budget_tokens if req.thinking and req.thinking.type == "enabled" else None
    if req.thinking and req.thinking.type == "enabled" and budget is None:
        return "thinking.enabled.budget_tokens: Field required"
    if budget is not None and budget < 1024:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if budget is not None and isinstance(req.max_tokens, int) and req.max_tokens <= budget:
        return "`max_tokens` must be greater than `thinking.budget_tokens`."
    return breakpoint_problem(req)


def _check_tool_pairing(messages: list[Message], index: int, blocks: list[Block]) -> str | None:
    """Tool results must answer tool uses of the turn just before, and every tool use must be answered."""
    if messages[index].role == "user":
        previous = _blocks(messages[index - 1].content) if index else []
        offered = {b.id for b in previous if isinstance(b, ToolUse)}
        for position, block in enumerate(blocks):
            if isinstance(block, ToolResult) and block.tool_use_id not in offered:
                return (
                    f"messages.{index}.content.{position}: unexpected `tool_use_id` found in `tool_result` "
                    f"blocks: {block.tool_use_id}. Each `tool_result` block must have a corresponding "
                    "`tool_use` block in the previous message."
                )
        return None
    if index + 1 == len(messages):
        return None
    answered = {b.tool_use_id for b in _blocks(messages[index + 1].content) if isinstance(b, ToolResult)}
    missing = [b.id for b in blocks if isinstance(b, ToolUse) and b.id not in answered]
    if missing:
        return (
            f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: "
            f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block "
            "in the next message."
        )
    return None


# --- prompt extraction ---------------------------------------------------------------------------


def _system_text(system: str | list[Text] | None) -> str:
    if system is None:
        return ""
    return system if isinstance(system, str) else "\n".join(b.text for b in system)


def _result_text(content: str | list[Text | Image | Document] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(part.text for part in content if isinstance(part, Text))


def prompt_of(req: MessagesRequest) -> Prompt:
    """The provider-neutral view of a Messages request."""
    chars = len(_system_text(req.system))
    user_text = ""
    results: list[str] = []
    for message in req.messages:
        blocks = _blocks(message.content)
        text = "".join(b.text for b in blocks if isinstance(b, Text))
        results = [_result_text(b.content) for b in blocks if isinstance(b, ToolResult)]
        chars += len(text) + sum(len(r) for r in results)
        if message.role == "user" and (text or not results):
            user_text = text
    last_role: LastRole = "user"
    if req.messages[-1].role == "assistant":
        last_role = "other"  # a prefill: the model continues that text
    elif results and not text.strip():
        last_role = "tool"
    choice = req.tool_choice
    return Prompt(
        user_text=user_text,
        prompt_chars=chars,
        last_role=last_role,
        tool_results=tuple(results) if last_role == "tool" else (),
        tools=tuple(ToolSpec(t.name, t.input_schema) for t in req.tools or ()),
        tools_allowed=choice is None or choice.type != "none",
        forced_tool=choice.name if choice is not None and choice.type == "tool" else None,
        max_tokens=req.max_tokens if isinstance(req.max_tokens, int) else None,
        stops=tuple(req.stop_sequences or ()),
    )


# --- answer rendering ----------------------------------------------------------------------------


def _stop_reason(finish: str) -> str:
    return {"length": "max_tokens", "stop_sequence": "stop_sequence", "tool_calls": "tool_use"}.get(
        finish, "end_turn"
    )


def _knob(pattern: re.Pattern[str], text: str) -> int:
    found = pattern.search(text)
    return int(found.group(1)) if found else 0


def answer_of(
    req: MessagesRequest, prompt: Prompt, reply: Reply, hex_id: str, cached: CacheUsage = NO_CACHE
) -> tuple[_MessageOut, list[str]]:
    """The complete message for ``reply`` and the text pieces its stream sends (one delta each); its
    usage reports the prompt-cache reads and writes ``cached`` (or the system prompt's knobs)."""
    calls = reply.tool_calls
    choice = req.tool_choice
    if calls and choice is not None and choice.disable_parallel_tool_use:
        calls = calls[:1]
    pieces = reply.pieces
    if calls and _PREAMBLE.search(prompt.user_text):
        pieces = split_pieces(f"Let me call {', '.join(c.name for c in calls)}.")
    content: list[_TextOut | _ToolUseOut] = [_TextOut("".join(pieces))] if pieces else []
    content += [
        _ToolUseOut("toolu_" + c.id.removeprefix("call_"), c.name, msgspec.Raw(c.arguments.encode()))
        for c in calls
    ]
    system = _system_text(req.system)
    read, write = _knob(_CACHE_READ, system), _knob(_CACHE_WRITE, system)
    if read or write:
        cached = CacheUsage(read=read, write_5m=write)
    total = max(reply.prompt_tokens, cached.read + cached.written)
    output = reply.completion_tokens + (len(pieces) if calls else 0)
    creation = _CacheCreation(cached.write_5m, cached.write_1h)
    message = _MessageOut(
        id=f"msg_{hex_id}",
        type="message",
        role="assistant",
        model=req.model,
        content=content,
        stop_reason=_stop_reason(reply.finish),
        stop_sequence=reply.stop_sequence,
        usage=_Usage(total - cached.read - cached.written, output, cached.written, cached.read, creation),
    )
    return message, pieces


def _sse(name: bytes, data: bytes) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (name, data)


def _event(name: bytes, fields: bytes) -> bytes:
    """An SSE event whose data is ``{"type": name, <fields>}``."""
    return _sse(name, b'{"type":"%s",%s}' % (name, fields))


def stream_events(
    message: _MessageOut, pieces: list[str], *, ping_every: int = 0
) -> Iterator[tuple[bytes, Pace]]:
    """Every event before ``message_stop``, each with its ``Pace``: content deltas are the paced pieces."""
    encode = msgspec.json.encode
    usage = msgspec.structs.replace(message.usage, output_tokens=1)
    head = msgspec.structs.replace(message, content=[], stop_reason=None, stop_sequence=None, usage=usage)
    yield _event(b"message_start", b'"message":' + encode(head)), None
    yield _PING, None
    wait: Pace = FIRST
    sent = 0
    for index, block in enumerate(message.content):
        if isinstance(block, _TextOut):
            start: _TextOut | _ToolUseOut = _TextOut("")
            deltas = [b'{"type":"text_delta","text":%s}' % encode(p) for p in pieces]
        else:
            start = _ToolUseOut(block.id, block.name, msgspec.Raw(b"{}"))
            args = bytes(block.input).decode()
            step = max(1, min(16, (len(args) + 1) // 2))  # "" then at least two fragments
            fragments = ["", *(args[i : i + step] for i in range(0, len(args), step))]
            deltas = [b'{"type":"input_json_delta","partial_json":%s}' % encode(f) for f in fragments]
        yield _event(b"content_block_start", b'"index":%d,"content_block":%s' % (index, encode(start))), wait
        wait = None
        for delta in deltas:
            if ping_every and sent and sent % ping_every == 0:
                yield _PING, None
            yield _event(b"content_block_delta", b'"index":%d,"delta":%s' % (index, delta)), sent
            sent += 1
        yield _event(b"content_block_stop", b'"index":%d' % index), None
    final = encode({"stop_reason": message.stop_reason, "stop_sequence": message.stop_sequence})
    counts = message.usage  # cumulative; the TTL split and the tier come only with message_start
    cumulative = {
        "input_tokens": counts.input_tokens,
        "cache_creation_input_tokens": counts.cache_creation_input_tokens,
        "cache_read_input_tokens": counts.cache_read_input_tokens,
        "output_tokens": counts.output_tokens,
    }
    yield _event(b"message_delta", b'"delta":%s,"usage":%s' % (final, encode(cumulative))), wait


# --- handlers ------------------------------------------------------------------------------------


class AnthropicFake(FakeProvider):
    """The Anthropic routes of a mock app, reading faults, speed and keys from ``state``; every answer
    carries a ``request-id``, so the catch-all and model-list routes are its own."""

    provider = PROVIDER

    def __init__(self, state: MockState) -> None:
        models = [
            {
                "type": "model",
                "id": model_id,
                "display_name": name,
                "created_at": created,
                "lifecycle": "active",
            }
            for model_id, name, created in MODELS
        ]
        listing = {"data": models, "has_more": False, "first_id": MODELS[0][0], "last_id": MODELS[-1][0]}
        super().__init__(state, msgspec.json.encode(listing))
        self._decoder = msgspec.json.Decoder(MessagesRequest)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{PREFIX}/v1/messages", self.messages)
        app.router.add_post(f"{PREFIX}/v1/messages/count_tokens", self.count_tokens)
        app.router.add_get(f"{PREFIX}/v1/models", self.list_models)
        app.router.add_route("*", f"{PREFIX}/{{tail:.*}}", self.unknown)

    def _begin(self, request: web.BaseRequest, body: bytes) -> tuple[str, web.Response | None]:
        """Record the request, mint its id, and check the version header and the key."""
        request_id = self._record_id(request, body)
        version = request.headers.get("anthropic-version")
        if not version:
            return request_id, invalid_request("anthropic-version: header is required", request_id)
        required = self._state.required_key(PROVIDER)
        if required is None:
            return request_id, None
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        key = request.headers.get("x-api-key") or bearer
        if key == required:
            return request_id, None
        message = "invalid x-api-key" if key else "x-api-key header is required"
        return request_id, anthropic_error(401, "authentication_error", message, request_id)

    def _accept(
        self, request: web.BaseRequest, body: bytes, *, counting: bool
    ) -> tuple[str, MessagesRequest | web.Response]:
        """``_begin``, then decode and check the body; a response instead of the request on failure."""
        request_id, refused = self._begin(request, body)
        if refused is not None:
            return request_id, refused
        return request_id, self.checked(body, request_id, counting=counting)

    def _record_id(self, request: web.BaseRequest, body: bytes) -> str:
        """Log the request; return the ``req_...`` id its response carries."""
        self._record(request, body)
        return "req_" + self._state.ids.next_hex()

    async def unknown(self, request: web.Request) -> web.Response:
        request_id = self._record_id(request, await request.read())
        return anthropic_error(404, "not_found_error", "Not Found", request_id)

    async def list_models(self, request: web.Request) -> web.Response:
        request_id, refused = self._begin(request, b"")
        if refused is not None:
            return refused
        return _ok(self._models_body, request_id)

    async def count_tokens(self, request: web.Request) -> web.Response:
        request_id, req = self._accept(request, await request.read(), counting=True)
        if isinstance(req, web.Response):
            return req
        tokens = prompt_tokens(prompt_of(req).prompt_chars)
        return _ok(b'{"input_tokens":%d}' % tokens, request_id)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        request_id, req = self._accept(request, await request.read(), counting=False)
        if isinstance(req, web.Response):
            return req
        venue = Venue(PROVIDER, lambda f, _: fault_error(f, req.model, request_id))
        return await self.serve(request, req, request_id, streaming=bool(req.stream), venue=venue)

    def checked(
        self, body: bytes, request_id: str, *, counting: bool = False
    ) -> MessagesRequest | web.Response:
        """A Messages body decoded and checked as Anthropic does, or its 400."""
        try:
            req = self._decoder.decode(body)
        except msgspec.DecodeError as exc:
            return invalid_request(_decode_failure(exc), request_id)
        problem = _check(req, counting=counting)
        return req if problem is None else invalid_request(problem, request_id)

    async def serve(
        self,
        request: web.Request,
        req: MessagesRequest,
        request_id: str,
        *,
        streaming: bool,
        venue: Venue,
        scripted_as: str | None = None,
        id_prefix: str = "",
    ) -> web.StreamResponse:
        """Answer a checked Messages request, for Anthropic or another host of Claude (``venue``):
        faults and speed are looked up for ``scripted_as`` (default: the body's model), and the
        message id starts ``msg_{id_prefix}``."""
        state = self._state
        model = scripted_as or req.model
        fault = await act_out(
            request,
            state.faults.take(venue.provider, model, streaming=streaming),
            lambda f: venue.status_error(f, streaming),
            {"request-id": request_id},
        )
        if isinstance(fault, web.StreamResponse):
            return fault
        hex_id = state.ids.next_hex()
        prompt = prompt_of(req)
        reply = plan_reply(prompt, hex_id)
        cached = cache_usage(req, state.prompts, reply.prompt_tokens)
        message, pieces = answer_of(req, prompt, reply, id_prefix + hex_id, cached)
        behaviour = state.behaviour(venue.provider, model)
        if streaming:
            ping_every = PING_EVERY if behaviour.piece_interval else 0
            events = stream_events(message, pieces, ping_every=ping_every)
            headers = (*SSE_HEADERS, ("request-id", request_id))
            return await write_stream(
                request, headers, events, behaviour, fault, error_event=stream_error_event, end=_MESSAGE_STOP
            )
        delay = behaviour.non_stream_delay(len(reply.pieces))
        if delay > 0:
            await asyncio.sleep(delay)
        return await answer(request, msgspec.json.encode(message), fault, {"request-id": request_id})
