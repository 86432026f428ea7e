"""``POST /v1/chat/completions``: decode, route, and answer as JSON or as an SSE stream."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from litestar.response import Stream

from router.api.decode import decode_chat
from router.api.errors import JSON, error_json
from router.api.middleware import request_id_of
from router.api.services import Services
from router.errors import InternalError, RouterError
from router.routing import OpenedStream, Outcome
from router.telemetry.logging import REQUEST_LOGGER, log_request
from router.types import ChatRequest, Usage

_encode = msgspec.json.Encoder().encode
_log = logging.getLogger(REQUEST_LOGGER)
_errors = logging.getLogger("router.api")
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
DONE = b"data: [DONE]\n\n"


def outcome_headers(outcome: Outcome) -> dict[str, str]:
    model = outcome.model
    headers = {
        "x-router-model": model.id,
        "x-router-provider": model.provider,
        "x-router-attempts": str(len(outcome.attempts)),
    }
    if outcome.strategy:
        headers["x-router-strategy"] = outcome.strategy
    reason = outcome.fallback_reason
    if reason:
        headers["x-router-fallback-reason"] = reason
    return headers


def chat_handlers(services: Services) -> list[HTTPRouteHandler]:
    """The chat route, bound to this app's services (with and without the ``/v1`` prefix)."""

    @post(["/v1/chat/completions", "/chat/completions"], status_code=200)
    async def chat_completions(request: Request[Any, Any, Any]) -> Response[bytes] | Stream:
        started = time.perf_counter()
        request_id = request_id_of(request.scope)
        chat = decode_chat(await request.body())
        engine = services.engine
        if chat.stream:
            opened = await engine.open_stream(chat, request_id)
            body = _sse(opened, chat, request_id, started)
            return Stream(
                body,
                media_type="text/event-stream; charset=utf-8",
                headers={**SSE_HEADERS, **outcome_headers(opened.outcome)},
            )
        served = await engine.complete(chat, request_id)
        usage = served.completion.usage
        _log_done(request_id, chat, served.outcome, 200, started, usage if isinstance(usage, Usage) else None)
        return Response(
            content=_encode(served.completion),
            media_type=JSON,
            headers=outcome_headers(served.outcome),
        )

    return [chat_completions]


async def _sse(
    opened: OpenedStream, chat: ChatRequest, request_id: str, started: float
) -> AsyncIterator[bytes]:
    """Encode canonical chunks as Chat Completions SSE; a failure after the commit point ends the
    stream with an error event and no ``[DONE]``, so a cut answer never looks complete."""
    include_usage = chat.include_usage
    usage: Usage | None = None
    status = 200
    try:
        async for chunk in opened.chunks():
            if isinstance(chunk.usage, Usage):
                usage = chunk.usage
            if not include_usage:
                if not chunk.choices:
                    continue  # the usage chunk the router asked for on its own account
                chunk.usage = msgspec.UNSET
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
        await opened.aclose()
        _log_done(request_id, chat, opened.outcome, status, started, usage)


def _log_done(
    request_id: str, chat: ChatRequest, outcome: Outcome, status: int, started: float, usage: Usage | None
) -> None:
    fields: dict[str, Any] = {
        "request_id": request_id,
        "route": "chat",
        "model_asked": chat.model,
        "model": outcome.model.id,
        "provider": outcome.model.provider,
        "strategy": outcome.strategy,
        "attempts": [f"{a.model}:{a.outcome}" for a in outcome.attempts],
        "stream": bool(chat.stream),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if usage is not None:
        fields["tokens_in"] = usage.prompt_tokens
        fields["tokens_out"] = usage.completion_tokens
    log_request(_log, fields)
