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
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import AsyncGenerator
from typing import Any

import msgspec

from router.catalog import Provider
from router.errors import (
    DECODE_ERRORS,
    InvalidRequest,
    RouterError,
    StreamInterrupted,
    UpstreamBadResponse,
    UpstreamStatusError,
)
from router.providers._embeddings import gemini_answer, gemini_bodies, in_parallel, parse_gemini
from router.providers._errors import note_early_close, refused_credentials, scrub
from router.providers._http import UpstreamClient
from router.providers._schema import sanitize_schema
from router.providers._sse import SSEParser
from router.providers._translate import append_turn, chosen_function, data_url, text_of, tool_arguments
from router.providers.base import EmbeddingCall, UpstreamCall
from router.types import (
    AssistantMessage,
    ChatChunk,
    ChatCompletion,
    ChatRequest,
    Choice,
    ChunkChoice,
    ContentPart,
    Delta,
    EmbeddingResponse,
    FunctionCall,
    FunctionDelta,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# --- constants -----------------------------------------------------------------------------------

SKIP_SIGNATURE = "skip_thought_signature_validator"
SIGNATURES_KEPT = 50_000
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
BUDGETS = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 32768,
}
REFUSED = ("logit_bias", "prediction", "audio", "top_logprobs")
STATUS_TYPE = {400: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_error"}

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


class _ErrorBody(msgspec.Struct):
    code: int = 500
    message: str = ""
    status: str = ""
    details: list[dict[str, Any]] = []


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody | None = None


_encode = msgspec.json.Encoder().encode
_decode_response = msgspec.json.Decoder(_Response).decode
_decode_error = msgspec.json.Decoder(_ErrorEnvelope).decode
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
    _refuse_unsupported(request)
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


def _refuse_unsupported(request: ChatRequest) -> None:
    if (request.n or 1) > 1:
        raise InvalidRequest("The router serves one choice from Gemini models; 'n' must be 1.", param="n")
    if request.raw.get("logprobs"):
        raise InvalidRequest("Log probabilities are not translated for Gemini models.", param="logprobs")
    for name in REFUSED:
        if request.raw.get(name) is not None:
            raise InvalidRequest(f"'{name}' has no counterpart for Gemini models.", param=name)


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
                try:
                    error = _decode_error(event.data).error
                except DECODE_ERRORS:
                    error = None
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


# --- error mapper --------------------------------------------------------------------------------


def map_error(status: int, body: bytes, provider: Provider) -> RouterError:
    try:
        payload = _decode_any(body)
        if isinstance(payload, list) and payload:
            payload = payload[0]
        error = msgspec.convert(payload, _ErrorEnvelope).error
    except DECODE_ERRORS:
        error = None
    message = scrub(
        (error.message if error else "") or f"provider '{provider.name}' answered HTTP {status}", provider
    )
    details = error.details if error else []
    if status in (401, 403) or any(d.get("reason") == "API_KEY_INVALID" for d in details):
        return refused_credentials(provider, message)
    retry_after = None
    for detail in details:
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            with contextlib.suppress(ValueError):
                retry_after = float(delay[:-1])
    kind = STATUS_TYPE.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = error.status if error and error.status else None
    return UpstreamStatusError(
        status, message, error_type=kind, code=code, retry_after=retry_after, provider=provider.name
    )


# --- I/O -----------------------------------------------------------------------------------------


class GeminiAdapter:
    """Chat Completions against Gemini's generateContent API."""

    def __init__(self, provider: Provider, client: UpstreamClient) -> None:
        self.provider = provider
        self._client = client
        self.signatures = Signatures()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        headers.update(self.provider.headers)
        if self.provider.api_key:
            headers["x-goog-api-key"] = self.provider.api_key
        return headers

    async def complete(self, call: UpstreamCall) -> ChatCompletion:
        url = f"{self.provider.base_url}/models/{call.model.upstream}:generateContent"
        answer = await self._client.post(url, self._headers(), build_body(call, self.signatures))
        if answer.status >= 400:
            raise map_error(answer.status, answer.body, self.provider)
        completion = parse_response(answer.body, self.provider.name, call.created, self.signatures)
        completion.model = completion.model or call.model.upstream
        return completion

    async def stream(self, call: UpstreamCall) -> AsyncGenerator[ChatChunk, None]:
        url = f"{self.provider.base_url}/models/{call.model.upstream}:streamGenerateContent?alt=sse"
        body = build_body(call, self.signatures)
        async with self._client.stream(url, self._headers(), body) as response:
            if response.status >= 400:
                raise map_error(response.status, await response.read(), self.provider)
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
        url = f"{self.provider.base_url}/models/{call.model.upstream}:batchEmbedContents"

        async def batch(body: bytes, expected: int) -> list[list[float]]:
            answer = await self._client.post(url, self._headers(), body)
            if answer.status >= 400:
                raise map_error(answer.status, answer.body, self.provider)
            return parse_gemini(answer.body, self.provider.name, expected)

        batches = await in_parallel([batch(body, count) for body, count in gemini_bodies(call)])
        return gemini_answer(call, [vector for vectors in batches for vector in vectors])
