"""Routing engine: resolve the asked model to a candidate plan, then try candidates in order.

Non-streaming calls fall back on any error that another model could survive. Streams are held until
the first chunk with real output (the commit point): any failure before it falls back invisibly;
after it, the stream belongs to the client and a failure ends it with an error event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Protocol, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from router.catalog import Catalog, Model, Target, remedy
from router.clock import Clock
from router.errors import (
    AdapterUnavailable,
    BreakerOpen,
    BudgetExceeded,
    FlexRefused,
    ModelLimited,
    NoCandidate,
    ProviderNotConfigured,
    RouterError,
    UpstreamTimeout,
    listed,
)
from router.providers import Call, ChatAdapter, supports
from router.routing.breaker import Breaker, BreakerBoard
from router.routing.deployments import CALLING, QuotaBoard
from router.routing.operation import Operation, StreamOperation
from router.routing.outcome import Attempt, Outcome
from router.routing.planning import Plan, Planner, Routable
from router.routing.stats import StatsBoard
from router.routing.strategies import CHAT_ENDPOINTS
from router.routing.streams import OpenedStream, last_error, until_first_output
from router.telemetry.tracing import NO_SPAN, AttemptSpan, NoTracer, Tracer
from router.types import ChatRequest

# A model's own rate limit: (model id, estimated tokens) → ``None`` when admitted, else seconds to wait.
ModelGate = Callable[[str, int], Awaitable[float | None]]


class Admission(Protocol):
    """One request's own check of each candidate before it is called (its spend budgets)."""

    async def admit_model(self, target: Target) -> None:
        """Raises a ``BudgetExceeded`` that may fall back when ``target`` does not fit."""
        ...


T = TypeVar("T")
R = TypeVar("R")
E = TypeVar("E")


Q = TypeVar("Q", bound=Routable)


class Engine:
    """Turns a canonical request into an answer from the best available model."""

    def __init__(
        self,
        catalog: Catalog,
        adapters: Mapping[str, ChatAdapter],
        clock: Clock,
        breakers: BreakerBoard | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        gate: ModelGate | None = None,
        stats: StatsBoard | None = None,
        tracer: Tracer | None = None,
        quotas: QuotaBoard | None = None,
    ) -> None:
        self.catalog = catalog
        self.tracer: Tracer = tracer or NoTracer()  # a span per upstream attempt
        self._gate = gate
        self._adapters = adapters
        self._clock = clock
        self.breakers = breakers or BreakerBoard(catalog.routing.breaker, clock)
        self.stats = stats or StatsBoard(clock)  # kept across catalog reloads
        self.quotas = quotas or QuotaBoard(clock)  # each deployment's quota, kept across reloads too
        self._sleep = sleep
        self._planner = Planner(catalog, self.unusable_reason, self.stats.speed)

    # --- planning --------------------------------------------------------------------------------

    def unusable_reason(self, model: Model) -> str | None:
        """Why no deployment of ``model`` can be called (``None``: one can)."""
        reasons = [self._view_unusable(view) for view in model.views()]
        if any(reason is None for reason in reasons):
            return None
        return "; ".join(dict.fromkeys(r for r in reasons if r is not None))

    def _view_unusable(self, view: Model) -> str | None:
        provider = self.catalog.provider_of(view)
        if not provider.configured:
            lacks = "has no key" if provider.missing == (provider.api_key_env,) else "is not configured"
            return f"provider '{provider.name}' {lacks}: {provider.remedy()}"
        if not supports(provider):
            return f"no adapter for provider kind '{provider.kind}'"
        return None

    def available(self, model: Model) -> bool:
        """Whether a breaker of one of the model's deployments admits calls."""
        if not model.deployments:
            return self.breakers.available(model.id)
        return any(self.breakers.available(view.key) for view in model.deployments)

    def routable(self) -> int:
        """Models that could serve now: provider configured and breaker admitting calls."""
        return sum(
            1
            for model in self.catalog.models.values()
            if self.unusable_reason(model) is None and self.available(model)
        )

    def plan(
        self,
        request: ChatRequest,
        endpoints: frozenset[str] = CHAT_ENDPOINTS,
        output_param: str | None = None,
    ) -> Plan:
        """See ``Planner.plan``."""
        return self._planner.plan(request, endpoints, output_param)

    def plan_fixed(self, request: Routable, capability: str, purpose: str) -> Plan:
        """See ``Planner.plan_fixed``."""
        return self._planner.plan_fixed(request, capability, purpose)

    # --- attempts --------------------------------------------------------------------------------

    def _call(
        self, target: Target, request: Q, request_id: str, tier: str | None
    ) -> tuple[ChatAdapter, Call[Q]]:
        model = target.model
        provider = self.catalog.provider_of(model)
        if not provider.configured:
            raise ProviderNotConfigured(
                f"Model '{model.id}' needs provider '{provider.name}', which is not configured: "
                f"{provider.remedy()}."
            )
        adapter = self._adapters.get(provider.name)
        if adapter is None:
            raise AdapterUnavailable(
                f"Model '{model.id}' is served by provider '{provider.name}' of kind '{provider.kind}', "
                "which this router build cannot call yet."
            )
        # An alias may pin a tier (``gpt-flex``); otherwise the client's own service_tier travels in the body.
        return adapter, Call(
            request=request,
            model=model,
            provider=provider,
            request_id=request_id,
            service_tier=tier,
            created=int(self._clock.wall()),
        )

    async def run(
        self,
        request: Q,
        plan: Plan,
        request_id: str,
        operation: Operation[Q, T],
        *,
        estimate: int = 0,
        admission: Admission | None = None,
    ) -> tuple[T, Outcome]:
        """One whole answer from the first of ``plan``'s candidates that gives one. ``estimate`` is
        the request's estimated tokens, charged to models with their own rate limits; ``admission``
        checks each deployment against the request's budgets before it is called."""
        result, outcome, span = await self._attempt(
            request, plan, request_id, operation.call, estimate, admission
        )
        self.stats.get(outcome.model).answer(outcome.attempt_ms, operation.output_tokens(result))
        span.observe(result)
        span.end()
        return result, outcome

    async def run_stream(
        self,
        request: Q,
        plan: Plan,
        request_id: str,
        operation: StreamOperation[Q, E],
        *,
        estimate: int = 0,
        admission: Admission | None = None,
    ) -> OpenedStream[E]:
        """A stream from the first candidate that reaches real output; see the module's docstring."""

        async def until_output(
            adapter: ChatAdapter, call: Call[Q]
        ) -> tuple[list[E], AsyncGenerator[E, None] | None]:
            return await until_first_output(operation.open(adapter, call), call, operation.carries_output)

        (prefix, rest), outcome, span = await self._attempt(
            request, plan, request_id, until_output, estimate, admission
        )
        stats = self.stats.get(outcome.model)
        stats.first_token(outcome.attempt_ms)
        breaker = self.breakers.get(outcome.model.key)
        return OpenedStream(
            prefix,
            rest,
            outcome,
            tokens_of=operation.output_tokens,
            breaker=breaker,
            stats=stats,
            clock=self._clock,
            span=span,  # ended by the stream, when the upstream's answer is over
        )

    def _order(self, candidates: list[Target]) -> tuple[list[Target], bool]:
        """Candidates whose breaker admits calls, in plan order; if none does, the one closest to
        re-closing, to be tried anyway (``True``) rather than failing without an attempt."""
        admitted = [t for t in candidates if self.available(t.model)]
        if admitted:
            return admitted, False
        nearest = min(candidates, key=lambda t: self._reopens_in(t.model))
        return [nearest], True

    def _reopens_in(self, model: Model) -> float:
        return min(self.breakers.get(view.key).reopens_in() for view in model.views())

    def _not_configured(self, model: Model, run: _Run) -> ProviderNotConfigured:
        """No deployment of ``model`` has its provider configured: what each one lacks."""
        providers = [self.catalog.provider_of(view) for view in model.deployments]
        missing = [p for p in providers if p.missing]
        for provider in missing:
            run.missing_keys.update(provider.missing)
        run.attempts.append(Attempt(model=model.id, outcome="provider_not_configured"))
        needs = " or ".join(f"{p.remedy()} (provider '{p.name}')" for p in missing)
        return ProviderNotConfigured(
            f"Model '{model.id}' has no deployment whose provider is configured: {needs}."
            if missing
            else f"Model '{model.id}' has no deployment this router build can call."
        )

    def _deployments(self, target: Target, forced: bool) -> list[Target]:
        """The target's deployments in the order to try them (just the target when it has one)."""
        model = target.model
        if not model.deployments:
            return [target]
        stats = self.stats

        flex = target.service_tier == "flex"

        def usable(view: Model) -> bool:
            if flex and view.flex_price is None:
                return False  # a flex request goes only where flex is served
            return self._view_unusable(view) is None and (forced or self.breakers.available(view.key))

        views = self.quotas.order(model.deployments, usable, lambda view: stats.speed(view).ttft_ms)
        if forced and views:
            views = [min(views, key=lambda view: self.breakers.get(view.key).reopens_in())]
        return [Target(view, target.service_tier) for view in views]

    async def _attempt(
        self,
        request: Q,
        plan: Plan,
        request_id: str,
        call_model: Callable[[ChatAdapter, Call[Q]], Awaitable[T]],
        estimate: int,
        admission: Admission | None = None,
    ) -> tuple[T, Outcome, AttemptSpan]:
        """Try the plan's candidates in order until one succeeds or an error rules out the rest,
        all within the routing deadline. The successful attempt's span is returned open."""
        order, forced = self._order(plan.candidates)
        run = _Run()
        last: RouterError | None = None
        deadline = self.catalog.routing.deadline_s
        try:
            async with asyncio.timeout(deadline):
                limit = self.catalog.routing.max_models
                for candidate in order:
                    if run.models_called() >= limit:
                        break
                    ways = self._deployments(candidate, forced)
                    if not ways and candidate.model.deployments and self.unusable_reason(candidate.model):
                        last = self._not_configured(candidate.model, run)
                        continue
                    if not ways:
                        run.attempts.append(Attempt(model=candidate.model.id, outcome="breaker_open"))
                        last = BreakerOpen(
                            f"The circuit breakers of every deployment of '{candidate.model.id}' are open."
                        )
                        continue
                    served = None
                    for index, target in enumerate(ways):
                        try:
                            if self._gate is not None and index == 0:
                                await self._admit(target.model.id, estimate, run)
                            if admission is not None:  # a dearer deployment may not fit where another does
                                await _within_budget(admission, target, run)
                            # Another deployment of the same model is tried before retrying this one.
                            retry = index == len(ways) - 1
                            served = await self._try_model(
                                target, request, request_id, call_model, forced, run, estimate, retry
                            )
                            break
                        except RouterError as exc:
                            if not exc.may_fall_back:
                                raise _with_attempts(exc, run.attempts) from None
                            last = exc
                            if isinstance(exc, ModelLimited):
                                break  # the router's own limit is the model's, whichever deployment
                    if served is None:
                        continue
                    result, call, elapsed = served
                    outcome = Outcome(
                        model=target.model,
                        service_tier=call.service_tier,
                        strategy=plan.strategy,
                        attempts=run.attempts,
                        attempt_ms=elapsed * 1000.0,
                        upstream_ms=(run.spent + elapsed) * 1000.0,
                        skipped=_passed_over(plan.candidates, candidate.model.id, run),
                    )
                    return result, outcome, run.span
        except TimeoutError:
            error = UpstreamTimeout(f"No model answered within the routing deadline of {deadline:g}s.")
            raise _with_attempts(error, run.attempts) from None
        if isinstance(last, (ModelLimited, BudgetExceeded)) and all(
            a.outcome in _NOT_ALLOWED for a in run.attempts
        ):
            raise _with_attempts(last, run.attempts)
        if forced or last is None or isinstance(last, BreakerOpen):
            final: RouterError = self._all_open(
                plan.candidates, None if isinstance(last, BreakerOpen) else last
            )
        else:
            final = last
        raise _with_attempts(_with_untried(final, plan, run), run.attempts)

    async def _admit(self, model: str, estimate: int, run: _Run) -> None:
        assert self._gate is not None
        wait = await self._gate(model, estimate)
        if wait is None:
            return
        run.attempts.append(Attempt(model=model, outcome="rate_limited"))
        error = ModelLimited(
            f"The router's rate limit for the model '{model}' is reached"
            + ("; this request is larger than its tokens-per-minute limit." if wait == float("inf") else ".")
        )
        if wait != float("inf"):
            error.retry_after = wait
        else:
            error.client_should_retry = False
        raise error

    async def _try_model(
        self,
        target: Target,
        request: Q,
        request_id: str,
        call_model: Callable[[ChatAdapter, Call[Q]], Awaitable[T]],
        forced: bool,
        run: _Run,
        estimate: int = 0,
        retry: bool = True,
    ) -> tuple[T, Call[Q], float]:
        """One model, retried for transient failures with backoff (Retry-After honoured up to a cap).

        A flex request refused for capacity is capacity, not ill health: it does not count against
        the breaker and is sent again at once at the standard tier when the catalog says so.
        """
        model = target.model
        breaker = self.breakers.get(model.key)
        routing = self.catalog.routing
        tier = target.service_tier
        deployment = model.deployment
        quota = self.quotas.get(model) if deployment is not None else None

        async def once() -> tuple[T, Call[Q], float]:
            nonlocal tier
            ticket = breaker.acquire(force=forced and not run.tried(model.id))
            if ticket is None:
                run.attempts.append(Attempt(model=model.id, outcome="breaker_open", deployment=deployment))
                raise BreakerOpen(f"The circuit breaker of '{model.key}' is open.")
            started = self._clock.monotonic()
            span: AttemptSpan = NO_SPAN
            calling = None
            if quota is not None:
                quota.sent(estimate)
                calling = CALLING.set(deployment)
            try:
                adapter, call = self._call(target, request, request_id, tier)
                span = self._tracer_attempt(call, run)
                try:
                    result = await call_model(adapter, call)
                finally:
                    span.release()
                    if calling is not None:
                        CALLING.reset(calling)
            except RouterError as exc:
                if quota is not None and exc.status == 429:
                    quota.refused(exc.retry_after)
                run.spent += self._clock.monotonic() - started
                if isinstance(exc, ProviderNotConfigured):
                    run.missing_keys.update(self.catalog.provider_of(model).missing)
                flex_refused = exc.status == 429 and call_tier(request, tier) == "flex"
                if exc.counts_against_breaker and not flex_refused:
                    breaker.failure(last_error(exc, breaker), exc.retry_after, ticket)
                else:
                    breaker.release(ticket)
                outcome = "flex_capacity" if flex_refused else exc.error_type
                span.failed(exc, outcome)
                run.attempts.append(Attempt(model=model.id, outcome=outcome, deployment=deployment))
                if flex_refused and routing.flex_fallback_to_standard:
                    tier = "default"
                    raise FlexRefused(exc.message) from None
                raise
            except BaseException:
                breaker.release(ticket)
                span.abandoned()
                raise
            elapsed = self._clock.monotonic() - started
            breaker.success(ticket)
            run.attempts.append(Attempt(model=model.id, outcome="ok", deployment=deployment))
            run.span = span
            return result, call, elapsed

        try:
            return await once()  # the common case builds none of the retry machinery
        except BaseException as exc:
            first = exc
        if not retry:
            raise first
        return await self._retry(first, once, breaker, call_tier(request, target.service_tier) == "flex")

    def _tracer_attempt(self, call: Call[Q], run: _Run) -> AttemptSpan:
        """The span of the upstream call about to be made (current until released)."""
        index = run.calls
        run.calls += 1
        after = run.attempts[-1] if run.attempts else None
        return self.tracer.attempt(call.model, call.provider, call.service_tier, index, after)

    async def _retry(
        self,
        first: BaseException,
        once: Callable[[], Awaitable[R]],
        breaker: Breaker,
        was_flex: bool,
    ) -> R:
        """After a first failure: retry the same model while the failure is transient (tenacity)."""
        routing = self.catalog.routing
        policy = routing.retry

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, FlexRefused):
                return True
            if not isinstance(exc, RouterError) or isinstance(exc, BreakerOpen):
                return False
            too_long = (exc.retry_after or 0.0) > policy.retry_after_cap_s
            return exc.counts_against_breaker and exc.may_fall_back and not too_long and breaker.available()

        backoff = wait_random_exponential(multiplier=policy.initial_s, max=policy.max_s)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, FlexRefused):
                return 0.0
            retry_after = exc.retry_after if isinstance(exc, RouterError) else None
            return max(backoff(state), retry_after or 0.0)

        # A flex request may be refused for capacity once more than it may fail.
        tries = policy.attempts_per_model + int(was_flex and routing.flex_fallback_to_standard)
        if tries <= 1 or not retryable(first):
            raise first
        retry_after = first.retry_after if isinstance(first, RouterError) else None
        await self._sleep(
            0.0 if isinstance(first, FlexRefused) else max(policy.initial_s, retry_after or 0.0)
        )
        retrying = AsyncRetrying(
            stop=stop_after_attempt(tries - 1),
            wait=wait,
            retry=retry_if_exception(retryable),
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await once()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _all_open(self, candidates: list[Target], last: RouterError | None) -> NoCandidate:
        """Every candidate's breaker is open or probing: when the first may be called again, and
        what the last call to one of them said."""
        paused = [t for t in candidates if not self.available(t.model)] or candidates
        breakers = [self.breakers.get(v.key) for t in paused for v in t.model.views()]
        wait = min(b.reopens_in() for b in breakers)
        names = listed([t.model.id for t in paused])
        when = f"the first is tried again in {wait:.0f}s" if wait >= 1.0 else "the first is being probed now"
        error = NoCandidate(
            f"Every model that could serve this request is failing and paused ({names}); {when}."
            + (f" The last attempt failed: {last.message}" if last is not None else ""),
            retry_after=max(wait, 1.0),
        )
        # Failures the client cannot outwait (nothing listening at the provider's address).
        errors = [b.last_error for b in breakers]
        hopeless = bool(errors) and all(e is not None and not e.retryable for e in errors)
        if hopeless or (last is not None and not last.client_should_retry):
            error.client_should_retry = False
        return error


def _passed_over(candidates: list[Target], served: str, run: _Run) -> list[str]:
    skipped = []
    for target in candidates:
        if target.model.id == served:
            break
        if not run.tried(target.model.id):
            skipped.append(target.model.id)
    return skipped


_NOT_ALLOWED = frozenset({"rate_limited", "budget_exceeded"})  # the router's own limits said no
_NOT_CALLED = frozenset({"breaker_open", *_NOT_ALLOWED})


async def _within_budget(admission: Admission, target: Target, run: _Run) -> None:
    try:
        await admission.admit_model(target)
    except BudgetExceeded:
        model = target.model
        run.attempts.append(Attempt(model=model.id, outcome="budget_exceeded", deployment=model.deployment))
        raise


class _Run:
    """What one request's attempts have done so far."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.calls = 0  # upstream calls made
        self.span: AttemptSpan = NO_SPAN  # the successful attempt's, still open
        self.spent = 0.0  # seconds spent in failed upstream calls
        self.missing_keys: set[str] = set()  # key variables of candidates whose provider has none

    def models_called(self) -> int:
        """Models that were called (not passed over for an open breaker or a spent limit)."""
        return len({a.model for a in self.attempts if a.outcome not in _NOT_CALLED})

    def tried(self, model: str) -> bool:
        return any(a.model == model for a in self.attempts)


def call_tier(request: Routable, tier: str | None) -> str | None:
    client_tier = request.raw.get("service_tier")
    return tier or (client_tier if isinstance(client_tier, str) else None)


def _with_untried(error: RouterError, plan: Plan, run: _Run) -> RouterError:
    """The final error, saying which models were not tried for want of a provider key, and what to
    set (unless the error is that very complaint)."""
    missing = sorted(({*plan.unconfigured} | run.missing_keys) - {""})
    if missing and not isinstance(error, ProviderNotConfigured):
        error.message = (
            f"{error.message.rstrip('.')}. Models whose providers have no key were not tried: "
            f"{remedy(missing, ' or ')}."
        )
    return error


def _with_attempts(exc: RouterError, attempts: list[Attempt]) -> RouterError:
    exc.attempts = tuple(a.label for a in attempts)
    return exc


__all__ = ["Engine", "OpenedStream", "Plan", "Routable"]
