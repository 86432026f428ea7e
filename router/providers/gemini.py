"""Adapter for Google Gemini's generateContent API: Chat Completions ⇄ Gemini, streaming included.

Translation policy for Chat parameters with no Gemini counterpart:
- refused with a 400 naming the parameter: ``n`` > 1, ``logprobs``/``top_logprobs``, ``logit_bias``,
  ``prediction``, audio output, image URLs that are not ``data:`` URLs (the router never fetches a URL
  a request names), file ids, and tool types other than ``function``;
- dropped: ``user``, ``metadata``, ``store``, ``service_tier``, ``parallel_tool_calls``, ``verbosity``,
  ``prompt_cache_key``, ``prompt_cache_retention``, Anthropic's ``cache_control`` markers (Gemini
  caches long prompts implicitly; ``cachedContentTokenCount`` comes back as ``cached_tokens``) and
  ``stream_options`` (Gemini always reports usage).
Tool parameter and response schemas are reduced to the OpenAPI subset Gemini accepts (``$ref`` inlined;
``$schema``, ``additionalProperties``, ``title``, ``default`` and other keywords dropped; type arrays
become ``nullable``).

Gemini 3 requires each function call's ``thoughtSignature`` back on the next turn. Chat Completions
has no field for it, so the adapter keeps signatures in a bounded map keyed by the tool-call id it
hands the client, and re-attaches them when that id comes back. An id it does not know (another
instance, a restart) gets Gemini's documented ``skip_thought_signature_validator`` value instead.

The request builder is in ``_gemini_request``. Where calls go and with which credential is a route's
business (``_seams.GeminiRoute``): the Gemini API's own (``GeminiApi``), or Vertex AI's (``vertex``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import msgspec

from router.catalog import Provider
from router.errors import DECODE_ERRORS, RouterError, StreamInterrupted, UpstreamBadResponse
from router.providers._embeddings import gemini_answer, gemini_bodies, in_parallel, parse_gemini
from router.providers._envelopes import google_error, map_google_error
from router.providers._errors import note_early_close, refused_credentials
from router.providers._gemini_request import Signatures, build_body
from router.providers._http import UpstreamClient
from router.providers._seams import GeminiRoute
from router.providers._sse import SSEParser
from router.providers.base import EmbeddingCall, UpstreamCall
from router.types import (
    AssistantMessage,
    ChatChunk,
    ChatCompletion,
    Choice,
    ChunkChoice,
    Delta,
    EmbeddingResponse,
    FunctionCall,
    FunctionDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# --- constants -----------------------------------------------------------------------------------

FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "LANGUAGE",
    }
)
GENERATE = "generateContent"
STREAM_GENERATE = "streamGenerateContent?alt=sse"
EMBED_BATCH = "batchEmbedContents"

# --- wire types ----------------------------------------------------------------------------------


class _FunctionCall(msgspec.Struct):
    name: str
    args: dict[str, Any] = {}
    id: str | None = None


class _Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool | None = None
    function_call: _FunctionCall | None = None
    thought_signature: str | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None
    index: int = 0


class _UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int = 0
    cached_content_token_count: int = 0
    tool_use_prompt_token_count: int = 0


class _Feedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None


class _Response(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] = []
    usage_metadata: _UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None
    prompt_feedback: _Feedback | None = None


_encode = msgspec.json.Encoder().encode
_decode_response = msgspec.json.Decoder(_Response).decode


# --- response parser -----------------------------------------------------------------------------


def usage_of(meta: _UsageMetadata | None) -> Usage:
    """Gemini's candidatesTokenCount leaves thinking out; OpenAI's completion_tokens include it."""
    meta = meta or _UsageMetadata()
    prompt = meta.prompt_token_count + meta.tool_use_prompt_token_count
    completion = meta.candidates_token_count + meta.thoughts_token_count
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details={"cached_tokens": meta.cached_content_token_count},
        completion_tokens_details={"reasoning_tokens": meta.thoughts_token_count},
    )


def finish_reason(reason: str | None, called_tools: bool) -> str:
    if reason in FILTERED:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if called_tools else "stop"


def _calls(parts: list[_Part], signatures: Signatures) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for part in parts:
        if part.function_call is None:
            continue
        call_id = part.function_call.id or "call_" + os.urandom(12).hex()
        if part.thought_signature:
            signatures.remember(call_id, part.thought_signature)
        arguments = _encode(part.function_call.args).decode()
        calls.append(
            ToolCall(id=call_id, function=FunctionCall(name=part.function_call.name, arguments=arguments))
        )
    return calls


def parse_response(body: bytes, provider: str, created: int, signatures: Signatures) -> ChatCompletion:
    try:
        response = _decode_response(body)
    except DECODE_ERRORS as exc:
        raise UpstreamBadResponse(
            f"provider '{provider}' sent an answer that is not a Gemini response: {exc}"
        ) from None
    model = response.model_version or ""
    ident = "chatcmpl-" + (response.response_id or os.urandom(12).hex())
    if not response.candidates:
        # The prompt itself was blocked: a filtered, empty answer rather than an error.
        message = AssistantMessage(content=None)
        choice = Choice(index=0, message=message, finish_reason="content_filter")
        return ChatCompletion(ident, created, model, [choice], usage=usage_of(response.usage_metadata))
    candidate = response.candidates[0]
    parts = candidate.content.parts if candidate.content else []
    texts = [p.text for p in parts if p.text and not p.thought]
    thoughts = [p.text for p in parts if p.text and p.thought]
    calls = _calls(parts, signatures)
    message = AssistantMessage(content="".join(texts) if texts else None)
    if calls:
        message.tool_calls = calls
    if thoughts:
        message.reasoning_content = "".join(thoughts)
    choice = Choice(
        index=0, message=message, finish_reason=finish_reason(candidate.finish_reason, bool(calls))
    )
    return ChatCompletion(ident, created, model, [choice], usage=usage_of(response.usage_metadata))


# --- stream translator ---------------------------------------------------------------------------


class StreamTranslator:
    """Gemini SSE chunks (CRLF-framed) → Chat Completions chunks. Pure apart from the signature map."""

    def __init__(self, provider: str, created: int, model: str, signatures: Signatures) -> None:
        self._parser = SSEParser()
        self._provider = provider
        self._created = created
        self._model = model
        self._signatures = signatures
        self._id = "chatcmpl-" + os.urandom(12).hex()
        self._started = False
        self._tools = 0
        self._usage: _UsageMetadata | None = None
        self.finished = False
        self.error: RouterError | None = None

    def feed(self, raw: bytes) -> list[ChatChunk]:
        chunks: list[ChatChunk] = []
        for event in self._parser.feed(raw):
            if event.data.lstrip().startswith(b'{"error"'):
                error = google_error(event.data)
                text = error.message if error else "unknown error"
                self.error = StreamInterrupted(
                    f"provider '{self._provider}' reported an error mid-stream: {text}"
                )
                break
            try:
                response = _decode_response(event.data)
            except DECODE_ERRORS:
                self.error = UpstreamBadResponse(
                    f"provider '{self._provider}' sent a stream event that is not JSON"
                )
                break
            chunks.extend(self._translate(response))
        return chunks

    def _chunk(self, delta: Delta, finish: str | None = None) -> ChatChunk:
        choice = ChunkChoice(index=0, delta=delta, finish_reason=finish)
        return ChatChunk(id=self._id, created=self._created, model=self._model, choices=[choice])

    def _translate(self, response: _Response) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        if response.model_version:
            self._model = response.model_version
        if response.usage_metadata is not None:
            self._usage = response.usage_metadata
        if not self._started:
            self._started = True
            out.append(self._chunk(Delta(role="assistant", content="")))
        if not response.candidates and response.prompt_feedback and response.prompt_feedback.block_reason:
            self.finished = True
            out.append(self._chunk(Delta(), "content_filter"))
            return out
        for candidate in response.candidates[:1]:
            parts = candidate.content.parts if candidate.content else []
            for part in parts:
                if part.text and part.thought:
                    out.append(self._chunk(Delta(reasoning_content=part.text)))
                elif part.text:
                    out.append(self._chunk(Delta(content=part.text)))
            for call in _calls(parts, self._signatures):
                delta = ToolCallDelta(
                    index=self._tools,
                    id=call.id,
                    type="function",
                    function=FunctionDelta(name=call.function.name, arguments=call.function.arguments),
                )
                self._tools += 1
                out.append(self._chunk(Delta(tool_calls=[delta])))
            if candidate.finish_reason:
                self.finished = True
                out.append(self._chunk(Delta(), finish_reason(candidate.finish_reason, self._tools > 0)))
        return out

    def finish(self) -> ChatChunk:
        """At the end of the body: the usage chunk, or ``StreamInterrupted`` if no finish arrived."""
        if not self.finished:
            raise StreamInterrupted(f"provider '{self._provider}' ended the stream before a finish reason")
        chunk = ChatChunk(id=self._id, created=self._created, model=self._model, choices=[])
        chunk.usage = usage_of(self._usage)
        return chunk


# --- I/O -----------------------------------------------------------------------------------------


class GeminiApi:
    """The route of Google's Gemini API: ``{base_url}/models/{model}:{method}`` with the key as
    ``x-goog-api-key``; its errors in Google's envelope, a refused key the router's."""

    __slots__ = ("_headers", "_provider")

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        headers = {"content-type": "application/json"}
        headers.update(provider.headers)
        if provider.api_key:
            headers["x-goog-api-key"] = provider.api_key
        self._headers = headers

    def url(self, model: str, method: str) -> str:
        return f"{self._provider.base_url}/models/{model}:{method}"

    async def headers(self) -> dict[str, str]:
        return self._headers.copy()

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> RouterError:
        provider = self._provider
        return map_google_error(status, body, headers, provider, lambda m: refused_credentials(provider, m))


class GeminiAdapter:
    """Chat Completions against Gemini's generateContent API, at the URLs ``route`` gives (default:
    the Gemini API's)."""

    def __init__(self, provider: Provider, client: UpstreamClient, route: GeminiRoute | None = None) -> None:
        self.provider = provider
        self._client = client
        self._route: GeminiRoute = route or GeminiApi(provider)
        self.signatures = Signatures()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def complete(self, call: UpstreamCall) -> ChatCompletion:
        route = self._route
        url = route.url(call.model.upstream, GENERATE)
        answer = await self._client.post(url, await route.headers(), build_body(call, self.signatures))
        if answer.status >= 400:
            raise route.map_error(answer.status, answer.body, answer.headers)
        completion = parse_response(answer.body, self.provider.name, call.created, self.signatures)
        completion.model = completion.model or call.model.upstream
        return completion

    async def stream(self, call: UpstreamCall) -> AsyncGenerator[ChatChunk, None]:
        route = self._route
        url = route.url(call.model.upstream, STREAM_GENERATE)
        body = build_body(call, self.signatures)
        async with self._client.stream(url, await route.headers(), body) as response:
            if response.status >= 400:
                raise route.map_error(response.status, await response.read(), response.headers)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                raise UpstreamBadResponse(
                    f"provider '{self.provider.name}' did not answer with an event stream"
                )
            translator = StreamTranslator(
                self.provider.name, call.created, call.model.upstream, self.signatures
            )
            try:
                async for raw in response.chunks():
                    for chunk in translator.feed(raw):
                        yield chunk
                    if translator.error is not None:
                        break
            except StreamInterrupted:
                if not translator.finished:
                    raise  # the connection broke before the answer was whole
                # Gemini's stream has no terminator: the finish reason was its last word.
                note_early_close(self.provider.name, call.model.id, call.request_id, "a clean close")
            if translator.error is not None:
                raise translator.error
            yield translator.finish()

    async def embed(self, call: EmbeddingCall) -> EmbeddingResponse:
        """Embeddings by batchEmbedContents, in batches of Gemini's size limit sent side by side."""
        route = self._route
        url = route.url(call.model.upstream, EMBED_BATCH)

        async def batch(body: bytes, expected: int) -> list[list[float]]:
            answer = await self._client.post(url, await route.headers(), body)
            if answer.status >= 400:
                raise route.map_error(answer.status, answer.body, answer.headers)
            return parse_gemini(answer.body, self.provider.name, expected)

        batches = await in_parallel([batch(body, count) for body, count in gemini_bodies(call)])
        return gemini_answer(call, [vector for vectors in batches for vector in vectors])
