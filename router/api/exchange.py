"""The exchange pipeline every model route runs: everything a request does that is not its API's own.

A route supplies what is its own (``ModelRoute``): decoding its body, running its operation on the
engine, encoding its answer, and writing its stream's events (``StreamWriter``). The pipeline does the
rest, once for all of them: the method, the body and its decoding errors, the key's rights and limits
(admission), the outcome headers, the cost, the token settlement, sending JSON or an SSE stream (with
the commit-point rule: a failure after the first event ends the stream with the route's failure event,
never a bare close), and the request record every sink reads.

When the response cache is on, the pipeline looks the request up after admission (a hit is still
authenticated, allowed and rate limited) and before the engine: a hit is replayed through the route's
``RouteCache`` without any upstream call, breaker or cost; a miss keeps its answer once it is whole
(a stream's, assembled, before its terminator), never an error or a cut stream. With the cache off
none of this runs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol, TypeVar

import anyio
from litestar.types import Receive, Scope, Send

from router.access import BudgetHold, Budgets, Grant
from router.access.limits import OPEN
from router.api._asgi import allow_only, send_json
from router.api.access import admit, admit_spend, estimate_tokens, key_of, ledger_name
from router.api.answers import Assembler, Counted, StreamWriter
from router.api.cache import BYPASS, CACHE_HEADER, HIT, MISS, CachedAnswer, ResponseCache, directives
from router.api.middleware import request_id_of
from router.api.services import Services
from router.api.streaming import send_stream
from router.catalog import STRATEGIES
from router.errors import InternalError, RouterError
from router.routing import Engine, OpenedStream, Outcome, Routable
from router.routing.cost import cache_writes, cost_usd
from router.telemetry.record import RequestRecord
from router.telemetry.tracing import RequestSpan

_errors = logging.getLogger("router.api")
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
FREE = f"{0:.8f}"  # the cost of a cache hit

Req = TypeVar("Req", bound=Routable)
Ans = TypeVar("Ans")
Ev = TypeVar("Ev")
Req_contra = TypeVar("Req_contra", bound=Routable, contravariant=True)
Ans_contra = TypeVar("Ans_contra", contravariant=True)


class RouteCache(Protocol[Req_contra, Ans_contra, Ev]):
    """What a route supplies to the response cache: which requests may be answered from it, which
    answers are whole enough to keep, and how a kept answer is replayed as JSON or as its stream."""

    def cacheable(self, request: Req_contra) -> bool:
        """``False``: the answer depends on state the key does not capture; the request bypasses."""
        ...

    def keeps(self, answer: Ans_contra) -> bool:
        """Whether a JSON answer may be kept (complete; not cut by a content filter; not empty)."""
        ...

    def assembler(self, request: Req_contra) -> Assembler[Ev]: ...

    async def replay(self, exchange: Exchange, request: Req_contra, entry: CachedAnswer) -> bytes:
        """The JSON body of a hit."""
        ...

    async def replay_stream(
        self, exchange: Exchange, request: Req_contra, entry: CachedAnswer
    ) -> tuple[Iterable[Ev], StreamWriter[Ev]]:
        """The events of a hit's stream, and the writer that frames them."""
        ...


class ModelRoute(Protocol[Req, Ans, Ev]):
    """What a model route has of its own."""

    name: str  # the record's route: chat, responses, completions or embeddings
    writes: bool  # whether its answers write output (priced for budgets): not embeddings

    @property
    def cache(self) -> RouteCache[Req, Ans, Ev]:
        """What the route supplies to the response cache (used only when the cache is on)."""
        ...

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
        "cached",
        "charged",
        "engine",
        "estimate",
        "grant",
        "hold",
        "inputs",
        "keep_as",
        "key",
        "model_asked",
        "native",
        "overhead_ms",
        "request_id",
        "response_cache",
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
        self.response_cache: ResponseCache | None = services.cache  # None: the cache is off
        self.cached: str | None = None  # what the cache did: hit, miss or bypass
        self.keep_as: str | None = None  # the cache key the answer is kept under, if it may be

    async def look_up(
        self, hooks: RouteCache[Req, Any, Any], request: Req, headers: Iterable[tuple[bytes, bytes]]
    ) -> CachedAnswer | None:
        """The kept answer to ``request``, if the cache may answer it (``self.response_cache`` is set)."""
        cache = self.response_cache
        assert cache is not None
        asked = directives(headers)
        if not asked.keep or not hooks.cacheable(request):
            self.cached = BYPASS
            return None
        self.cached = MISS
        self.keep_as = cache.key(self.key.name if self.key else None, self.route, request.raw)
        entry = await cache.get(self.keep_as) if asked.read else None
        if entry is not None:
            self.cached = HIT
        return entry

    async def keep(self, body: bytes | None, outcome: Outcome) -> None:
        """Keep a whole answer's JSON ``body`` in the cache, when this request's answer may be kept."""
        cache, key = self.response_cache, self.keep_as
        if body is None or cache is None or key is None:
            return
        model = outcome.model
        await cache.put(key, body, model.id, model.provider, outcome.strategy)

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
        if model.deployment is not None:
            headers["x-router-deployment"] = model.deployment
        if outcome.strategy:
            headers["x-router-strategy"] = outcome.strategy
        reason = outcome.fallback_reason
        if reason:
            headers["x-router-fallback-reason"] = reason
        if self.cached is not None:
            headers[CACHE_HEADER] = self.cached
        headers.update(self.grant.headers)
        return headers

    def hit_headers(self, cache: ResponseCache, entry: CachedAnswer) -> dict[str, str]:
        """The headers of an answer replayed from the cache: the model and provider that served it
        when it was kept, no attempt, and its age in seconds."""
        elapsed_ms = (self.services.clock.monotonic() - self.started) * 1000.0
        self.answered_ms = self.overhead_ms = elapsed_ms
        headers = {
            "x-router-model": entry.model,
            "x-router-provider": entry.provider,
            "x-router-attempts": "0",
            "x-router-overhead-ms": f"{elapsed_ms:.2f}",
            CACHE_HEADER: HIT,
            "age": str(cache.age(entry)),
        }
        if entry.strategy:
            headers["x-router-strategy"] = entry.strategy
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
        if self.cached is not None:
            error.headers[CACHE_HEADER] = self.cached
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
                cache=self.cached,
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
                attempts=tuple(a.label for a in outcome.attempts),
                attempt_deployments=_deployments_of(outcome),
                model=model.id,
                provider=model.provider,
                deployment=model.deployment,
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
                cache=self.cached,
            )
        )
        self.span.end(record)

    def replayed(self, entry: CachedAnswer, status: int) -> None:
        """A cache hit is over: it spent no tokens (the estimate charged to the key's token limits is
        given back) and cost nothing; write its record."""
        grant = self.grant
        if grant.token_buckets:
            self.services.limiter.settle(grant, 0)
        self.services.request_log.write(
            record := RequestRecord(
                request_id=self.request_id,
                route=self.route,
                key=self.key.name if self.key is not None else None,
                model_asked=self.model_asked,
                stream=self.stream,
                status=status,
                duration_ms=round((self.services.clock.monotonic() - self.started) * 1000.0, 2),
                attempts=(),
                model=entry.model,
                provider=entry.provider,
                strategy=entry.strategy,
                overhead_ms=round(self.overhead_ms, 3),
                cost_usd=0.0,
                cache=HIT,
            )
        )
        self.span.end(record)


def _deployments_of(outcome: Outcome) -> tuple[str, ...]:
    """Each attempt's deployment, when one of them went to a model with several (else nothing)."""
    attempts = outcome.attempts
    if outcome.model.deployment is None and all(a.deployment is None for a in attempts):
        return ()
    return tuple(a.deployment or "" for a in attempts)


async def serve(
    services: Services, route: ModelRoute[Req, Ans, Ev], scope: Scope, receive: Receive, send: Send
) -> None:
    """Serve one request on ``route``: see the module's docstring."""
    exchange = Exchange(services, route.name, scope)
    hit: CachedAnswer | None = None
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
        if exchange.response_cache is not None:
            hit = await exchange.look_up(route.cache, request, scope["headers"])
        if hit is None and exchange.budgets.active:  # a hit costs nothing: no budget to check
            await exchange.admit_spend(route, request, names)
        if hit is not None:
            if exchange.stream:
                replayed, writer = await route.cache.replay_stream(exchange, request, hit)
            else:
                hit_body = await route.cache.replay(exchange, request, hit)
        elif exchange.stream:
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
    if hit is not None and exchange.response_cache is not None:
        headers = exchange.hit_headers(exchange.response_cache, hit)
        if exchange.stream:
            events = _replayed(exchange, hit, replayed, writer)
            await send_stream(receive, send, events, {**SSE_HEADERS, **headers})
            return
        headers["x-router-cost-usd"] = FREE
        await send_json(send, hit_body, headers)
        exchange.replayed(hit, 200)
        return
    if exchange.stream:
        headers = {**SSE_HEADERS, **exchange.answer_headers(opened.outcome)}
        assembler = route.cache.assembler(request) if exchange.keep_as is not None else None
        await send_stream(receive, send, _events(exchange, opened, writer, assembler), headers)
        return
    headers = exchange.answer_headers(outcome)
    counted = route.counted(answer, outcome)
    cost = None
    if counted is not None:
        cost = cost_usd(outcome.model, counted.usage, counted.tier)
        headers["x-router-cost-usd"] = f"{cost:.8f}"
    exchange.charge(outcome, cost)  # before the answer leaves: a report asked right after sees it
    encoded = route.encode(answer)
    if exchange.keep_as is not None and route.cache.keeps(answer):
        # Kept before it is sent: the client's next identical request finds it.
        await exchange.keep(encoded, outcome)
    await send_json(send, encoded, headers)
    exchange.served(outcome, 200, counted, cost)


async def _events(
    exchange: Exchange,
    opened: OpenedStream[Ev],
    writer: StreamWriter[Ev],
    assembler: Assembler[Ev] | None = None,
) -> AsyncIterator[bytes]:
    """The stream's bytes. A failure after the commit point ends it with the writer's failure event
    and no terminator, so a cut answer never looks complete. With an ``assembler`` (a cache miss
    whose answer may be kept), the whole answer is kept once the upstream stream has ended, before
    the terminator: a stream that fails or whose client leaves is never kept."""
    status = 200
    try:
        events = opened.chunks() if assembler is None else _fed(opened.chunks(), assembler)
        async for event in events:
            frame = writer.frame(event)
            if frame is not None:
                yield frame
        if assembler is not None:
            await exchange.keep(assembler.answer(), opened.outcome)
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


async def _fed(events: AsyncIterator[Ev], assembler: Assembler[Ev]) -> AsyncIterator[Ev]:
    """``events``, each shown to ``assembler`` first (the writer may change an event as it frames it)."""
    async for event in events:
        assembler.feed(event)
        yield event


async def _replayed(
    exchange: Exchange, entry: CachedAnswer, events: Iterable[Ev], writer: StreamWriter[Ev]
) -> AsyncIterator[bytes]:
    """A cache hit's stream: the kept answer's events framed by the route's writer, sent at once."""
    try:
        frames = [frame for event in events if (frame := writer.frame(event)) is not None]
        frames.append(writer.end())
        yield b"".join(frames)
    finally:
        exchange.replayed(entry, 200)
        with anyio.CancelScope(shield=True):
            await writer.close()  # a replayed Response is stored under its own id here
