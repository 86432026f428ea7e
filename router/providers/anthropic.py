"""Adapter for Anthropic's Messages API: Chat Completions ⇄ Messages, streaming included.

Translation policy for Chat parameters with no Messages counterpart:
- refused with a 400 naming the parameter: ``n`` > 1, ``logprobs``/``top_logprobs``, ``logit_bias``,
  audio input or output, ``prediction``, file ids, ``temperature`` above 1 (Anthropic's range is 0-1;
  the router does not clamp silently), and tool types other than ``function``;
- dropped, because they only tune or label the call: ``seed``, ``presence_penalty``,
  ``frequency_penalty``, ``metadata`` (OpenAI's stored-completion tags), ``store``, ``verbosity``,
  ``prompt_cache_key``, ``prompt_cache_retention``, ``service_tier`` and ``stream_options`` (the
  router always gets usage);
- emulated: ``response_format: json_object`` becomes an instruction in ``system``.
System and developer messages anywhere in the conversation are joined, in order, into ``system``.

Prompt caching: ``cache_control`` on a content part, tool, tool call, message (its last block) or request
(the last message's) reaches the block it marks, as OpenRouter and LiteLLM pass it; a marked system
prompt goes as text blocks. A
model's ``auto_cache`` marks a request that has no marker (``_caching``); ``usage_of`` maps the counts.

The request builder is in ``_anthropic_request``. Where calls go and with which credential is a
route's business (``_seams.ClaudeRoute``): the Messages API's own (``MessagesApi``), or Claude on
Vertex AI's (``vertex``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from functools import partial
from typing import Any

import msgspec

from router.catalog import Provider
from router.errors import DECODE_ERRORS, RouterError, StreamInterrupted, UpstreamBadResponse
from router.providers._anthropic_request import build_body
from router.providers._envelopes import map_anthropic_error
from router.providers._errors import note_early_close, refused_credentials
from router.providers._http import UpstreamClient
from router.providers._seams import ClaudeRoute
from router.providers._sse import SSEParser, events_until_end
from router.providers.base import UpstreamCall
from router.types import (
    AssistantMessage,
    ChatChunk,
    ChatCompletion,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    FunctionDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# --- constants -----------------------------------------------------------------------------------

MESSAGES_PATH = "/v1/messages"
DEFAULT_VERSION = "2023-06-01"
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# --- wire types ----------------------------------------------------------------------------------


class _Block(msgspec.Struct):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None
    thinking: str | None = None


class _CacheCreation(msgspec.Struct):
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0


class _Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: _CacheCreation | None = None


class _Message(msgspec.Struct):
    id: str
    model: str
    content: list[_Block] = []
    stop_reason: str | None = None
    usage: _Usage = msgspec.field(default_factory=_Usage)


class _Delta(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    stop_reason: str | None = None


class _ErrorBody(msgspec.Struct):
    type: str = "api_error"
    message: str = ""


class _Event(msgspec.Struct):
    type: str
    message: _Message | None = None
    index: int | None = None
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _ErrorBody | None = None


_encode = msgspec.json.Encoder().encode
_decode_message = msgspec.json.Decoder(_Message).decode
_decode_event = msgspec.json.Decoder(_Event).decode


# --- response parser -----------------------------------------------------------------------------


def usage_of(usage: _Usage) -> Usage:
    """Anthropic's input_tokens exclude cache reads and writes; OpenAI's prompt_tokens include them.
    Reads are ``cached_tokens``; writes ``cache_write_tokens`` (OpenAI's and OpenRouter's name), with
    their TTL split under ``cache_creation_token_details`` (LiteLLM's) for the 1-hour write price."""
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    prompt = usage.input_tokens + read + written
    details: dict[str, Any] = {"cached_tokens": read, "cache_write_tokens": written}
    if written and usage.cache_creation is not None:
        details["cache_creation_token_details"] = msgspec.structs.asdict(usage.cache_creation)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=usage.output_tokens,
        total_tokens=prompt + usage.output_tokens,
        prompt_tokens_details=details,
        completion_tokens_details={"reasoning_tokens": 0},
    )


def parse_message(body: bytes, provider: str, created: int) -> ChatCompletion:
    try:
        message = _decode_message(body)
    except DECODE_ERRORS as exc:
        raise UpstreamBadResponse(
            f"provider '{provider}' sent an answer that is not a message: {exc}"
        ) from None
    texts = [b.text for b in message.content if b.type == "text" and b.text]
    thinking = [b.thinking for b in message.content if b.type == "thinking" and b.thinking]
    calls = [
        ToolCall(
            id=b.id or "", function=FunctionCall(name=b.name or "", arguments=_encode(b.input or {}).decode())
        )
        for b in message.content
        if b.type == "tool_use"
    ]
    reply = AssistantMessage(content="".join(texts) if texts else None)
    if calls:
        reply.tool_calls = calls
    if thinking:
        reply.reasoning_content = "".join(thinking)
    finish = FINISH.get(message.stop_reason or "end_turn", "stop")
    return ChatCompletion(
        id=message.id,
        created=created,
        model=message.model,
        choices=[Choice(index=0, message=reply, finish_reason=finish)],
        usage=usage_of(message.usage),
    )


# --- stream translator ---------------------------------------------------------------------------


class StreamTranslator:
    """Anthropic stream events → Chat Completions chunks. Pure: feed it SSE bytes, get chunks.

    Tool-call indexes are ordinals among tool calls (0, 1, …), not Anthropic block indexes.
    """

    def __init__(self, provider: str, created: int) -> None:
        self._parser = SSEParser()
        self._provider = provider
        self._created = created
        self._id = ""
        self._model = ""
        self._tools: dict[int, int] = {}
        self._input = _Usage()
        self.finished = False  # saw message_delta with the stop reason: the answer is whole
        self.done = False  # saw message_stop
        self.error: RouterError | None = None

    def feed(self, raw: bytes) -> list[ChatChunk]:
        chunks: list[ChatChunk] = []
        for sse in self._parser.feed(raw):
            try:
                event = _decode_event(sse.data)
            except DECODE_ERRORS:
                self.error = UpstreamBadResponse(
                    f"provider '{self._provider}' sent a stream event that is not JSON"
                )
                break
            if event.type == "error":
                message = event.error.message if event.error else "unknown error"
                self.error = StreamInterrupted(
                    f"provider '{self._provider}' reported an error mid-stream: {message}"
                )
                break
            chunk = self._translate(event)
            if chunk is not None:
                chunks.append(chunk)
        return chunks

    def _chunk(self, delta: Delta | None, finish: str | None = None) -> ChatChunk:
        choices = [] if delta is None else [ChunkChoice(index=0, delta=delta, finish_reason=finish)]
        return ChatChunk(id=self._id, created=self._created, model=self._model, choices=choices)

    def _translate(self, event: _Event) -> ChatChunk | None:
        kind = event.type
        if kind == "message_start" and event.message is not None:
            self._id, self._model = event.message.id, event.message.model
            self._input = event.message.usage
            return self._chunk(Delta(role="assistant", content=""))
        if kind == "content_block_start" and event.content_block is not None:
            block = event.content_block
            if block.type == "tool_use" and event.index is not None:
                ordinal = self._tools[event.index] = len(self._tools)
                call = ToolCallDelta(
                    index=ordinal,
                    id=block.id or "",
                    type="function",
                    function=FunctionDelta(name=block.name or "", arguments=""),
                )
                return self._chunk(Delta(tool_calls=[call]))
            return None
        if kind == "content_block_delta" and event.delta is not None:
            delta = event.delta
            if delta.type == "text_delta" and delta.text:
                return self._chunk(Delta(content=delta.text))
            if delta.type == "input_json_delta" and delta.partial_json and event.index in self._tools:
                call = ToolCallDelta(
                    index=self._tools[event.index], function=FunctionDelta(arguments=delta.partial_json)
                )
                return self._chunk(Delta(tool_calls=[call]))
            if delta.type == "thinking_delta" and delta.thinking:
                return self._chunk(Delta(reasoning_content=delta.thinking))
            return None
        if kind == "message_delta" and event.delta is not None:
            self._input = _cumulative(self._input, event.usage or _Usage())
            self.finished = True
            return self._chunk(Delta(), FINISH.get(event.delta.stop_reason or "end_turn", "stop"))
        if kind == "message_stop":
            self.done = True
            return self.usage_chunk()
        return None  # ping, content_block_stop, and event types added later

    def usage_chunk(self) -> ChatChunk:
        """The closing chunk with the answer's usage (sent at message_stop)."""
        chunk = self._chunk(None)
        chunk.usage = usage_of(self._input)
        return chunk

    def check_complete(self) -> None:
        if not self.finished:
            raise StreamInterrupted(f"provider '{self._provider}' ended the stream before message_stop")


def _cumulative(started: _Usage, delta: _Usage) -> _Usage:
    """message_start's usage updated by message_delta's, whose counts are cumulative: the output count
    always, the input and cache counts when present; the TTL split comes only with message_start."""
    read, written = delta.cache_read_input_tokens, delta.cache_creation_input_tokens
    return msgspec.structs.replace(
        started,
        output_tokens=delta.output_tokens,
        input_tokens=delta.input_tokens or started.input_tokens,
        cache_read_input_tokens=started.cache_read_input_tokens if read is None else read,
        cache_creation_input_tokens=started.cache_creation_input_tokens if written is None else written,
    )


# --- I/O -----------------------------------------------------------------------------------------


class MessagesApi:
    """The route of Anthropic's own API: ``{base_url}/v1/messages``, the key as ``x-api-key`` and the
    version as a header; a refused key is the router's."""

    __slots__ = ("_headers", "_provider", "_url", "body_version")

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self._url = provider.base_url + MESSAGES_PATH
        self.body_version: str | None = None
        self._headers = {stream: self._build(provider, stream) for stream in (False, True)}

    @staticmethod
    def _build(provider: Provider, stream: bool) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "anthropic-version": DEFAULT_VERSION,
        }
        headers.update(provider.headers)
        if provider.api_key:
            headers["x-api-key"] = provider.api_key
        return headers

    def url(self, model: str, *, stream: bool) -> str:
        return self._url

    async def headers(self, *, stream: bool) -> dict[str, str]:
        return self._headers[stream].copy()

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> RouterError:
        provider = self._provider
        return map_anthropic_error(
            status, body, headers, provider, lambda m: refused_credentials(provider, m)
        )


class AnthropicAdapter:
    """Chat Completions against Anthropic's Messages API, at the URLs ``route`` gives (default:
    Anthropic's own)."""

    def __init__(self, provider: Provider, client: UpstreamClient, route: ClaudeRoute | None = None) -> None:
        self.provider = provider
        self._client = client
        self._route: ClaudeRoute = route or MessagesApi(provider)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def complete(self, call: UpstreamCall) -> ChatCompletion:
        route = self._route
        body = build_body(call, stream=False, version=route.body_version)
        url = route.url(call.model.upstream, stream=False)
        answer = await self._client.post(url, await route.headers(stream=False), body)
        if answer.status >= 400:
            raise route.map_error(answer.status, answer.body, answer.headers)
        return parse_message(answer.body, self.provider.name, call.created)

    async def stream(self, call: UpstreamCall) -> AsyncGenerator[ChatChunk, None]:
        route = self._route
        body = build_body(call, stream=True, version=route.body_version)
        url = route.url(call.model.upstream, stream=True)
        async with self._client.stream(url, await route.headers(stream=True), body) as response:
            if response.status >= 400:
                raise route.map_error(response.status, await response.read(), response.headers)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                raise UpstreamBadResponse(
                    f"provider '{self.provider.name}' did not answer with an event stream"
                )
            translator = StreamTranslator(self.provider.name, call.created)
            early = partial(
                note_early_close, self.provider.name, call.model.id, call.request_id, "message_stop"
            )
            async for chunk in events_until_end(response.chunks(), translator, early):
                yield chunk
            if not translator.done:
                # The stop reason and the output count came in message_delta: the answer is whole.
                yield translator.usage_chunk()
