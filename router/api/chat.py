"""``POST /v1/chat/completions``: decode, route, and answer as JSON or as an SSE stream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

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
from router.api.decode import decode_chat
from router.api.errors import error_json
from router.api.middleware import request_id_of
from router.api.services import Services
from router.errors import InternalError, RouterError
from router.routing import OpenedStream, Outcome
from router.routing.cost import cost_usd
from router.telemetry.logging import RequestLog
from router.types import ChatChunk, ChatRequest, Usage

_encode = msgspec.json.Encoder().encode
_errors = logging.getLogger("router.api")
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
DONE = b"data: [DONE]\n\n"


def outcome_headers(outcome: Outcome, elapsed_s: float) -> dict[str, str]:
    """The headers that say how the answer was served; also marks when it began, for the log."""
    model = outcome.model
    outcome.answered_ms = elapsed_s * 1000.0
    overhead_ms = outcome.overhead_ms = max(elapsed_s * 1000.0 - outcome.upstream_ms, 0.0)
    headers = {
        "x-router-model": model.id,
        "x-router-provider": model.provider,
        "x-router-attempts": str(len(outcome.attempts)),
        "x-router-overhead-ms": f"{overhead_ms:.2f}",
    }
    if outcome.strategy:
        headers["x-router-strategy"] = outcome.strategy
    reason = outcome.fallback_reason
    if reason:
        headers["x-router-fallback-reason"] = reason
    return headers


def chat_handlers(services: Services) -> list[ASGIRouteHandler]:
    """The chat route, bound to this app's services (with and without the ``/v1`` prefix)."""

    @asgi(["/v1/chat/completions", "/chat/completions"])
    async def chat_completions(scope: Scope, receive: Receive, send: Send) -> None:
        clock = services.clock
        started = clock.monotonic()
        request_id = request_id_of(scope)
        log = services.request_log
        key = key_of(scope)
        chat: ChatRequest | None = None
        grant: Grant = OPEN
        try:
            if not await allow_only(scope, send, "POST"):
                return
            body = await services.bodies.read(scope, receive)
            chat = decode_chat(body)
            estimate = estimate_tokens(body)
            grant = await admit(services, key, [chat.model, *(chat.models or ())], estimate)
            engine = services.engine
            if chat.stream:
                opened = await engine.open_stream(chat, request_id, estimate)
            else:
                served = await engine.complete(chat, request_id, estimate)
        except RouterError as exc:
            # The exception handler renders the answer; this records the request.
            elapsed = clock.monotonic() - started
            exc.headers.update(grant.headers)
            log.write(_fields(request_id, chat, None, exc.status, elapsed, attempts=exc.attempts, key=key))
            raise
        if chat.stream:
            settle = settler(services, grant, opened.outcome.model.id)
            events = _sse(opened, chat, log, request_id, lambda: clock.monotonic() - started, key, settle)
            headers = {
                **SSE_HEADERS,
                **outcome_headers(opened.outcome, clock.monotonic() - started),
                **grant.headers,
            }
            await send_stream(scope, receive, send, events, headers)
            return
        completion = served.completion
        elapsed = clock.monotonic() - started
        headers = outcome_headers(served.outcome, elapsed)
        headers.update(grant.headers)
        fields = _fields(request_id, chat, served.outcome, 200, elapsed, usage=completion.usage, key=key)
        if isinstance(completion.usage, Usage):
            tier = completion.service_tier if isinstance(completion.service_tier, str) else None
            cost = cost_usd(served.outcome.model, completion.usage, tier or served.outcome.service_tier)
            headers["x-router-cost-usd"] = f"{cost:.8f}"
            fields["cost_usd"] = round(cost, 8)
            settler(services, grant, served.outcome.model.id)(completion.usage.total_tokens)
        await send_json(send, _encode(completion), headers)
        log.write(fields)

    return [chat_completions]


async def _sse(
    opened: OpenedStream[ChatChunk],
    chat: ChatRequest,
    log: RequestLog,
    request_id: str,
    elapsed: Callable[[], float],
    key: ApiKey | None,
    settle: Callable[[int | None], None],
) -> AsyncIterator[bytes]:
    """Encode canonical chunks as Chat Completions SSE; a failure after the commit point ends the
    stream with an error event and no ``[DONE]``, so a cut answer never looks complete."""
    include_usage = chat.include_usage
    usage: Usage | None = None
    tier = opened.outcome.service_tier
    status = 200
    try:
        async for chunk in opened.chunks():
            if isinstance(chunk.usage, Usage):
                usage = chunk.usage
            if isinstance(chunk.service_tier, str):
                tier = chunk.service_tier  # the tier the provider reports having served at
            if not include_usage:
                if not chunk.choices:
                    continue  # the usage chunk the router asked for on its own account
                chunk.usage = msgspec.UNSET
            elif chunk.usage is msgspec.UNSET:
                chunk.usage = None  # OpenAI's convention: every chunk before the usage chunk says null
            yield b"data: " + _encode(chunk) + b"\n\n"
        yield DONE
    except RouterError as exc:
        status = exc.status
        yield b"data: " + error_json(exc) + b"\n\n"
    except Exception:
        status = 500
        _errors.exception("stream failed after the commit point (request %s)", request_id)
        yield (
            b"data: " + error_json(InternalError("The router failed while streaming this answer.")) + b"\n\n"
        )
    finally:
        fields = _fields(request_id, chat, opened.outcome, status, elapsed(), usage=usage, key=key)
        settle(usage.total_tokens if usage is not None else None)
        if usage is not None:
            fields["cost_usd"] = round(cost_usd(opened.outcome.model, usage, tier), 8)
        log.write(fields)
        # A client that goes away cancels this generator's scope; the shield lets the upstream
        # connection close now (so the provider stops generating) instead of at garbage collection.
        with anyio.CancelScope(shield=True):
            await opened.aclose()


def _fields(
    request_id: str,
    chat: ChatRequest | None,
    outcome: Outcome | None,
    status: int,
    elapsed_s: float,
    *,
    usage: Usage | msgspec.UnsetType | None = None,
    attempts: tuple[str, ...] = (),
    key: ApiKey | None = None,
) -> dict[str, Any]:
    tokens = usage_tokens(usage)
    model = chat.model if chat else None
    stream = bool(chat and chat.stream)
    return log_fields(
        "chat",
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
