"""Fake OpenAI upstream: Chat Completions and model list in the real wire format, under ``/openai/v1``.

The Responses API lives in ``openai_responses``, legacy Completions and Embeddings in ``openai_legacy``;
``OpenAIFake`` registers their routes too, and they share this module's error envelope and key check.

Order: constants, wire types (request views, response structs), request checks, prompt extraction,
answer rendering (JSON and SSE), error envelope, then the handler class that wires state to routes.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any, Final

import msgspec
from aiohttp import web

from router.mock._base import MALFORMED_BODY as MALFORMED_BODY
from router.mock._base import (
    MISSING_FIELD,
    FakeProvider,
    act_out,
    answer,
    fault_headers,
    split_validation_error,
)
from router.mock.faults import MockState
from router.mock.faultspec import Fault
from router.mock.streaming import SSE_HEADERS, paced, write_stream
from router.mock.textgen import Finish, LastRole, Prompt, Reply, ToolSpec, plan_reply

PROVIDER: Final = "openai"
PREFIX: Final = "/openai/v1"
FINGERPRINT: Final = "fp_mock"
MODELS: Final = ("gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4o-mini", "o4-mini")
"""The chat models (served on Chat Completions and the Responses API)."""
REASONING_MODEL: Final = re.compile(r"gpt-5|o\d")
"""Matches (``.match``) the model names that reason: no ``max_tokens`` on chat, a reasoning item first."""
_DONE: Final = b"data: [DONE]\n\n"
STREAM_ERROR_MESSAGE: Final = "The server had an error while processing your request."


# --- wire types: request views (only the fields the fake reads; unknown fields are ignored) -------


class _Part(msgspec.Struct):
    type: str = "text"
    text: str | None = None


class _Message(msgspec.Struct):
    role: str
    content: str | list[_Part] | None = None


class _Function(msgspec.Struct):
    name: str
    parameters: dict[str, Any] | None = None


class _Tool(msgspec.Struct):
    type: str = "function"
    function: _Function | None = None


class _NamedFunction(msgspec.Struct):
    name: str


class _ToolChoice(msgspec.Struct):
    type: str
    function: _NamedFunction | None = None


class _StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class ChatRequest(msgspec.Struct):
    """The part of a Chat Completions request the fake looks at."""

    model: str
    messages: list[_Message]
    stream: bool | None = None
    stream_options: _StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    tools: list[_Tool] | None = None
    tool_choice: str | _ToolChoice | None = None
    service_tier: str | None = None


# --- wire types: responses -----------------------------------------------------------------------


class _FunctionOut(msgspec.Struct):
    name: str
    arguments: str


class _ToolCallOut(msgspec.Struct):
    id: str
    type: str
    function: _FunctionOut


class _MessageOut(msgspec.Struct):
    role: str
    content: str | None
    refusal: None
    annotations: list[Any] | msgspec.UnsetType = msgspec.UNSET
    tool_calls: list[_ToolCallOut] | msgspec.UnsetType = msgspec.UNSET


class _ChoiceOut(msgspec.Struct):
    index: int
    message: _MessageOut
    logprobs: None
    finish_reason: str


class _PromptDetails(msgspec.Struct):
    cached_tokens: int = 0
    audio_tokens: int = 0


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: int = 0
    audio_tokens: int = 0
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0


class _Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: _PromptDetails = msgspec.field(default_factory=_PromptDetails)
    completion_tokens_details: _CompletionDetails = msgspec.field(default_factory=_CompletionDetails)


class _Completion(msgspec.Struct):
    id: str
    object: str
    created: int
    model: str
    choices: list[_ChoiceOut]
    usage: _Usage
    service_tier: str
    system_fingerprint: str


class _ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody


class _ModelOut(msgspec.Struct):
    id: str
    object: str
    created: int
    owned_by: str


class _ModelList(msgspec.Struct):
    object: str
    data: list[_ModelOut]


# --- error envelope ------------------------------------------------------------------------------


def openai_error(
    status: int,
    message: str,
    error_type: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An OpenAI error response: ``{"error": {message, type, param, code}}`` with ``status``."""
    body = msgspec.json.encode(_ErrorEnvelope(_ErrorBody(message, error_type, param, code)))
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> web.Response:
    return openai_error(400, message, "invalid_request_error", param=param, code=code)


def not_found(request: web.BaseRequest) -> web.Response:
    """OpenAI's answer to an unknown path."""
    return openai_error(404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error")


def fault_error(fault: Fault, model: str) -> web.Response:
    """Render a ``status`` fault as OpenAI would send it."""
    message, error_type, code = _default_error(fault.status, model)
    return openai_error(
        fault.status,
        fault.message if fault.message is not None else message,
        fault.type if fault.type is not None else error_type,
        param=fault.param,
        code=fault.code if fault.code is not None else code,
        headers=fault_headers(fault, with_ms=True),
    )


def stream_error_event(fault: Fault) -> bytes:
    """The in-band SSE error event of a ``stream_error`` fault; the fault's fields override the defaults."""
    error = _ErrorBody(
        fault.message if fault.message is not None else STREAM_ERROR_MESSAGE,
        fault.type if fault.type is not None else "server_error",
        fault.param,
        fault.code,
    )
    return b"data: " + msgspec.json.encode(_ErrorEnvelope(error)) + b"\n\n"


def _default_error(status: int, model: str) -> tuple[str, str, str | None]:
    if status == 429:
        return (
            f"Rate limit reached for {model} in organization org-mock on requests per min (RPM): "
            "Limit 60, Used 60, Requested 1. Please try again in 1s. "
            "Visit https://platform.openai.com/account/rate-limits to learn more.",
            "requests",
            "rate_limit_exceeded",
        )
    if status == 503:
        return "The engine is currently overloaded, please try again later", "server_error", None
    if status >= 500:
        return (
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        )
    if status == 401:
        return "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
    if status == 404:
        return (
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        )
    return f"Mock error {status}.", "invalid_request_error", None


# --- request checks ------------------------------------------------------------------------------


def decode_failure(exc: msgspec.DecodeError, prefix: str = "") -> web.Response:
    """OpenAI's 400 for a body that is not JSON or does not fit the request type; ``prefix`` is the
    parameter path of the part that was converted (``input[2]``) when it is not the whole body."""
    if not isinstance(exc, msgspec.ValidationError):
        return invalid_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was "
            "not valid JSON. If you have trouble figuring out how to fix this, please contact us through "
            "our help center at help.openai.com.)"
        )
    detail, path = split_validation_error(exc)
    path = (prefix + path).lstrip(".")
    missing = MISSING_FIELD.match(detail)
    if missing:
        param = f"{path}.{missing['field']}" if path else missing["field"]
        return invalid_request(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    if not path:
        return invalid_request(f"Invalid body: {detail}.")
    return invalid_request(f"Invalid type for '{path}': {detail}.", param=path, code="invalid_type")


def _check(req: ChatRequest) -> web.Response | None:
    if not req.messages:
        return invalid_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    if req.stream_options is not None and not req.stream:
        return invalid_request(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    if req.max_tokens is not None and REASONING_MODEL.match(req.model):
        return invalid_request(
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    if served_tier(req.service_tier) is None:
        return invalid_tier(req.service_tier)
    return None


def invalid_tier(requested: str | None) -> web.Response:
    """The 400 for a ``service_tier`` that ``served_tier`` does not know."""
    return invalid_request(
        f"Invalid value: '{requested}'. Supported values are: "
        "'auto', 'default', 'flex', 'scale', 'priority' and 'fast'.",
        param="service_tier",
        code="invalid_value",
    )


def served_tier(requested: str | None) -> str | None:
    """The tier echoed in the response (see flex-and-tiers.md §3.7); ``None`` for an unknown value."""
    match requested:
        case None | "auto" | "default":
            return "default"
        case "fast" | "priority":
            return "priority"
        case "flex" | "scale":
            return requested
        case _:
            return None


# --- prompt extraction ---------------------------------------------------------------------------


def _text_of(content: str | list[_Part] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if part.type == "text" and part.text)


def prompt_of(req: ChatRequest) -> Prompt:
    """The provider-neutral view of a Chat Completions request."""
    messages = req.messages
    texts = [_text_of(m.content) for m in messages]
    user_text = next(
        (t for m, t in zip(reversed(messages), reversed(texts), strict=True) if m.role == "user"), ""
    )
    last = messages[-1].role
    last_role: LastRole = "user" if last == "user" else "tool" if last == "tool" else "other"
    results: list[str] = []
    if last_role == "tool":
        for message, text in zip(reversed(messages), reversed(texts), strict=True):
            if message.role != "tool":
                break
            results.append(text)
        results.reverse()
    choice = req.tool_choice
    stop = req.stop
    return Prompt(
        user_text=user_text,
        prompt_chars=sum(len(t) for t in texts),
        last_role=last_role,
        tool_results=tuple(results),
        tools=tuple(ToolSpec(t.function.name, t.function.parameters) for t in req.tools or () if t.function),
        tools_allowed=choice != "none",
        forced_tool=choice.function.name if isinstance(choice, _ToolChoice) and choice.function else None,
        max_tokens=req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens,
        stops=(stop,) if isinstance(stop, str) else tuple(stop or ()),
    )


# --- answer rendering ----------------------------------------------------------------------------


def _finish_reason(finish: Finish) -> str:
    return "length" if finish == "length" else "tool_calls" if finish == "tool_calls" else "stop"


def _usage(reply: Reply) -> _Usage:
    return _Usage(
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        total_tokens=reply.prompt_tokens + reply.completion_tokens,
    )


def completion_body(req: ChatRequest, reply: Reply, hex_id: str, tier: str) -> bytes:
    """The non-streaming ``chat.completion`` JSON."""
    if reply.tool_calls:
        message = _MessageOut(
            role="assistant",
            content=None,
            refusal=None,
            tool_calls=[
                _ToolCallOut(c.id, "function", _FunctionOut(c.name, c.arguments)) for c in reply.tool_calls
            ],
        )
    else:
        message = _MessageOut(role="assistant", content=reply.text, refusal=None, annotations=[])
    return msgspec.json.encode(
        _Completion(
            id=f"chatcmpl-{hex_id}",
            object="chat.completion",
            created=int(time.time()),
            model=req.model,
            choices=[_ChoiceOut(0, message, None, _finish_reason(reply.finish))],
            usage=_usage(reply),
            service_tier=tier,
            system_fingerprint=FINGERPRINT,
        )
    )


class ChunkWriter:
    """Builds the SSE events of one stream; the envelope bytes are built once per stream."""

    __slots__ = ("_head", "_tail", "_with_usage")

    def __init__(self, req: ChatRequest, hex_id: str, tier: str) -> None:
        self._head = (
            b'data: {"id":"chatcmpl-%s","object":"chat.completion.chunk","created":%d,"model":%s,'
            b'"service_tier":%s,"system_fingerprint":"%s","choices":['
        ) % (
            hex_id.encode(),
            int(time.time()),
            msgspec.json.encode(req.model),
            msgspec.json.encode(tier),
            FINGERPRINT.encode(),
        )
        self._with_usage = bool(req.stream_options and req.stream_options.include_usage)
        self._tail = b'],"usage":null}\n\n' if self._with_usage else b"]}\n\n"

    def _choice(self, delta: bytes, finish: bytes = b"null") -> bytes:
        return b'%s{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}%s' % (
            self._head,
            delta,
            finish,
            self._tail,
        )

    def events(self, reply: Reply) -> Iterator[bytes]:
        """Every event before ``[DONE]``: role, content or tool deltas, finish, optional usage."""
        encode = msgspec.json.encode
        if reply.tool_calls:
            yield self._choice(b'{"role":"assistant","content":null}')
            for index, call in enumerate(reply.tool_calls):
                first = {"index": index, "id": call.id, "type": "function",
                         "function": {"name": call.name, "arguments": ""}}  # fmt: skip
                yield self._choice(b'{"tool_calls":[' + encode(first) + b"]}")
                args = call.arguments
                step = max(1, min(16, (len(args) + 1) // 2))  # always at least two fragments
                for start in range(0, len(args), step):
                    fragment = {"index": index, "function": {"arguments": args[start : start + step]}}
                    yield self._choice(b'{"tool_calls":[' + encode(fragment) + b"]}")
        else:
            yield self._choice(b'{"role":"assistant","content":"","refusal":null}')
            for piece in reply.pieces:
                yield self._choice(b'{"content":' + encode(piece) + b"}")
        yield self._choice(b"{}", b'"' + _finish_reason(reply.finish).encode() + b'"')
        if self._with_usage:
            yield self._head + b'],"usage":' + encode(_usage(reply)) + b"}\n\n"


# --- handlers ------------------------------------------------------------------------------------


class OpenAIFake(FakeProvider):
    """The OpenAI routes of a mock app, reading faults, speed and keys from ``state``."""

    provider = PROVIDER

    def __init__(self, state: MockState) -> None:
        # The sibling endpoint modules build on this one's envelope and checks: imported late.
        from router.mock.openai_legacy import COMPLETION_MODELS, EMBEDDING_DIMENSIONS, LegacyEndpoints
        from router.mock.openai_responses import ResponsesEndpoint

        names = [(name, "openai") for name in MODELS]
        names += [(name, "system") for name in (*COMPLETION_MODELS, *EMBEDDING_DIMENSIONS)]
        models = _ModelList("list", [_ModelOut(name, "model", 1_700_000_000, owner) for name, owner in names])
        super().__init__(state, msgspec.json.encode(models))
        self._decoder = msgspec.json.Decoder(ChatRequest)
        self._responses = ResponsesEndpoint(self)
        self._legacy = LegacyEndpoints(self)

    @property
    def state(self) -> MockState:
        return self._state

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{PREFIX}/chat/completions", self.chat_completions)
        app.router.add_post(f"{PREFIX}/responses", self._responses.create)
        app.router.add_post(f"{PREFIX}/completions", self._legacy.completions)
        app.router.add_post(f"{PREFIX}/embeddings", self._legacy.embeddings)
        app.router.add_get(f"{PREFIX}/models", self.list_models)
        app.router.add_route("*", "/openai/{tail:.*}", self.unknown)

    async def admit(self, request: web.BaseRequest) -> tuple[bytes, web.Response | None]:
        """Read and record the body, then check the key: the body and the 401 (``None`` when let in)."""
        body = await request.read()
        self._record(request, body)
        return body, self._denied(request)

    def _not_found(self, request: web.BaseRequest) -> web.Response:
        return not_found(request)

    def _denied(self, request: web.BaseRequest) -> web.Response | None:
        required = self._state.required_key(PROVIDER)
        if required is None:
            return None
        given = request.headers.get("Authorization", "")
        if given == f"Bearer {required}":
            return None
        key = given.removeprefix("Bearer ").strip()
        shown = f"{key[:3]}{'*' * max(len(key) - 7, 0)}{key[-4:]}" if len(key) > 7 else key or "(none)"
        return openai_error(
            401,
            f"Incorrect API key provided: {shown}. "
            "You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            code="invalid_api_key",
        )

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        body, denied = await self.admit(request)
        if denied is not None:
            return denied
        try:
            req = self._decoder.decode(body)
        except msgspec.DecodeError as exc:
            return decode_failure(exc)
        problem = _check(req)
        if problem is not None:
            return problem
        state = self._state
        streaming = bool(req.stream)
        fault = await act_out(
            request,
            state.faults.take(PROVIDER, req.model, streaming=streaming),
            lambda f: fault_error(f, req.model),
        )
        if isinstance(fault, web.StreamResponse):
            return fault
        hex_id = state.ids.next_hex()
        tier = served_tier(req.service_tier) or "default"
        reply = plan_reply(prompt_of(req), hex_id)
        behaviour = state.behaviour(PROVIDER, req.model)
        if streaming:
            events = paced(ChunkWriter(req, hex_id, tier).events(reply), first_wait_before=1)
            return await write_stream(
                request, SSE_HEADERS, events, behaviour, fault, error_event=stream_error_event, end=_DONE
            )
        delay = behaviour.non_stream_delay(len(reply.pieces))
        if delay > 0:
            await asyncio.sleep(delay)
        return await answer(request, completion_body(req, reply, hex_id, tier), fault)
