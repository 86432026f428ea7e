"""``POST /v1/completions``: the legacy Completions API, served natively or translated to chat.

Each candidate model is served its own way when the engine reaches it: a model with a native
completions endpoint gets the client's body, any chat model gets one chat call per prompt (at most
``PROMPT_CONCURRENCY`` at a time) whose answers are rewritten as a ``text_completion``. Fields that
only the native API can honour (``suffix``, ``logprobs``, ``best_of`` > 1, token-array prompts) are
forwarded when the plan starts with a native model, which then keeps only native candidates; when it
starts with a chat model they are refused with a 400 naming the field. A translated stream serves one
prompt: a stream of several prompts needs a native model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import TypeVar

import msgspec
from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from router.api.answers import Counted, StreamWriter, chat_counted
from router.api.cache import CachedAnswer
from router.api.chunks import ChunkWriter
from router.api.decode import convert, decode_object
from router.api.exchange import Exchange, serve
from router.api.replay import TextAssembler, text_chunks, text_keeps
from router.api.services import Services
from router.errors import AdapterUnavailable, InvalidRequest
from router.providers import Call, ChatAdapter, UpstreamCall
from router.providers._completions import (
    DEFAULT_MAX_TOKENS,
    ChunkTranslator,
    LegacyCall,
    LegacyCompleter,
    chat_request_for,
    complete_native,
    is_native,
    prompt_texts,
    stream_native,
    text_completion,
)
from router.routing import Engine, OpenedStream, Outcome, Plan
from router.types import ChatCompletion, ChatRequest, CompletionRequest, Message, TextCompletion, Usage

# Chat models answer translated, models with the legacy API natively.
COMPLETION_ENDPOINTS = frozenset({"chat", "responses", "completions"})
PROMPT_CONCURRENCY = 8  # chat calls in flight for one request's list of prompts

_encode = msgspec.json.Encoder().encode
T = TypeVar("T")

# --- decoding ------------------------------------------------------------------------------------


def decode_completion(body: bytes) -> CompletionRequest:
    data = decode_object(body)
    request = convert(data, CompletionRequest)
    if request.stream_options is not None and not request.stream:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )
    _check_prompt(request.prompt)
    request.raw = data
    return request


def _check_prompt(prompt: str | list[str | int | list[int]] | None) -> None:
    """A list holds strings, token ids or token arrays, one kind only, and no empty token array."""
    if not isinstance(prompt, list):
        return
    if not prompt:
        raise InvalidRequest("'prompt' must not be an empty array.", param="prompt")
    kinds = {type(item) for item in prompt}
    if len(kinds) > 1:
        raise InvalidRequest(
            "'prompt' must be a string, an array of strings, an array of tokens or an array of token "
            "arrays, not a mix of them.",
            param="prompt",
        )
    for i, item in enumerate(prompt):
        tokens = item if isinstance(item, list) else [item] if isinstance(item, int) else []
        if isinstance(item, list) and not item:
            raise InvalidRequest(f"'prompt[{i}]' must not be an empty token array.", param=f"prompt[{i}]")
        if any(token < 0 for token in tokens):
            raise InvalidRequest(f"'prompt[{i}]' holds a negative token id.", param=f"prompt[{i}]")


# --- planning ------------------------------------------------------------------------------------


def untranslatable(request: CompletionRequest) -> tuple[str, str] | None:
    """The first field a chat model cannot honour, and why: ``(param, reason)``."""
    texts = prompt_texts(request)
    if texts is None:
        reason = (
            "a null prompt has no chat equivalent"
            if request.prompt is None
            else "the router has no tokenizer to detokenise a token-array prompt into text"
        )
        return "prompt", reason
    if request.suffix:
        return "suffix", "a chat model cannot insert text before a suffix"
    if request.logprobs is not None:
        return "logprobs", "the legacy per-token log probabilities are not translated"
    if request.best_of is not None and request.best_of > 1:
        return "best_of", "choosing the best of several candidates needs their log probabilities"
    if request.max_tokens == 0:
        return "max_tokens", "a chat model must generate at least one token"
    if request.stream and len(texts) > 1:
        return "prompt", "a translated stream serves one prompt (send several without 'stream')"
    return None


def planning_request(request: CompletionRequest) -> ChatRequest:
    """The chat-shaped view of the request that the engine plans with (prompt size, output, streaming)."""
    texts = prompt_texts(request) or []
    limit = request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS
    return ChatRequest(
        model=request.model,
        messages=[Message(role="user", content="\n".join(texts))],
        stream=request.stream,
        max_tokens=max(limit, 1),
        n=request.n,
        models=request.models,
        raw=request.raw,
    )


def plan_completion(engine: Engine, request: CompletionRequest) -> Plan:
    plan = engine.plan(planning_request(request), endpoints=COMPLETION_ENDPOINTS, output_param="max_tokens")
    blocked = untranslatable(request)
    if blocked is None:
        return plan
    param, reason = blocked
    first = plan.candidates[0].model
    if is_native(first):
        # Forwarded to the native API; a chat fallback could only fail on it.
        native = [t for t in plan.candidates if is_native(t.model)]
        return Plan(candidates=native, strategy=plan.strategy)
    raise InvalidRequest(
        f"'{param}' cannot be honoured by the model '{first.id}': the router answers completions for it "
        f"through its chat API, and {reason}. Ask for a model with a native completions API.",
        param=param,
    )


# --- attempts: one candidate, served natively or translated -------------------------------------


def _native(adapter: ChatAdapter, call: LegacyCall) -> LegacyCompleter:
    if not isinstance(adapter, LegacyCompleter):
        raise AdapterUnavailable(
            f"Model '{call.model.id}' answers only the legacy completions API, which provider "
            f"'{call.provider.name}' cannot reach through this router build."
        )
    return adapter


def _translated_prompts(call: LegacyCall) -> list[str]:
    blocked = untranslatable(call.request)
    texts = prompt_texts(call.request)
    if blocked is not None or texts is None:  # plan_completion keeps such requests off chat models
        param = blocked[0] if blocked else "prompt"
        raise InvalidRequest(f"'{param}' cannot be honoured by the model '{call.model.id}'.", param=param)
    return texts


def _chat_call(call: LegacyCall, chat: ChatRequest) -> UpstreamCall:
    return Call(
        request=chat,
        model=call.model,
        provider=call.provider,
        request_id=call.request_id,
        service_tier=call.service_tier,
        created=call.created,
    )


async def each_prompt(
    one: Callable[[int], Awaitable[T]], count: int, limit: int = PROMPT_CONCURRENCY
) -> list[T]:
    """``one(i)`` for every prompt, at most ``limit`` at a time, in order; the first failure cancels
    the rest and is raised as it is (the engine falls back on router errors, not exception groups)."""
    if count == 1:
        return [await one(0)]
    gate = asyncio.Semaphore(limit)

    async def bounded(i: int) -> T:
        async with gate:
            return await one(i)

    tasks = [asyncio.ensure_future(bounded(i)) for i in range(count)]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class _Complete:
    """A whole legacy completion from one candidate: native, or one chat call per prompt."""

    async def call(self, adapter: ChatAdapter, call: LegacyCall) -> TextCompletion:
        if is_native(call.model):
            return await complete_native(_native(adapter, call), call)
        request = call.request
        prompts = _translated_prompts(call)

        async def one(i: int) -> ChatCompletion:
            chat = chat_request_for(request, prompts[i], stream=False)
            return await adapter.complete(_chat_call(call, chat))

        answers = await each_prompt(one, len(prompts))
        return text_completion(answers, prompts, request)

    def output_tokens(self, answer: TextCompletion) -> int:
        return answer.usage.completion_tokens if isinstance(answer.usage, Usage) else 0


class _Stream:
    """A legacy completion stream from one candidate: native, or its one prompt's chat stream."""

    def open(self, adapter: ChatAdapter, call: LegacyCall) -> AsyncGenerator[TextCompletion, None]:
        if is_native(call.model):
            return stream_native(_native(adapter, call), call)
        return _translated_stream(adapter, call, _translated_prompts(call)[0])

    def carries_output(self, event: TextCompletion) -> bool:
        return event.carries_output()

    def output_tokens(self, event: TextCompletion) -> int | None:
        return event.usage.completion_tokens if isinstance(event.usage, Usage) else None


async def _translated_stream(
    adapter: ChatAdapter, call: LegacyCall, prompt: str
) -> AsyncGenerator[TextCompletion, None]:
    translator = ChunkTranslator(prompt, echo=bool(call.request.echo))
    chunks = adapter.stream(_chat_call(call, chat_request_for(call.request, prompt, stream=True)))
    try:
        async for chunk in chunks:
            event = translator.translate(chunk)
            if event is not None:
                yield event
    finally:
        await chunks.aclose()


_COMPLETE = _Complete()
_STREAM = _Stream()


# --- route ---------------------------------------------------------------------------------------


class CompletionsCache:
    """A kept legacy completion is replayed as it was (same id), or as its stream."""

    def cacheable(self, request: CompletionRequest) -> bool:
        return True

    def keeps(self, answer: TextCompletion) -> bool:
        return text_keeps(answer)

    def assembler(self, request: CompletionRequest) -> TextAssembler:
        return TextAssembler()

    async def replay(self, exchange: Exchange, request: CompletionRequest, entry: CachedAnswer) -> bytes:
        return entry.body

    async def replay_stream(
        self, exchange: Exchange, request: CompletionRequest, entry: CachedAnswer
    ) -> tuple[Iterable[TextCompletion], StreamWriter[TextCompletion]]:
        return text_chunks(entry.body), ChunkWriter(request.include_usage, None)


class CompletionsRoute:
    name = "completions"
    writes = True
    cache = CompletionsCache()

    def decode(self, body: bytes) -> CompletionRequest:
        return decode_completion(body)

    def streams(self, request: CompletionRequest) -> bool:
        return bool(request.stream)

    async def answer(self, exchange: Exchange, request: CompletionRequest) -> tuple[TextCompletion, Outcome]:
        engine = exchange.engine
        plan = plan_completion(engine, request)
        answer, outcome = await engine.run(
            request, plan, exchange.request_id, _COMPLETE, estimate=exchange.estimate, admission=exchange.hold
        )
        exchange.native = is_native(outcome.model)
        return answer, outcome

    async def open(
        self, exchange: Exchange, request: CompletionRequest
    ) -> tuple[OpenedStream[TextCompletion], StreamWriter[TextCompletion]]:
        engine = exchange.engine
        plan = plan_completion(engine, request)
        opened = await engine.run_stream(
            request, plan, exchange.request_id, _STREAM, estimate=exchange.estimate, admission=exchange.hold
        )
        exchange.native = is_native(opened.outcome.model)
        return opened, ChunkWriter(request.include_usage, opened.outcome.service_tier)

    def encode(self, answer: TextCompletion) -> bytes:
        return _encode(answer)

    def counted(self, answer: TextCompletion, outcome: Outcome) -> Counted | None:
        if not isinstance(answer.usage, Usage):
            return None
        return chat_counted(answer.usage, outcome.service_tier)


def completion_handlers(services: Services) -> list[ASGIRouteHandler]:
    """The legacy completions route, bound to this app's services (with and without ``/v1``)."""
    route = CompletionsRoute()

    @asgi(["/v1/completions", "/completions"], copy_scope=False)
    async def completions(scope: Scope, receive: Receive, send: Send) -> None:
        await serve(services, route, scope, receive, send)

    return [completions]
