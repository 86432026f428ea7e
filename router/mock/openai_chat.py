"""Fake OpenAI Chat Completions, ``POST /openai/v1/chat/completions``, in the real wire format.

Order: wire types (request views, response structs), request checks, prompt extraction, answer rendering
(JSON and SSE), then the endpoint that wires them to the shared fake state. Prompts of 1,024 tokens or
more are cached automatically, as OpenAI caches them: a repeated prefix is reported in ``cached_tokens``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, Final

import msgspec
from aiohttp import web

from router.mock._base import act_out, answer
from router.mock.openai_wire import (
    CACHE_MINIMUM_TOKENS,
    REASONING_MODEL,
    OpenAIGate,
    decode_failure,
    invalid_request,
    invalid_tier,
    served_tier,
)
from router.mock.prefixcache import PromptCache, implicit
from router.mock.streaming import SSE_HEADERS, Pace, paced, write_stream
from router.mock.textgen import Finish, LastRole, Prompt, Reply, ToolSpec, plan_reply

FINGERPRINT: Final = "fp_mock"
_DONE: Final = b"data: [DONE]\n\n"


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


# --- request checks ------------------------------------------------------------------------------


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


def cached_tokens(req: ChatRequest, reply: Reply, cache: PromptCache) -> int:
    """The prompt tokens an earlier request left cached (tools, then each message's role and text)."""
    if reply.prompt_tokens < CACHE_MINIMUM_TOKENS:
        return 0
    text = msgspec.json.encode(req.tools).decode() + "".join(
        f"\x00{m.role}\x00{_text_of(m.content)}" for m in req.messages
    )
    return min(implicit(cache, req.model, text, CACHE_MINIMUM_TOKENS), reply.prompt_tokens)


def _usage(reply: Reply, cached: int) -> _Usage:
    return _Usage(
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        total_tokens=reply.prompt_tokens + reply.completion_tokens,
        prompt_tokens_details=_PromptDetails(cached_tokens=cached),
    )


def completion_body(req: ChatRequest, reply: Reply, hex_id: str, tier: str, cached: int = 0) -> bytes:
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
            usage=_usage(reply, cached),
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

    def events(self, reply: Reply, cached: int = 0) -> Iterator[bytes]:
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
            yield self._head + b'],"usage":' + encode(_usage(reply, cached)) + b"}\n\n"


# --- endpoint ------------------------------------------------------------------------------------


class ChatEndpoint:
    """``POST /openai/v1/chat/completions`` on the OpenAI fake: key check, request log, faults and speed.

    ``render`` and ``render_events`` write the answer; a provider that adds its own fields to OpenAI's
    answers (Azure's content-filter annotations) overrides them.
    """

    __slots__ = ("_decoder", "_gate")

    def __init__(self, gate: OpenAIGate) -> None:
        self._gate = gate
        self._decoder = msgspec.json.Decoder(ChatRequest)

    def render(self, req: ChatRequest, reply: Reply, hex_id: str, tier: str, cached: int) -> bytes:
        """The ``chat.completion`` JSON."""
        return completion_body(req, reply, hex_id, tier, cached)

    def render_events(
        self, req: ChatRequest, reply: Reply, hex_id: str, tier: str, cached: int
    ) -> Iterator[tuple[bytes, Pace]]:
        """The stream's events before ``[DONE]``, each with its pace."""
        return paced(ChunkWriter(req, hex_id, tier).events(reply, cached), first_wait_before=1)

    async def create(self, request: web.Request) -> web.StreamResponse:
        gate = self._gate
        body, denied = await gate.admit(request)
        if denied is not None:
            return denied
        try:
            req = self._decoder.decode(body)
        except msgspec.DecodeError as exc:
            return decode_failure(exc)
        problem = _check(req)
        if problem is not None:
            return problem
        state = gate.state
        streaming = bool(req.stream)
        fault = await act_out(
            request,
            state.faults.take(gate.provider, req.model, streaming=streaming),
            lambda f: gate.fault_error(f, req.model),
        )
        if isinstance(fault, web.StreamResponse):
            return fault
        hex_id = state.ids.next_hex()
        tier = served_tier(req.service_tier) or "default"
        reply = plan_reply(prompt_of(req), hex_id)
        cached = cached_tokens(req, reply, state.prompts)
        behaviour = state.behaviour(gate.provider, req.model)
        if streaming:
            events = self.render_events(req, reply, hex_id, tier, cached)
            return await write_stream(
                request, SSE_HEADERS, events, behaviour, fault, error_event=gate.stream_error_event, end=_DONE
            )
        delay = behaviour.non_stream_delay(len(reply.pieces))
        if delay > 0:
            await asyncio.sleep(delay)
        return await answer(request, self.render(req, reply, hex_id, tier, cached), fault)
