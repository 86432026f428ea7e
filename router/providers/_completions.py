"""The legacy Completions API: its native wire format, and its translation to and from canonical chat.

Native: a model whose catalog ``endpoints`` include ``completions`` (OpenAI kind) receives the
client's own body at ``{base_url}/completions``; ``OpenAIAdapter`` moves the bytes, this module builds
and reads them. Translated: any chat model answers one user message per prompt, and its answer is
rewritten as a ``text_completion`` (choice ``j`` of prompt ``i`` gets index ``i * n + j``, as OpenAI
numbers them).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from functools import partial
from typing import Any, Protocol, runtime_checkable

import msgspec

from router.catalog import Model
from router.errors import DECODE_ERRORS, RouterError, StreamInterrupted, UpstreamBadResponse
from router.providers._errors import note_early_close
from router.providers._sse import SSEParser, events_until_end
from router.providers.base import Call
from router.providers.openai import ROUTER_ONLY_FIELDS
from router.types import (
    ChatChunk,
    ChatCompletion,
    ChatRequest,
    CompletionChoice,
    CompletionRequest,
    Message,
    StreamOptions,
    TextCompletion,
    Usage,
)

# --- constants -----------------------------------------------------------------------------------

COMPLETIONS_ENDPOINT = "completions"
DEFAULT_MAX_TOKENS = 16  # the legacy API's own default
# Sampling fields a chat request takes as they are.
PASSED_TO_CHAT = (
    "temperature",
    "top_p",
    "n",
    "stop",
    "seed",
    "user",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
)
# Chat finish reasons the legacy schema has no word for: the model stopped of its own accord.
FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content_filter"}

LegacyCall = Call[CompletionRequest]


@runtime_checkable
class LegacyCompleter(Protocol):
    """An adapter that can reach a provider's native legacy Completions API (bytes in, bytes out)."""

    async def post_legacy(self, body: bytes, request_id: str) -> bytes: ...

    def stream_legacy(self, body: bytes, request_id: str) -> AsyncGenerator[bytes, None]: ...


def is_native(model: Model) -> bool:
    return COMPLETIONS_ENDPOINT in model.endpoints


# --- wire types ----------------------------------------------------------------------------------


class _ErrorView(msgspec.Struct):
    message: str = ""


class _ErrorEvent(msgspec.Struct):
    error: _ErrorView | str | None = None


_encode = msgspec.json.Encoder().encode
_decode_completion = msgspec.json.Decoder(TextCompletion).decode
_decode_error = msgspec.json.Decoder(_ErrorEvent).decode

# --- native request builder ----------------------------------------------------------------------


def build_legacy_body(call: LegacyCall, *, stream: bool) -> bytes:
    """The client's body for the upstream: its model, its tier, and usage always asked for in streams."""
    body: dict[str, Any] = dict(call.request.raw)
    for field in ROUTER_ONLY_FIELDS:
        body.pop(field, None)
    body["model"] = call.model.upstream
    if call.service_tier is not None:
        body["service_tier"] = call.service_tier
    if stream:
        # The router needs usage for cost, whether or not the client asked for it.
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body["stream_options"] = options
    return _encode(body)


# --- native response parser ----------------------------------------------------------------------


def parse_legacy(body: bytes, provider: str) -> TextCompletion:
    try:
        completion = _decode_completion(body)
    except DECODE_ERRORS as exc:
        raise UpstreamBadResponse(
            f"provider '{provider}' sent an answer that is not a text completion: {exc}"
        ) from None
    if not completion.choices:
        raise UpstreamBadResponse(f"provider '{provider}' sent a text completion with no choices")
    return completion


# --- native stream reader ------------------------------------------------------------------------


class LegacyStreamReader:
    """Upstream SSE bytes → ``text_completion`` events, and whether the stream ended complete: once
    each of its ``choices`` (``n`` for every prompt) has sent its ``finish_reason``."""

    __slots__ = ("_finished", "_parser", "choices", "done", "error", "provider")

    def __init__(self, provider: str, choices: int = 1) -> None:
        self._parser = SSEParser()
        self.provider = provider
        self.choices = choices
        self.done = False  # saw [DONE]
        self._finished: set[int] = set()
        # Raised after the events read before it are delivered: one read often carries both.
        self.error: RouterError | None = None

    @property
    def finished(self) -> bool:
        return len(self._finished) >= self.choices

    def feed(self, raw: bytes) -> list[TextCompletion]:
        events: list[TextCompletion] = []
        for event in self._parser.feed(raw):
            if event.data == b"[DONE]":
                self.done = True
                break
            try:
                completion = _decode_completion(event.data)
            except DECODE_ERRORS:
                self.error = self._in_band_error(event.data)
                break
            for choice in completion.choices:
                if choice.finish_reason is not None:
                    self._finished.add(choice.index)
            events.append(completion)
        return events

    def _in_band_error(self, data: bytes) -> RouterError:
        try:
            error = _decode_error(data).error
        except DECODE_ERRORS:
            return UpstreamBadResponse(
                f"provider '{self.provider}' sent a stream event that is not a completion"
            )
        message = error.message if isinstance(error, _ErrorView) else str(error or "unknown error")
        return StreamInterrupted(f"provider '{self.provider}' reported an error mid-stream: {message}")

    def check_complete(self) -> None:
        if not (self.done or self.finished):
            raise StreamInterrupted(
                f"provider '{self.provider}' ended the stream before the answer was complete"
            )


# --- native I/O (through the adapter's transport) ------------------------------------------------


async def complete_native(adapter: LegacyCompleter, call: LegacyCall) -> TextCompletion:
    body = await adapter.post_legacy(build_legacy_body(call, stream=False), call.request_id)
    return parse_legacy(body, call.provider.name)


async def stream_native(adapter: LegacyCompleter, call: LegacyCall) -> AsyncGenerator[TextCompletion, None]:
    prompts = call.request.prompt if isinstance(call.request.prompt, list) else [call.request.prompt]
    # A list of token ids is one prompt; a list of strings or of token lists is one per item.
    count = len(prompts) if prompts and not isinstance(prompts[0], int) else 1
    reader = LegacyStreamReader(call.provider.name, count * (call.request.n or 1))
    raw_stream = adapter.stream_legacy(build_legacy_body(call, stream=True), call.request_id)
    early = partial(note_early_close, call.provider.name, call.model.id, call.request_id, "[DONE]")
    try:
        async for event in events_until_end(raw_stream, reader, early):
            yield event
    finally:
        await raw_stream.aclose()


# --- translation: prompt → chat request ----------------------------------------------------------


def prompt_texts(request: CompletionRequest) -> list[str] | None:
    """The prompts as texts, or ``None`` for token arrays and a null prompt (the router has no
    tokenizer to turn them back into text)."""
    prompt = request.prompt
    if isinstance(prompt, str):
        return [prompt]
    if prompt and all(isinstance(p, str) for p in prompt):
        return [p for p in prompt if isinstance(p, str)]
    return None


def chat_request_for(request: CompletionRequest, prompt: str, *, stream: bool) -> ChatRequest:
    """One prompt as a chat request: a single user message, with the sampling fields carried over.

    ``raw`` is built too, because OpenAI-kind adapters forward it as the body.
    """
    limit = request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS
    raw: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": limit,
    }
    for name in PASSED_TO_CHAT:
        value = getattr(request, name)
        if value is not None:
            raw[name] = value
    if stream:
        raw["stream"] = True
        raw["stream_options"] = {"include_usage": True}
    return ChatRequest(
        model=request.model,
        messages=[Message(role="user", content=prompt)],
        stream=True if stream else None,
        stream_options=StreamOptions(include_usage=True) if stream else None,
        max_tokens=limit,
        temperature=request.temperature,
        top_p=request.top_p,
        n=request.n,
        stop=request.stop,
        seed=request.seed,
        user=request.user,
        models=request.models,
        raw=raw,
    )


# --- translation: chat answer → text completion --------------------------------------------------


def completion_id(chat_id: str) -> str:
    return "cmpl-" + chat_id.removeprefix("chatcmpl-")


def finish_reason(reason: str | None) -> str:
    """A chat finish reason in the legacy vocabulary (``tool_calls`` and the like become ``stop``)."""
    return FINISH_REASONS.get(reason or "stop", "stop")


def text_completion(
    answers: list[ChatCompletion], prompts: list[str], request: CompletionRequest
) -> TextCompletion:
    """One chat answer per prompt, in prompt order, as one ``text_completion``."""
    n = request.n or 1
    choices: list[CompletionChoice] = []
    for i, (answer, prompt) in enumerate(zip(answers, prompts, strict=True)):
        for choice in answer.choices:
            message = choice.message
            text = message.content or message.refusal or ""
            choices.append(
                CompletionChoice(
                    text=prompt + text if request.echo else text,
                    index=i * n + choice.index,
                    finish_reason=finish_reason(choice.finish_reason),
                )
            )
    choices.sort(key=lambda c: c.index)
    first = answers[0]
    return TextCompletion(
        id=completion_id(first.id),
        created=first.created,
        model=first.model,
        choices=choices,
        usage=total_usage(a.usage for a in answers),
        system_fingerprint=first.system_fingerprint,
    )


def total_usage(usages: Iterable[Usage | msgspec.UnsetType | None]) -> Usage | msgspec.UnsetType:
    """The usage of several calls as one; cached prompt tokens are summed too (they are priced apart)."""
    known = [u for u in usages if isinstance(u, Usage)]
    if len(known) <= 1:
        return known[0] if known else msgspec.UNSET
    cached = sum(_cached(u) for u in known)
    return Usage(
        prompt_tokens=sum(u.prompt_tokens for u in known),
        completion_tokens=sum(u.completion_tokens for u in known),
        total_tokens=sum(u.total_tokens for u in known),
        prompt_tokens_details={"cached_tokens": cached} if cached else msgspec.UNSET,
    )


def _cached(usage: Usage) -> int:
    details = usage.prompt_tokens_details
    value = details.get("cached_tokens", 0) if isinstance(details, dict) else 0
    return value if isinstance(value, int) else 0


# --- translation: chat stream → text completion events -------------------------------------------


class ChunkTranslator:
    """Chat chunks of one prompt → ``text_completion`` events.

    With ``echo`` the prompt is put before each choice's first text (or on its finishing event when
    it wrote none), so the echo never marks the commit point ahead of the model's own output.
    """

    __slots__ = ("_echoed", "echo", "prompt")

    def __init__(self, prompt: str, *, echo: bool) -> None:
        self.prompt = prompt
        self.echo = echo
        self._echoed: set[int] = set()

    def translate(self, chunk: ChatChunk) -> TextCompletion | None:
        """The event for ``chunk``, or ``None`` when it carries nothing a completion shows (a role)."""
        choices: list[CompletionChoice] = []
        for choice in chunk.choices:
            delta = choice.delta
            text = delta.content or delta.refusal or ""
            ended = choice.finish_reason is not None
            if not text and not ended:
                continue
            if self.echo and choice.index not in self._echoed:
                self._echoed.add(choice.index)
                text = self.prompt + text
            choices.append(
                CompletionChoice(
                    text=text,
                    index=choice.index,
                    finish_reason=finish_reason(choice.finish_reason) if ended else None,
                )
            )
        usage = chunk.usage if isinstance(chunk.usage, Usage) else msgspec.UNSET
        if not choices and usage is msgspec.UNSET:
            return None
        return TextCompletion(
            id=completion_id(chunk.id),
            created=chunk.created,
            model=chunk.model,
            choices=choices,
            usage=usage,
            system_fingerprint=chunk.system_fingerprint,
        )
