"""Adapter for AWS Bedrock's Converse and ConverseStream APIs: Chat Completions ⇄ Converse, streaming
included (binary AWS event-stream frames), signed with SigV4 or a Bedrock API key.

Translation policy for Chat parameters (the request builder is ``_converse``):
- refused with a 400 naming the parameter: ``n`` > 1, ``logprobs``/``top_logprobs``, ``logit_bias``,
  ``prediction``, audio, ``temperature`` above 1 (Converse's range is 0-1; the router does not clamp),
  image URLs that are not ``data:`` URLs (the router never fetches a URL), file ids and files other
  than PDF, tool types other than ``function``, and ``tool_choice`` ``required`` or named on models
  that cannot be told (Llama, Mistral);
- dropped: ``seed``, penalties, ``user``, ``metadata``, ``store``, ``service_tier``,
  ``parallel_tool_calls`` (Converse has no such switch), ``stream_options`` (usage always comes),
  ``reasoning_effort`` on models other than Claude, and ``cache_control`` on models without prompt
  caching (Claude and Nova take it as ``cachePoint`` blocks, at most four);
- emulated: ``response_format: json_object`` is an instruction in ``system``; ``json_schema`` is
  Bedrock's structured output (``outputConfig.textFormat``), or on Nova, which has none, a forced tool
  whose input becomes the answer's text; ``tool_choice: none`` offers no tool (a stub tool when the
  conversation holds tool calls, which Converse then requires); ``reasoning_effort`` on Claude is
  extended thinking. Llama and Mistral do not stream tool use: a stream that offers them tools is
  asked without streaming and replayed as chunks.
Answers: ``reasoningContent`` is ``reasoning_content``; ``guardrail_intervened`` and
``content_filtered`` finish with ``content_filter``; a ``malformed_model_output`` or
``malformed_tool_use`` stop is the model's failure (502, another deployment may serve).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from functools import partial
from typing import Any, Final
from urllib.parse import quote

import msgspec

from router.catalog import Provider
from router.errors import (
    DECODE_ERRORS,
    RouterError,
    StreamInterrupted,
    UpstreamBadResponse,
    UpstreamStatusError,
)
from router.providers._aws import Signer, build_signer
from router.providers._converse import Converse, build_body, family_of
from router.providers._dialect import base_headers
from router.providers._errors import note_early_close, refused_credentials, scrub
from router.providers._eventstream import CorruptFrame, EventMessage, EventStreamDecoder
from router.providers._http import UpstreamClient, retry_after_seconds
from router.providers._sse import events_until_end
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

EVENT_STREAM = "application/vnd.amazon.eventstream"
FINISH: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
MALFORMED: Final = frozenset({"malformed_model_output", "malformed_tool_use"})
# Errors that say the router's credentials are refused (AWS-wide ones, not in Bedrock's model).
CREDENTIAL_ERRORS: Final = frozenset(
    {
        "accessdeniedexception",
        "unrecognizedclientexception",
        "invalidsignatureexception",
        "incompletesignatureexception",
        "expiredtokenexception",
        "missingauthenticationtokenexception",
    }
)

# --- wire types ----------------------------------------------------------------------------------


class _ToolUse(msgspec.Struct, rename="camel"):
    tool_use_id: str = ""
    name: str = ""
    input: Any = None


class _ReasoningText(msgspec.Struct):
    text: str = ""


class _Reasoning(msgspec.Struct, rename="camel"):
    reasoning_text: _ReasoningText | None = None
    text: str | None = None  # in stream deltas


class _Block(msgspec.Struct, rename="camel"):
    text: str | None = None
    tool_use: _ToolUse | None = None
    reasoning_content: _Reasoning | None = None


class _Message(msgspec.Struct):
    content: list[_Block] = []


class _Output(msgspec.Struct):
    message: _Message | None = None


class _CacheDetail(msgspec.Struct, rename="camel"):
    ttl: str = "5m"
    input_tokens: int = 0


class _Usage(msgspec.Struct, rename="camel"):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    cache_details: list[_CacheDetail] = []


class _Response(msgspec.Struct, rename="camel"):
    output: _Output
    stop_reason: str = "end_turn"
    usage: _Usage = msgspec.field(default_factory=_Usage)


class _ToolInput(msgspec.Struct):
    input: str = ""


class _Delta(msgspec.Struct, rename="camel"):
    text: str | None = None
    tool_use: _ToolInput | None = None
    reasoning_content: _Reasoning | None = None


class _Start(msgspec.Struct, rename="camel"):
    tool_use: _ToolUse | None = None


class _Event(msgspec.Struct, rename="camel"):
    """Any ConverseStream event's payload (its kind is in the frame's ``:event-type``)."""

    content_block_index: int = 0
    start: _Start | None = None
    delta: _Delta | None = None
    stop_reason: str | None = None
    usage: _Usage | None = None


class _Error(msgspec.Struct):
    message: str | None = None
    Message: str | None = None
    code: str | None = None
    type_: str | None = msgspec.field(default=None, name="__type")


_encode = msgspec.json.Encoder().encode
_decode_response = msgspec.json.Decoder(_Response).decode
_decode_event = msgspec.json.Decoder(_Event).decode
_decode_error = msgspec.json.Decoder(_Error).decode

# --- response parser -----------------------------------------------------------------------------


def usage_of(usage: _Usage) -> Usage:
    """Converse's inputTokens exclude cache reads and writes; OpenAI's prompt_tokens include them.
    Reads are ``cached_tokens``, writes ``cache_write_tokens`` with their TTL split (``cacheDetails``)
    under ``cache_creation_token_details``, as the Anthropic adapter reports them."""
    read, written = usage.cache_read_input_tokens, usage.cache_write_input_tokens
    prompt = usage.input_tokens + read + written
    details: dict[str, Any] = {"cached_tokens": read, "cache_write_tokens": written}
    if written and usage.cache_details:
        by_ttl = {d.ttl: d.input_tokens for d in usage.cache_details}
        details["cache_creation_token_details"] = {
            "ephemeral_5m_input_tokens": by_ttl.get("5m", 0),
            "ephemeral_1h_input_tokens": by_ttl.get("1h", 0),
        }
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=usage.output_tokens,
        total_tokens=prompt + usage.output_tokens,
        prompt_tokens_details=details,
        completion_tokens_details={"reasoning_tokens": 0},
    )


def finish_of(stop_reason: str, provider: str) -> str:
    if stop_reason in MALFORMED:
        raise UpstreamBadResponse(f"provider '{provider}' reports that the model's output was {stop_reason}")
    return FINISH.get(stop_reason, "stop")


def parse_response(body: bytes, call: UpstreamCall, json_tool: str | None) -> ChatCompletion:
    provider = call.provider.name
    try:
        response = _decode_response(body)
    except DECODE_ERRORS as exc:
        raise UpstreamBadResponse(
            f"provider '{provider}' sent an answer that is not Converse's: {exc}"
        ) from None
    blocks = response.output.message.content if response.output.message else []
    texts = [b.text for b in blocks if b.text]
    reasoning = [
        b.reasoning_content.reasoning_text.text
        for b in blocks
        if b.reasoning_content and b.reasoning_content.reasoning_text
    ]
    calls: list[ToolCall] = []
    for block in blocks:
        use = block.tool_use
        if use is None:
            continue
        arguments = _encode(use.input if use.input is not None else {}).decode()
        if use.name == json_tool:
            texts.append(arguments)  # the stand-in tool's input is the JSON answer
        else:
            calls.append(
                ToolCall(id=use.tool_use_id, function=FunctionCall(name=use.name, arguments=arguments))
            )
    finish = finish_of(response.stop_reason, provider)
    if json_tool is not None and finish == "tool_calls" and not calls:
        finish = "stop"
    reply = AssistantMessage(content="".join(texts) if texts else None)
    if calls:
        reply.tool_calls = calls
    if reasoning:
        reply.reasoning_content = "".join(reasoning)
    return ChatCompletion(
        id=f"chatcmpl-{call.request_id}",
        created=call.created,
        model=call.model.upstream,
        choices=[Choice(index=0, message=reply, finish_reason=finish)],
        usage=usage_of(response.usage),
    )


# --- stream translator ---------------------------------------------------------------------------


class StreamTranslator:
    """ConverseStream frames → Chat Completions chunks. Pure: feed it body bytes, get chunks.

    Block state is kept by ``contentBlockIndex``; tool-call indexes are ordinals among tool calls.
    ``messageStop`` (the stop reason) makes the answer whole; ``metadata`` (usage) ends the stream.
    """

    def __init__(self, call: UpstreamCall, json_tool: str | None) -> None:
        self._decoder = EventStreamDecoder()
        self._provider = call.provider.name
        self._id = f"chatcmpl-{call.request_id}"
        self._created = call.created
        self._model = call.model.upstream
        self._json_tool = json_tool
        self._tools: dict[int, int] = {}  # block index → tool-call ordinal
        self._json_blocks: set[int] = set()
        self.finished = False
        self.done = False
        self.error: RouterError | None = None

    def feed(self, raw: bytes) -> list[ChatChunk]:
        chunks: list[ChatChunk] = []
        try:
            messages = self._decoder.feed(raw)
        except CorruptFrame as exc:
            self.error = StreamInterrupted(
                f"provider '{self._provider}' sent a corrupt event-stream frame: {exc}"
            )
            return chunks
        for message in messages:
            if message.kind != "event":
                self.error = stream_error(message, self._provider)
                break
            try:
                event = _decode_event(message.payload)
            except DECODE_ERRORS:
                self.error = UpstreamBadResponse(
                    f"provider '{self._provider}' sent a stream event that is not JSON"
                )
                break
            chunk = self._translate(message.name, event)
            if chunk is not None:
                chunks.append(chunk)
        return chunks

    def _chunk(self, delta: Delta | None, finish: str | None = None) -> ChatChunk:
        choices = [] if delta is None else [ChunkChoice(index=0, delta=delta, finish_reason=finish)]
        return ChatChunk(id=self._id, created=self._created, model=self._model, choices=choices)

    def _translate(self, name: str, event: _Event) -> ChatChunk | None:
        index = event.content_block_index
        if name == "messageStart":
            return self._chunk(Delta(role="assistant", content=""))
        if name == "contentBlockStart" and event.start is not None and event.start.tool_use is not None:
            use = event.start.tool_use
            if use.name == self._json_tool:
                self._json_blocks.add(index)
                return None
            ordinal = self._tools[index] = len(self._tools)
            call = ToolCallDelta(
                index=ordinal,
                id=use.tool_use_id,
                type="function",
                function=FunctionDelta(name=use.name, arguments=""),
            )
            return self._chunk(Delta(tool_calls=[call]))
        if name == "contentBlockDelta" and event.delta is not None:
            return self._delta(index, event.delta)
        if name == "messageStop":
            self.finished = True
            finish = finish_of(event.stop_reason or "end_turn", self._provider)
            if finish == "tool_calls" and not self._tools:
                finish = "stop"  # only the stand-in tool of a JSON answer was called
            return self._chunk(Delta(), finish)
        if name == "metadata":
            self.done = True
            chunk = self._chunk(None)
            chunk.usage = usage_of(event.usage or _Usage())
            return chunk
        return None  # contentBlockStop, and event types added later

    def _delta(self, index: int, delta: _Delta) -> ChatChunk | None:
        if delta.text:
            return self._chunk(Delta(content=delta.text))
        if delta.tool_use is not None and delta.tool_use.input:
            if index in self._json_blocks:
                return self._chunk(Delta(content=delta.tool_use.input))
            if index in self._tools:
                call = ToolCallDelta(
                    index=self._tools[index], function=FunctionDelta(arguments=delta.tool_use.input)
                )
                return self._chunk(Delta(tool_calls=[call]))
        if delta.reasoning_content is not None and delta.reasoning_content.text:
            return self._chunk(Delta(reasoning_content=delta.reasoning_content.text))
        return None

    def check_complete(self) -> None:
        if not self.finished:
            raise StreamInterrupted(f"provider '{self._provider}' ended the stream before messageStop")


def replayed(completion: ChatCompletion) -> list[ChatChunk]:
    """A whole answer as the chunks a stream of it would have sent (models that do not stream tools)."""
    choice = completion.choices[0]
    message = choice.message

    def chunk(delta: Delta | None, finish: str | None = None) -> ChatChunk:
        choices = [] if delta is None else [ChunkChoice(index=0, delta=delta, finish_reason=finish)]
        return ChatChunk(
            id=completion.id, created=completion.created, model=completion.model, choices=choices
        )

    chunks = [chunk(Delta(role="assistant", content=""))]
    if message.content:
        chunks.append(chunk(Delta(content=message.content)))
    calls = message.tool_calls if isinstance(message.tool_calls, list) else []
    for ordinal, call in enumerate(calls):
        function = FunctionDelta(name=call.function.name, arguments=call.function.arguments)
        chunks.append(
            chunk(
                Delta(
                    tool_calls=[ToolCallDelta(index=ordinal, id=call.id, type="function", function=function)]
                )
            )
        )
    chunks.append(chunk(Delta(), choice.finish_reason))
    last = chunk(None)
    last.usage = completion.usage
    chunks.append(last)
    return chunks


# --- error mapper --------------------------------------------------------------------------------


def error_name(headers: Mapping[str, str], error: _Error) -> str:
    """The error's name as botocore reads it: ``x-amzn-errortype`` before its first ``:``, else the
    body's ``code`` or ``__type`` after its last ``#``."""
    name = headers.get("x-amzn-errortype", "").split(":", 1)[0]
    return name or error.code or (error.type_ or "").rsplit("#", 1)[-1]


def map_error(status: int, body: bytes, headers: Mapping[str, str], provider: Provider) -> RouterError:
    try:
        error = _decode_error(body)
    except DECODE_ERRORS:
        error = _Error(message=body[:500].decode("utf-8", "replace") or None)
    name = error_name(headers, error)
    text = error.message or error.Message or f"provider '{provider.name}' answered HTTP {status}"
    return classify(status, name, scrub(text, provider), provider, retry_after_seconds(headers))


def stream_error(message: EventMessage, provider: str) -> RouterError:
    """An exception frame inside a stream (after HTTP 200), by its modeled status."""
    try:
        text = _decode_error(message.payload).message or message.name
    except DECODE_ERRORS:
        text = message.name
    status = {
        "throttlingexception": 429,
        "validationexception": 400,
        "serviceunavailableexception": 503,
        "modelstreamerrorexception": 502,
    }.get(message.name.lower(), 500)
    if status in (429, 503, 500, 502):
        return StreamInterrupted(f"provider '{provider}' reported {message.name} mid-stream: {text}")
    return UpstreamStatusError(status, text, code="validation_error", provider=provider)


def classify(
    status: int, name: str, message: str, provider: Provider, retry_after: float | None
) -> RouterError:
    """A Bedrock error (its HTTP status and name) → the most specific router error."""
    lowered = name.lower()
    who = provider.name
    if lowered in CREDENTIAL_ERRORS or status in (401, 403):
        return refused_credentials(provider, f"{name or status}: {message}")
    if lowered == "throttlingexception" or lowered == "servicequotaexceededexception":
        return UpstreamStatusError(
            429,
            message,
            error_type="rate_limit_error",
            code="rate_limit_exceeded",
            retry_after=retry_after,
            provider=who,
        )
    if lowered == "modelnotreadyexception":
        # 429 at Bedrock, but the model is not ready, not the client too fast: retried, or another serves.
        return UpstreamStatusError(
            503,
            message,
            error_type="server_error",
            code="model_not_ready",
            retry_after=retry_after,
            provider=who,
        )
    if lowered == "validationexception":
        code = "context_length_exceeded" if "too long" in message.lower() else "invalid_request"
        return UpstreamStatusError(400, message, code=code, provider=who)
    if lowered == "resourcenotfoundexception" or status == 404:
        return UpstreamStatusError(
            502,
            f"provider '{who}' answered HTTP {status} ({name or 'no code'}): {message} "
            "Check that each model's upstream is a Bedrock model or inference-profile id "
            "enabled in the provider's region.",
            error_type="upstream_error",
            code="upstream_misconfigured",
            provider=who,
        )
    if lowered == "modeltimeoutexception":
        return UpstreamStatusError(
            504, message, error_type="upstream_timeout", code="model_timeout", provider=who
        )
    if lowered == "modelerrorexception":
        return UpstreamStatusError(502, message, code="model_error", provider=who)
    return UpstreamStatusError(status, message, retry_after=retry_after, provider=who)


# --- I/O -----------------------------------------------------------------------------------------


class BedrockAdapter:
    """Chat Completions against Bedrock's Converse API."""

    def __init__(self, provider: Provider, client: UpstreamClient, signer: Signer | None = None) -> None:
        self.provider = provider
        self._client = client
        self._signer = signer or build_signer(provider)
        self._base = base_headers(provider)
        self._urls: dict[str, tuple[str, str]] = {}

    async def aclose(self) -> None:
        await self._signer.aclose()
        await self._client.aclose()

    def _url(self, model_id: str, stream: bool) -> str:
        urls = self._urls.get(model_id)
        if urls is None:
            # One path segment: ':' of a version and '/' of an ARN are escaped (%3A, %2F), as botocore does.
            base = f"{self.provider.base_url}/model/{quote(model_id, safe='')}"
            urls = self._urls[model_id] = (f"{base}/converse", f"{base}/converse-stream")
        return urls[1] if stream else urls[0]

    async def _headers(self, call: UpstreamCall, url: str, body: bytes, stream: bool) -> dict[str, str]:
        headers = dict(self._base)
        if stream:
            headers["accept"] = EVENT_STREAM
        return await self._signer.sign(url, headers, body, float(call.created) or time.time())

    async def complete(self, call: UpstreamCall) -> ChatCompletion:
        converse = build_body(call)
        return await self._complete(call, converse)

    async def _complete(self, call: UpstreamCall, converse: Converse) -> ChatCompletion:
        url = self._url(call.model.upstream, False)
        headers = await self._headers(call, url, converse.body, False)
        answer = await self._client.post(url, headers, converse.body)
        if answer.status >= 400:
            raise map_error(answer.status, answer.body, answer.headers, self.provider)
        return parse_response(answer.body, call, converse.json_tool)

    async def stream(self, call: UpstreamCall) -> AsyncGenerator[ChatChunk, None]:
        converse = build_body(call)
        if call.request.tools and not family_of(call.model.upstream).streams_tools:
            for chunk in replayed(await self._complete(call, converse)):
                yield chunk
            return
        url = self._url(call.model.upstream, True)
        headers = await self._headers(call, url, converse.body, True)
        async with self._client.stream(url, headers, converse.body) as response:
            if response.status >= 400:
                raise map_error(response.status, await response.read(), response.headers, self.provider)
            if not response.headers.get("content-type", "").startswith(EVENT_STREAM):
                raise UpstreamBadResponse(
                    f"provider '{self.provider.name}' did not answer with an event stream"
                )
            translator = StreamTranslator(call, converse.json_tool)
            early = partial(note_early_close, self.provider.name, call.model.id, call.request_id, "metadata")
            async for chunk in events_until_end(response.chunks(), translator, early):
                yield chunk


__all__ = ["BedrockAdapter", "StreamTranslator", "map_error", "parse_response"]
