"""The exchange pipeline every model route runs: everything a request does that is not its API's own.

A route supplies what is its own (``ModelRoute``): decoding its body, running its operation on the
engine, encoding its answer, and writing its stream's events (``StreamWriter``). The pipeline does the
rest, once for all of them: the method, the body and its decoding errors, the key's rights and limits
(admission), the outcome headers, the cost, the token settlement, sending JSON or an SSE stream (with
the commit-point rule: a failure after the first event ends the stream with the route's failure event,
never a bare close), and the request record every sink reads.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import NamedTuple, Protocol, TypeVar

import anyio
from litestar.types import Receive, Scope, Send

from router.access import BudgetHold, Budgets, Grant
from router.access.limits import OPEN
from router.api._asgi import allow_only, send_json
from router.api.access import admit, admit_spend, estimate_tokens, key_of, ledger_name
from router.api.middleware import request_id_of
from router.api.services import Services
from router.api.streaming import send_stream
from router.catalog import STRATEGIES
from router.errors import InternalError, RouterError
from router.routing import Engine, OpenedStream, Outcome, Routable
from router.routing.cost import cache_writes, cost_usd
from router.telemetry.record import RequestRecord, Tokens
from router.telemetry.tracing import RequestSpan
from router.types import Usage

_errors = logging.getLogger("router.api")
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}

Req = TypeVar("Req", bound=Routable)
Ans = TypeVar("Ans")
Ev = TypeVar("Ev")
Ev_contra = TypeVar("Ev_contra", contravariant=True)


class Counted(NamedTuple):
    """What an answer's usage means for the record, the limits and the bill."""

    tokens: Tokens
    total: int  # what the token limits are settled with
    usage: Usage  # Chat-shaped, for pricing
    tier: str | None  # the service tier it was served at


def chat_counted(usage: Usage, tier: str | None) -> Counted:
    """A Chat-shaped usage (``prompt_tokens`` include cached, ``completion_tokens`` reasoning)."""
    cached = (
        usage.prompt_tokens_details.get("cached_tokens")
        if isinstance(usage.prompt_tokens_details, dict)
        else 0
    )
    details = usage.completion_tokens_details
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else 0
    tokens = (usage.prompt_tokens, usage.completion_tokens, int(cached or 0), int(reasoning or 0))
    return Counted(tokens, usage.total_tokens, usage, tier)


class StreamWriter(Protocol[Ev_contra]):
    """How a route's stream is written: each event's frame, the terminator, the failure event."""

    def frame(self, event: Ev_contra) -> bytes | None:
        """The bytes of ``event`` (``None``: nothing to send for it)."""
        ...

    def end(self) -> bytes:
        """What follows the last event of a complete stream (may be empty)."""
        ...

    def failure(self, error: RouterError) -> bytes:
        """The event that ends a stream broken after its commit point."""
        ...

    def counted(self) -> Counted | None:
        """The usage the stream reported, if it did."""
        ...

    async def close(self) -> None:
        """After the stream, whatever happened (a stored Responses conversation is kept here)."""
        ...


class ModelRoute(Protocol[Req, Ans, Ev]):
    """What a model route has of its own."""

    name: str  # the record's route: chat, responses, completions or embeddings
    writes: bool  # whether its answers write output (priced for budgets): not embeddings

    def decode(self, body: bytes) -> Req: ...

    def streams(self, request: Req) -> bool: ...

    async def answer(self, exchange: Exchange, request: Req) -> tuple[Ans, Outcome]: ...

    async def open(self, exchange: Exchange, request: Req) -> tuple[OpenedStream[Ev], StreamWriter[Ev]]: ...

    def encode(self, answer: Ans) -> bytes: ...

    def counted(self, answer: Ans, outcome: Outcome) -> Counted | None: ...


class Exchange:
    """One request passing through a model route: what the pipeline and the route share about it."""

    __slots__ = (
        "answered_ms",
        "budgets",
        "charged",
        "engine",
        "estimate",
        "grant",
        "hold",
        "inputs",
        "key",
        "model_asked",
        "native",
        "overhead_ms",
        "request_id",
        "route",
        "services",
        "span",
        "started",
        "stream",
    )

    def __init__(self, services: Services, route: str, scope: Scope) -> None:
        self.services = services
        self.route = route
        self.started = services.clock.monotonic()
        self.request_id = request_id_of(scope)
        self.key = key_of(scope)
        # Read once: a catalog reload swaps the engine, and a request keeps the one it started with.
        self.engine: Engine = services.engine
        self.budgets: Budgets = services.budgets  # the same: a request keeps the budgets it met
        self.hold: BudgetHold | None = None  # its budget reservations, if a budget applies
        self.charged = False  # its cost is in the ledger
        # The request's trace span (a constant no-op when tracing is off), current until released.
        self.span: RequestSpan = self.engine.tracer.request(route, scope["headers"])
        self.grant: Grant = OPEN
        self.estimate = 0  # the request's estimated prompt tokens
        self.model_asked: str | None = None
        self.stream = False
        self.answered_ms = 0.0  # when the answer began, since the request arrived
        self.overhead_ms = 0.0  # the router's share of that time, outside upstream calls
        self.native: bool | None = None  # set by the completions route
        self.inputs: int | None = None  # set by the embeddings route

    def answer_headers(self, outcome: Outcome) -> dict[str, str]:
        """The headers that say how the answer was served, from the moment it begins."""
        elapsed_ms = (self.services.clock.monotonic() - self.started) * 1000.0
        self.answered_ms = elapsed_ms
        overhead_ms = self.overhead_ms = max(elapsed_ms - outcome.upstream_ms, 0.0)
        model = outcome.model
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
        headers.update(self.grant.headers)
        return headers

    async def admit_spend(self, route: ModelRoute[Req, Ans, Ev], request: Req, names: list[str]) -> None:
        """Reserve the request's estimated cost on its budgets; a key past its downgrade share has
        a strategy keyword served with ``cost``."""
        hold = await admit_spend(self.budgets, self.key, names, request.raw, self.estimate, route.writes)
        self.hold = hold
        if hold is not None and hold.downgrade and request.model in STRATEGIES:
            request.model = "cost"

    def charge(self, outcome: Outcome, cost: float | None) -> None:
        """Settle the budgets and add the answer's cost to the ledger, once."""
        if not self.charged:
            self.charged = True
            self.budgets.settle(self.hold, ledger_name(self.key), outcome.model, cost)

    def refused(self, error: RouterError) -> None:
        """The request ended with ``error`` before any answer began."""
        self.budgets.release(self.hold)
        error.headers.update(self.grant.headers)
        self.services.request_log.write(
            record := RequestRecord(
                request_id=self.request_id,
                route=self.route,
                key=self.key.name if self.key is not None else None,
                model_asked=self.model_asked,
                stream=self.stream,
                status=error.status,
                duration_ms=round((self.services.clock.monotonic() - self.started) * 1000.0, 2),
                attempts=error.attempts,
                error=error.code,
            )
        )
        self.span.end(record)

    def served(self, outcome: Outcome, status: int, counted: Counted | None, cost: float | None) -> None:
        """The answer is over (a stream's last event sent): settle the tokens and the budgets, write
        the record."""
        self.charge(outcome, cost)
        model = outcome.model
        limiter = self.services.limiter
        if self.grant.token_buckets or limiter.model_rules:
            limiter.settle(self.grant, counted.total if counted is not None else None, model.id)
        duration_ms = round((self.services.clock.monotonic() - self.started) * 1000.0, 2)
        overhead_ms = round(self.overhead_ms, 3)
        tokens = counted.tokens if counted is not None else (None, None, None, None)
        self.services.request_log.write(
            record := RequestRecord(
                request_id=self.request_id,
                route=self.route,
                key=self.key.name if self.key is not None else None,
                model_asked=self.model_asked,
                stream=self.stream,
                status=status,
                duration_ms=duration_ms,
                attempts=tuple(f"{a.model}:{a.outcome}" for a in outcome.attempts),
                model=model.id,
                provider=model.provider,
                strategy=outcome.strategy,
                fallback_reason=outcome.fallback_reason,
                skipped=tuple(outcome.skipped),
                overhead_ms=overhead_ms,
                # A stream's upstream time is the rest of its duration; a JSON answer's, the calls'.
                ttft_ms=round(self.answered_ms, 2) if self.stream else None,
                upstream_ms=round(max(duration_ms - overhead_ms, 0.0), 2)
                if self.stream
                else round(outcome.upstream_ms, 2),
                # A stream's serving attempt reached its first output when the answer began; it
                # kept the rest of the duration.
                model_ms=round(outcome.attempt_ms + duration_ms - self.answered_ms, 2)
                if self.stream
                else round(outcome.attempt_ms, 2),
                tokens_in=tokens[0],
                tokens_out=tokens[1],
                tokens_cached=tokens[2],
                tokens_cache_write=cache_writes(counted.usage) if counted is not None else None,
                tokens_reasoning=tokens[3],
                cost_usd=round(cost, 8) if cost is not None else None,
                native=self.native,
                inputs=self.inputs,
            )
        )
        self.span.end(record)


async def serve(
    services: Services, route: ModelRoute[Req, Ans, Ev], scope: Scope, receive: Receive, send: Send
) -> None:
    """Serve one request on ``route``: see the module's docstring."""
    exchange = Exchange(services, route.name, scope)
    try:
        if not await allow_only(scope, send, "POST"):
            return  # OPTIONS, answered
        body = await services.bodies.read(scope, receive)
        request = route.decode(body)
        exchange.span.requested(request)
        exchange.model_asked = request.model
        exchange.stream = route.streams(request)
        exchange.estimate = estimate_tokens(body)
        names = [request.model, *(request.models or ())]
        exchange.grant = await admit(services, exchange.key, names, exchange.estimate)
        if exchange.budgets.active:
            await exchange.admit_spend(route, request, names)
        if exchange.stream:
            opened, writer = await route.open(exchange, request)
        else:
            answer, outcome = await route.answer(exchange, request)
    except RouterError as exc:
        exchange.refused(exc)
        raise  # rendered by the edge, as every error before an answer begins
    except BaseException as exc:
        exchange.budgets.release(exchange.hold)
        exchange.span.abandoned(exc)  # a defect (the edge answers it) or a client gone
        raise
    finally:
        exchange.span.release()  # the engine's calls are over: no longer the current span
    if exchange.stream:
        headers = {**SSE_HEADERS, **exchange.answer_headers(opened.outcome)}
        await send_stream(receive, send, _events(exchange, opened, writer), headers)
        return
    headers = exchange.answer_headers(outcome)
    counted = route.counted(answer, outcome)
    cost = None
    if counted is not None:
        cost = cost_usd(outcome.model, counted.usage, counted.tier)
        headers["x-router-cost-usd"] = f"{cost:.8f}"
    exchange.charge(outcome, cost)  # before the answer leaves: a report asked right after sees it
    await send_json(send, route.encode(answer), headers)
    exchange.served(outcome, 200, counted, cost)


async def _events(
    exchange: Exchange, opened: OpenedStream[Ev], writer: StreamWriter[Ev]
) -> AsyncIterator[bytes]:
    """The stream's bytes. A failure after the commit point ends it with the writer's failure event
    and no terminator, so a cut answer never looks complete."""
    status = 200
    try:
        async for event in opened.chunks():
            frame = writer.frame(event)
            if frame is not None:
                yield frame
        end = writer.end()
        if end:
            yield end
    except RouterError as exc:
        status = exc.status
        yield writer.failure(exc)
    except Exception:
        status = 500
        _errors.exception("stream failed after the commit point (request %s)", exchange.request_id)
        yield writer.failure(InternalError("The router failed while streaming this answer."))
    finally:
        counted = writer.counted()
        outcome = opened.outcome
        cost = cost_usd(outcome.model, counted.usage, counted.tier) if counted is not None else None
        exchange.served(outcome, status, counted, cost)
        # A client that goes away cancels this generator's scope; the shield lets the upstream
        # connection close now (so the provider stops generating) instead of at garbage collection.
        with anyio.CancelScope(shield=True):
            await writer.close()
            await opened.aclose()
