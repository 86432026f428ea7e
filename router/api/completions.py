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
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio
import msgspec
from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from router.access import ApiKey, Grant
from router.access.limits import OPEN
from router.api._asgi import allow_only, send_json, send_stream
from router.api._log import log_fields, usage_tokens
from router.api.access import admit, estimate_tokens, key_of, settler
from router.api.chat import DONE, SSE_HEADERS, outcome_headers
from router.api.decode import convert, decode_object
from router.api.errors import error_json
from router.api.middleware import request_id_of
from router.api.services import Services
from router.errors import AdapterUnavailable, InternalError, InvalidRequest, RouterError
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
from router.routing.cost import cost_usd
from router.telemetry.logging import RequestLog
from router.types import ChatCompletion, ChatRequest, CompletionRequest, Message, TextCompletion, Usage

# Chat models answer translated, models with the legacy API natively.
COMPLETION_ENDPOINTS = frozenset({"chat", "responses", "completions"})
PROMPT_CONCURRENCY = 8  # chat calls in flight for one request's list of prompts

_encode = msgspec.json.Encoder().encode
_errors = logging.getLogger("router.api")
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


async def _complete(adapter: ChatAdapter, call: LegacyCall) -> TextCompletion:
    if is_native(call.model):
        return await complete_native(_native(adapter, call), call)
    request = call.request
    prompts = _translated_prompts(call)

    async def one(i: int) -> ChatCompletion:
        return await adapter.complete(_chat_call(call, chat_request_for(request, prompts[i], stream=False)))

    answers = await each_prompt(one, len(prompts))
    return text_completion(answers, prompts, request)


def _open(adapter: ChatAdapter, call: LegacyCall) -> AsyncGenerator[TextCompletion, None]:
    if is_native(call.model):
        return stream_native(_native(adapter, call), call)
    return _translated_stream(adapter, call, _translated_prompts(call)[0])


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


def _event_tokens(event: TextCompletion) -> int | None:
    return event.usage.completion_tokens if isinstance(event.usage, Usage) else None


def _carries_output(event: TextCompletion) -> bool:
    return event.carries_output()


# --- route ---------------------------------------------------------------------------------------


def completion_handlers(services: Services) -> list[ASGIRouteHandler]:
    """The legacy completions route, bound to this app's services (with and without ``/v1``)."""

    @asgi(["/v1/completions", "/completions"])
    async def completions(scope: Scope, receive: Receive, send: Send) -> None:
        clock = services.clock
        started = clock.monotonic()
        request_id = request_id_of(scope)
        log = services.request_log
        key = key_of(scope)
        request: CompletionRequest | None = None
        grant: Grant = OPEN
        try:
            if not await allow_only(scope, send, "POST"):
                return
            body = await services.bodies.read(scope, receive)
            request = decode_completion(body)
            estimate = estimate_tokens(body)
            grant = await admit(services, key, [request.model, *(request.models or ())], estimate)
            engine = services.engine
            plan = plan_completion(engine, request)
            if request.stream:
                opened = await engine.run_stream(
                    request, plan, request_id, _open, _carries_output, _event_tokens, estimate=estimate
                )
            else:
                answer, outcome = await engine.run(request, plan, request_id, _complete, estimate=estimate)
        except RouterError as exc:
            # The exception handler renders the answer; this records the request.
            elapsed = clock.monotonic() - started
            exc.headers.update(grant.headers)
            log.write(_fields(request_id, request, None, exc.status, elapsed, attempts=exc.attempts, key=key))
            raise
        if request.stream:
            settle = settler(services, grant, opened.outcome.model.id)
            events = _sse(opened, request, log, request_id, lambda: clock.monotonic() - started, key, settle)
            headers = {
                **SSE_HEADERS,
                **outcome_headers(opened.outcome, clock.monotonic() - started),
                **grant.headers,
            }
            await send_stream(scope, receive, send, events, headers)
            return
        elapsed = clock.monotonic() - started
        headers = outcome_headers(outcome, elapsed)
        headers.update(grant.headers)
        fields = _fields(request_id, request, outcome, 200, elapsed, usage=answer.usage, key=key)
        if isinstance(answer.usage, Usage):
            cost = cost_usd(outcome.model, answer.usage, outcome.service_tier)
            headers["x-router-cost-usd"] = f"{cost:.8f}"
            fields["cost_usd"] = round(cost, 8)
            settler(services, grant, outcome.model.id)(answer.usage.total_tokens)
        await send_json(send, _encode(answer), headers)
        log.write(fields)

    return [completions]


async def _sse(
    opened: OpenedStream[TextCompletion],
    request: CompletionRequest,
    log: RequestLog,
    request_id: str,
    elapsed: Callable[[], float],
    key: ApiKey | None,
    settle: Callable[[int | None], None],
) -> AsyncIterator[bytes]:
    """Encode ``text_completion`` events as SSE; a failure after the commit point ends the stream with
    an error event and no ``[DONE]``, so a cut answer never looks complete."""
    include_usage = request.include_usage
    usage: Usage | None = None
    status = 200
    try:
        async for event in opened.chunks():
            if isinstance(event.usage, Usage):
                usage = event.usage
            if not include_usage:
                if not event.choices:
                    continue  # the usage event the router asked for on its own account
                event.usage = msgspec.UNSET
            elif event.usage is msgspec.UNSET:
                event.usage = None  # OpenAI's convention: every event before the usage one says null
            yield b"data: " + _encode(event) + b"\n\n"
        yield DONE
    except RouterError as exc:
        status = exc.status
        yield b"data: " + error_json(exc) + b"\n\n"
    except Exception:
        status = 500
        _errors.exception("completion stream failed after the commit point (request %s)", request_id)
        yield (
            b"data: " + error_json(InternalError("The router failed while streaming this answer.")) + b"\n\n"
        )
    finally:
        fields = _fields(request_id, request, opened.outcome, status, elapsed(), usage=usage, key=key)
        settle(usage.total_tokens if usage is not None else None)
        if usage is not None:
            fields["cost_usd"] = round(cost_usd(opened.outcome.model, usage, opened.outcome.service_tier), 8)
        log.write(fields)
        # A client that goes away cancels this generator's scope; the shield lets the upstream
        # connection close now instead of at garbage collection.
        with anyio.CancelScope(shield=True):
            await opened.aclose()


def _fields(
    request_id: str,
    request: CompletionRequest | None,
    outcome: Outcome | None,
    status: int,
    elapsed_s: float,
    *,
    usage: Usage | msgspec.UnsetType | None = None,
    attempts: tuple[str, ...] = (),
    key: ApiKey | None = None,
) -> dict[str, Any]:
    tokens = usage_tokens(usage)
    model = request.model if request else None
    stream = bool(request and request.stream)
    fields = log_fields(
        "completions",
        request_id,
        model,
        stream,
        outcome,
        status,
        elapsed_s,
        tokens=tokens,
        attempts=attempts,
        key=key,
    )
    if outcome is not None:
        fields["native"] = is_native(outcome.model)
    return fields
