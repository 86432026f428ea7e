"""Adapter for OpenAI and OpenAI-compatible servers (vLLM, Ollama, llama.cpp, TGI): Chat Completions.

The request body is the client's own, forwarded with unknown fields untouched (``prompt_cache_key``
and ``prompt_cache_retention`` among them); only the model name, the service tier, the output-limit
field and the stream options are rewritten, and Anthropic's ``cache_control`` markers are left out.

Where each call goes and as whom is the ``Dialect``'s business (``router/providers/_dialect.py``):
``OpenAIDialect`` here for OpenAI and the servers that copy it, another for a provider that speaks
the same wire format at other URLs with other credentials (Azure OpenAI, ``azure.py``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from functools import partial
from typing import Any

import msgspec

from router.catalog import Provider
from router.errors import (
    DECODE_ERRORS,
    RouterError,
    StreamInterrupted,
    UpstreamBadResponse,
    UpstreamStatusError,
)
from router.providers._caching import without_cache_control
from router.providers._dialect import PATHS, Api, Dialect, StreamTidy, base_headers
from router.providers._embeddings import input_count, openai_body, parse_openai
from router.providers._errors import note_early_close, refused_credentials, scrub
from router.providers._http import StreamingResponse, UpstreamClient, retry_after_seconds
from router.providers._sse import SSEParser, events_until_end
from router.providers.base import Call, EmbeddingCall, UpstreamCall
from router.responses.answer import WireResponse, to_completion
from router.responses.native import from_chat_body
from router.responses.stream import TERMINAL_EVENTS, ResponsesToChat
from router.types import ChatChunk, ChatCompletion, EmbeddingResponse

# --- constants -----------------------------------------------------------------------------------

# Fields that only the router reads; they never reach an upstream.
ROUTER_ONLY_FIELDS = ("models",)

# --- wire types ----------------------------------------------------------------------------------


class _ErrorBody(msgspec.Struct):
    message: str = ""
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody | str | None = None


_encode = msgspec.json.Encoder().encode
_decode_completion = msgspec.json.Decoder(ChatCompletion).decode
_decode_chunk = msgspec.json.Decoder(ChatChunk).decode
_decode_error = msgspec.json.Decoder(_ErrorEnvelope).decode
_decode_response = msgspec.json.Decoder(WireResponse).decode
_decode_event = msgspec.json.Decoder(dict[str, Any]).decode

# --- request builder -----------------------------------------------------------------------------


def build_body(call: UpstreamCall, *, stream: bool) -> bytes:
    body: dict[str, Any] = dict(without_cache_control(call.request.raw))
    for field in ROUTER_ONLY_FIELDS:
        body.pop(field, None)
    body["model"] = call.model.upstream
    if call.service_tier is not None:
        body["service_tier"] = call.service_tier
    if call.provider.max_tokens_param == "max_completion_tokens" and "max_tokens" in body:
        limit = body.pop("max_tokens")
        body.setdefault("max_completion_tokens", limit)
    if stream:
        # Usage is always asked for: the router needs it for cost, whether or not the client does.
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body["stream_options"] = options
    return _encode(body)


# --- response parser -----------------------------------------------------------------------------


def parse_completion(body: bytes, provider: str) -> ChatCompletion:
    try:
        completion = _decode_completion(body)
    except DECODE_ERRORS as exc:
        raise UpstreamBadResponse(
            f"provider '{provider}' sent an answer that is not a chat completion: {exc}"
        ) from None
    if not completion.choices:
        raise UpstreamBadResponse(f"provider '{provider}' sent a chat completion with no choices")
    return completion


# --- stream translator ---------------------------------------------------------------------------


class StreamReader:
    """Turns upstream SSE bytes into chunks and decides whether the stream ended complete.

    ``choices`` is how many choices the answer has (the request's ``n``): the answer is finished once
    each of them has sent its ``finish_reason``, whether or not ``[DONE]`` follows.
    """

    __slots__ = ("_finished", "_parser", "choices", "done", "error", "provider")

    def __init__(self, provider: str, choices: int = 1) -> None:
        self._parser = SSEParser()
        self.provider = provider
        self.choices = choices
        self.done = False  # saw [DONE]
        self._finished: set[int] = set()  # choices that sent their finish_reason
        # An error event ends the stream, but only after the chunks read before it are delivered:
        # one network read often carries both.
        self.error: RouterError | None = None

    @property
    def finished(self) -> bool:
        return len(self._finished) >= self.choices

    def feed(self, raw: bytes) -> list[ChatChunk]:
        chunks: list[ChatChunk] = []
        for event in self._parser.feed(raw):
            data = event.data
            if data == b"[DONE]":
                self.done = True
                break
            try:
                chunk = _decode_chunk(data)
            except DECODE_ERRORS:
                self.error = self._in_band_error(data)
                break
            for choice in chunk.choices:
                if choice.finish_reason is not None:
                    self._finished.add(choice.index)
            chunks.append(chunk)
        return chunks

    def _in_band_error(self, data: bytes) -> RouterError:
        try:
            envelope = _decode_error(data)
        except DECODE_ERRORS:
            return UpstreamBadResponse(f"provider '{self.provider}' sent a stream event that is not a chunk")
        error = envelope.error
        message = error.message if isinstance(error, _ErrorBody) else str(error or "unknown error")
        return StreamInterrupted(f"provider '{self.provider}' reported an error mid-stream: {message}")

    def check_complete(self) -> None:
        if not (self.done or self.finished):
            raise StreamInterrupted(
                f"provider '{self.provider}' ended the stream before the answer was complete"
            )


# --- error mapper --------------------------------------------------------------------------------


def map_error(status: int, body: bytes, headers: Mapping[str, str], provider: Provider) -> RouterError:
    """An upstream error answer → router error, keeping OpenAI's status, type, code and message."""
    retry_after = retry_after_seconds(headers)
    message, error_type, param, code = f"provider '{provider.name}' answered HTTP {status}", None, None, None
    try:
        error = _decode_error(body).error
    except DECODE_ERRORS:
        error = None
    if isinstance(error, _ErrorBody):
        message = error.message or message
        error_type, param = error.type, error.param
        code = str(error.code) if error.code is not None else None
    elif isinstance(error, str):
        message = error
    message = scrub(message, provider)
    if status in (401, 403):
        return refused_credentials(provider, message)
    return UpstreamStatusError(
        status,
        message,
        error_type=error_type,
        param=param,
        code=code,
        retry_after=retry_after,
        provider=provider.name,
    )


# --- dialect -------------------------------------------------------------------------------------


class OpenAIDialect:
    """OpenAI's way: ``{base_url}/chat/completions`` and the like, the key as a bearer token."""

    __slots__ = ("_base", "_provider", "_urls")
    tidy_stream: StreamTidy | None = None

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self._urls = {api: provider.base_url + path for api, path in PATHS.items()}
        base = base_headers(provider)
        if provider.api_key:
            base["authorization"] = f"Bearer {provider.api_key}"
        self._base = base

    def url(self, api: Api, deployment: str) -> str:
        return self._urls[api]

    def headers(self, request_id: str, url: str, body: bytes) -> dict[str, str]:
        headers = self._base.copy()
        headers["x-client-request-id"] = request_id
        return headers

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> RouterError:
        return map_error(status, body, headers, self._provider)


# --- I/O -----------------------------------------------------------------------------------------


class OpenAIAdapter:
    """Chat Completions, Responses and Embeddings against one provider of the OpenAI wire format."""

    def __init__(self, provider: Provider, client: UpstreamClient, dialect: Dialect | None = None) -> None:
        self.provider = provider
        self._client = client
        self._dialect: Dialect = dialect or OpenAIDialect(provider)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, api: Api, deployment: str, body: bytes, request_id: str) -> bytes:
        """POST ``body`` to ``api``; the answer's body, or its error as the dialect maps it."""
        dialect = self._dialect
        url = dialect.url(api, deployment)
        answer = await self._client.post(url, dialect.headers(request_id, url, body), body)
        if answer.status >= 400:
            raise dialect.map_error(answer.status, answer.body, answer.headers)
        return answer.body

    def _stream_headers(self, url: str, body: bytes, request_id: str) -> dict[str, str]:
        headers = self._dialect.headers(request_id, url, body)
        headers["accept"] = "text/event-stream"
        headers["accept-encoding"] = "identity"
        return headers

    async def _check_stream(self, response: StreamingResponse) -> None:
        """An error answer raises as the dialect maps it; an answer that is no event stream, too."""
        if response.status >= 400:
            raise self._dialect.map_error(response.status, await response.read(), response.headers)
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("text/event-stream"):
            got = content_type or "no content type"
            raise UpstreamBadResponse(f"provider '{self.provider.name}' answered a stream request with {got}")

    async def complete(self, call: UpstreamCall) -> ChatCompletion:
        if "chat" not in call.model.endpoints:
            return await self._complete_via_responses(call)
        body = await self._post("chat", call.model.upstream, build_body(call, stream=False), call.request_id)
        return parse_completion(body, self.provider.name)

    async def stream(self, call: UpstreamCall) -> AsyncGenerator[ChatChunk, None]:
        if "chat" not in call.model.endpoints:
            async for chunk in self._stream_via_responses(call):
                yield chunk
            return
        url = self._dialect.url("chat", call.model.upstream)
        body = build_body(call, stream=True)
        headers = self._stream_headers(url, body, call.request_id)
        async with self._client.stream(url, headers, body) as response:
            await self._check_stream(response)
            reader = StreamReader(self.provider.name, call.request.n or 1)
            early = partial(note_early_close, self.provider.name, call.model.id, call.request_id, "[DONE]")
            chunks = events_until_end(response.chunks(), reader, early)
            tidy = self._dialect.tidy_stream
            if tidy is not None:
                chunks = tidy(chunks, call)
            async for chunk in chunks:
                yield chunk

    # --- the Responses API: native pass-through, and chat clients of Responses-only models ---------

    async def respond(self, call: Call[dict[str, Any]]) -> dict[str, Any]:
        """POST a Responses body as it is; the upstream's Response object, decoded."""
        body = _encode(without_cache_control(call.request))
        answer = await self._post("responses", call.model.upstream, body, call.request_id)
        try:
            response = _decode_event(answer)
        except DECODE_ERRORS:
            response = None
        if not isinstance(response, dict) or response.get("object") != "response":
            raise UpstreamBadResponse(
                f"provider '{self.provider.name}' sent an answer that is not a Response"
            )
        return response

    async def respond_stream(self, call: Call[dict[str, Any]]) -> AsyncGenerator[dict[str, Any], None]:
        """Stream a Responses body; yields the upstream's events until the terminal one.

        A ``response.failed`` or ``error`` event raises ``StreamInterrupted``: before the commit point
        another model may still answer, after it the client's stream ends with its own failure event.
        """
        body = without_cache_control(call.request)
        async for data in self._events(body, call.model.upstream, call.request_id):
            try:
                event = _decode_event(data)
            except DECODE_ERRORS:
                raise UpstreamBadResponse(
                    f"provider '{self.provider.name}' sent a Responses stream event that is not valid"
                ) from None
            kind = event.get("type")
            if kind in ("response.failed", "error"):
                error = (event.get("response") or {}).get("error") or event
                message = scrub(str(error.get("message") or "unknown error"), self.provider)
                raise StreamInterrupted(
                    f"provider '{self.provider.name}' reported an error mid-stream: {message}"
                )
            yield event
            if kind in TERMINAL_EVENTS:
                return
        raise StreamInterrupted(
            f"provider '{self.provider.name}' ended the stream before the answer was complete"
        )

    async def _events(
        self, body: dict[str, Any], deployment: str, request_id: str
    ) -> AsyncGenerator[bytes, None]:
        """The data of each SSE event of a streamed Responses call (an HTTP error raises first)."""
        url = self._dialect.url("responses", deployment)
        data = _encode(body)
        async with self._client.stream(url, self._stream_headers(url, data, request_id), data) as response:
            await self._check_stream(response)
            parser = SSEParser()
            async for raw in response.chunks():
                for event in parser.feed(raw):
                    if event.data and event.data != b"[DONE]":
                        yield event.data

    async def _complete_via_responses(self, call: UpstreamCall) -> ChatCompletion:
        body = from_chat_body(call.request.raw, call.model.upstream, stream=False)
        answer = await self._post("responses", call.model.upstream, _encode(body), call.request_id)
        try:
            response = _decode_response(answer)
        except DECODE_ERRORS as exc:
            raise UpstreamBadResponse(
                f"provider '{self.provider.name}' sent an answer that is not a Response: {exc}"
            ) from None
        if response.status == "failed":
            message = str((response.error or {}).get("message") or "the response failed")
            raise UpstreamBadResponse(f"provider '{self.provider.name}': {scrub(message, self.provider)}")
        return to_completion(response)

    async def _stream_via_responses(self, call: UpstreamCall) -> AsyncGenerator[ChatChunk, None]:
        body = from_chat_body(call.request.raw, call.model.upstream, stream=True)
        reader = ResponsesToChat(self.provider.name, call.created)
        async for data in self._events(body, call.model.upstream, call.request_id):
            for chunk in reader.feed(data):
                yield chunk
            if reader.done:
                return
        raise StreamInterrupted(
            f"provider '{self.provider.name}' ended the stream before the answer was complete"
        )

    # --- embeddings ------------------------------------------------------------------------------

    async def embed(self, call: EmbeddingCall) -> EmbeddingResponse:
        """POST the client's embeddings body as it is (its encoding_format included), model renamed."""
        body = openai_body(call, ROUTER_ONLY_FIELDS)
        answer = await self._post("embeddings", call.model.upstream, body, call.request_id)
        return parse_openai(answer, self.provider.name, input_count(call))

    # --- legacy Completions: bytes in and out; router/providers/_completions.py builds and reads them
    # (OpenAI-kind providers only: the catalog gives no other kind the ``completions`` endpoint).

    async def post_legacy(self, body: bytes, request_id: str) -> bytes:
        """POST a legacy Completions body to ``/completions``; the answer's body, or its mapped error."""
        return await self._post("completions", "", body, request_id)

    async def stream_legacy(self, body: bytes, request_id: str) -> AsyncGenerator[bytes, None]:
        """Stream a legacy Completions body; yields the raw SSE bytes (an HTTP error raises first)."""
        url = self._dialect.url("completions", "")
        async with self._client.stream(url, self._stream_headers(url, body, request_id), body) as response:
            await self._check_stream(response)
            async for raw in response.chunks():
                yield raw
