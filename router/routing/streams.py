"""Streams past the routing decision: reading up to the commit point (the first real output), and
the committed stream that keeps the model's statistics and breaker informed as it plays out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from router.clock import Clock
from router.errors import RouterError, UpstreamTimeout
from router.providers import Call
from router.routing.breaker import Breaker, LastError
from router.routing.outcome import Outcome
from router.routing.stats import ModelStats
from router.telemetry.tracing import NO_SPAN, AttemptSpan

E = TypeVar("E")


class OpenedStream(Generic[E]):
    """A committed stream: the events read before the commit point, then the rest of the upstream.

    ``tokens_of`` tells which event carries the answer's final usage (its output token count), for
    the live generation-speed statistics. ``span`` is the serving attempt's, ended with the stream.
    """

    __slots__ = ("breaker", "clock", "outcome", "prefix", "rest", "span", "stats", "tokens_of")

    def __init__(
        self,
        prefix: list[E],
        rest: AsyncGenerator[E, None] | None,
        outcome: Outcome,
        *,
        tokens_of: Callable[[E], int | None],
        breaker: Breaker | None = None,
        stats: ModelStats | None = None,
        clock: Clock | None = None,
        span: AttemptSpan = NO_SPAN,
    ) -> None:
        self.prefix = prefix
        self.rest = rest
        self.outcome = outcome
        self.tokens_of = tokens_of
        self.breaker = breaker
        self.stats = stats
        self.clock = clock
        self.span = span

    async def chunks(self) -> AsyncIterator[E]:
        span = self.span
        observe = span.observe if span.recording else None  # tracing on: the span sees each event
        for chunk in self.prefix:
            if observe is not None:
                observe(chunk)
            yield chunk
        if self.rest is None:
            span.end()
        else:
            committed = self.clock.monotonic() if self.clock else 0.0
            tokens: int | None = None
            tokens_of = self.tokens_of
            try:
                async for chunk in self.rest:
                    counted = tokens_of(chunk)
                    if counted is not None:
                        tokens = counted
                    if observe is not None:
                        observe(chunk)
                    yield chunk
                if tokens is not None and self.stats is not None and self.clock is not None:
                    self.stats.generation(tokens, self.clock.monotonic() - committed)
                span.end()
            except RouterError as exc:
                # A stream cut after the commit point still says the model is unwell.
                if self.breaker is not None and exc.counts_against_breaker:
                    self.breaker.failure(last_error(exc, self.breaker), exc.retry_after)
                span.failed(exc, exc.error_type)
                raise

    async def aclose(self) -> None:
        if self.rest is not None:
            await self.rest.aclose()
        self.span.abandoned()  # the client left before the end (after it: already ended)


async def until_first_output(
    stream: AsyncGenerator[E, None], call: Call[Any], carries_output: Callable[[E], bool]
) -> tuple[list[E], AsyncGenerator[E, None] | None]:
    """Read the upstream stream up to its first event of real output, within the first-token deadline."""
    prefix: list[E] = []
    limit = call.provider.timeouts.first_token
    try:
        async with asyncio.timeout(limit):
            async for chunk in stream:
                prefix.append(chunk)
                if carries_output(chunk):
                    return prefix, stream
    except TimeoutError:
        await stream.aclose()
        raise UpstreamTimeout(
            f"provider '{call.provider.name}' sent no output within {limit:g}s (first-token deadline)"
        ) from None
    except BaseException:
        await stream.aclose()
        raise
    return prefix, None  # the upstream completed without output (an empty answer)


def last_error(exc: RouterError, breaker: Breaker) -> LastError:
    return LastError(
        status=exc.status,
        type=exc.error_type,
        message=exc.message[:300],
        at=breaker.wall(),
        retryable=exc.client_should_retry,
    )
