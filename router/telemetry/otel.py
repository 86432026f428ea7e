"""The OpenTelemetry tracer: one SERVER span per request through a model route, one CLIENT span per
upstream attempt under it, W3C ``traceparent`` in and out, spans exported over OTLP/HTTP.

Only ``router.telemetry.tracing.build_tracer`` imports this module, and only when tracing is on: the
SDK is the optional ``otel`` extra. The tracer provider is the router's own (never the process-wide
global one), so two apps in one process (tests) trace apart.

Spans follow the GenAI semantic conventions (``router.telemetry.genai``). A request span is named
``{operation} {model asked}``; an attempt span ``{operation} {upstream model}``. What is the router's
own goes under ``router.*``: the route, the strategy, the model that served and why earlier ones did
not (``router.fallback_reason``), the models passed over for an open breaker (``router.skipped``),
each attempt's index and outcome, the cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from router.catalog import Model, Provider
from router.errors import RouterError, UpstreamStatusError
from router.telemetry import genai
from router.telemetry.record import RequestRecord
from router.telemetry.tracing import AttemptSpan, Headers, PriorAttempt, RequestSpan, TracedRequest

# The request span's own object rides in the OTel context, so that its attempts find it.
_REQUEST_KEY = otel_context.create_key("router.request_span")
_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})
SCOPE = "router"


class OtelTracer:
    """Spans through an SDK tracer provider. Build with ``from_environment`` (the app) or
    ``with_exporter`` (tests: an in-memory exporter, spans exported as they end)."""

    enabled = True

    def __init__(self, provider: TracerProvider, *, capture_content: bool) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer(SCOPE)
        # W3C trace context only: a client's baggage is not forwarded to the providers.
        self._propagator = TraceContextTextMapPropagator()
        self.capture_content = capture_content
        self._servers: dict[str, genai.Attributes] = {}  # server.* of each base URL, parsed once

    @classmethod
    def from_environment(cls, *, capture_content: bool) -> OtelTracer:
        """OTLP over HTTP, batched. The SDK reads the standard variables itself: the endpoint, headers,
        timeout and compression (``OTEL_EXPORTER_OTLP_*``), the sampler (``OTEL_TRACES_SAMPLER``), the
        batch sizes (``OTEL_BSP_*``), the resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``)."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return cls(_provider(BatchSpanProcessor(OTLPSpanExporter())), capture_content=capture_content)

    @classmethod
    def with_exporter(cls, exporter: SpanExporter, *, capture_content: bool = False) -> OtelTracer:
        return cls(_provider(SimpleSpanProcessor(exporter)), capture_content=capture_content)

    def request(self, route: str, headers: Headers) -> RequestSpan:
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in headers
            if name in _TRACE_HEADERS
        }
        parent = self._propagator.extract(carrier) if carrier else None
        return _RequestSpan(self, route, parent)

    def attempt(
        self, model: Model, provider: Provider, tier: str | None, index: int, after: PriorAttempt | None
    ) -> AttemptSpan:
        return _AttemptSpan(self, model, provider, tier, index, after)

    def upstream_headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier)
        return {**headers, **carrier} if carrier else headers

    def shutdown(self) -> None:
        self._provider.shutdown()

    def server(self, base_url: str) -> genai.Attributes:
        found = self._servers.get(base_url)
        if found is None:
            found = self._servers[base_url] = genai.server_of(base_url)
        return found

    def start(self, name: str, kind: SpanKind, parent: Context | None) -> trace.Span:
        return self._tracer.start_span(name, context=parent, kind=kind)


def _provider(processor: SpanProcessor) -> TracerProvider:
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "router"}))
    # Flushed by the app's shutdown, not at interpreter exit (no process-wide hook).
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(processor)
    return provider


class _RequestSpan:
    __slots__ = ("_token", "capture", "facts", "operation", "route", "served_by", "span")

    def __init__(self, tracer: OtelTracer, route: str, parent: Context | None) -> None:
        self.route = route
        self.operation = genai.operation_of(route)
        self.span = tracer.start(self.operation, SpanKind.SERVER, parent)
        self.capture = tracer.capture_content
        self.facts: genai.Facts | None = None  # of the attempt that served
        self.served_by: Provider | None = None
        if self.span.is_recording():
            self.span.set_attributes({genai.OPERATION: self.operation, "router.route": route})
        current = otel_context.set_value(_REQUEST_KEY, self, trace.set_span_in_context(self.span, parent))
        self._token: Token[Context] | None = otel_context.attach(current)

    def requested(self, request: TracedRequest) -> None:
        span = self.span
        if not span.is_recording():
            return
        span.update_name(f"{self.operation} {request.model}")
        span.set_attribute(genai.REQUEST_MODEL, request.model)
        span.set_attributes(genai.request_attributes(request.raw))
        if self.capture:
            span.set_attributes(genai.input_content(self.route, request.raw))

    def release(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)

    def end(self, record: RequestRecord) -> None:
        span = self.span
        if span.is_recording():
            span.set_attributes(_record_attributes(record))
            if self.served_by is not None:
                span.set_attribute(genai.PROVIDER, genai.provider_name(self.served_by))
            facts = self.facts
            if facts is not None:
                answer = facts.attributes()
                for usage in genai.USAGE:  # the record's, set above, are the ones billed
                    answer.pop(usage, None)
                span.set_attributes(answer)
                if self.capture:
                    output = facts.output_messages()
                    if output is not None:
                        span.set_attribute(genai.OUTPUT_MESSAGES, output)
            if record.status >= 500:
                span.set_status(Status(StatusCode.ERROR, record.error or str(record.status)))
        span.end()

    def abandoned(self, cause: BaseException) -> None:
        span = self.span
        if span.is_recording():
            cancelled = isinstance(cause, asyncio.CancelledError)
            error = "cancelled" if cancelled else "internal_error"
            span.set_attribute(genai.ERROR_TYPE, error)
            if not cancelled:
                span.set_attribute(genai.STATUS_CODE, 500)
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()


def _record_attributes(record: RequestRecord) -> genai.Attributes:
    """The request span's attributes from its request record."""
    attributes: genai.Attributes = {
        genai.STATUS_CODE: record.status,
        "router.request_id": record.request_id,
        "router.stream": record.stream,
        "router.attempts": list(record.attempts),
        "router.attempt.count": len(record.attempts),
    }
    if record.model_asked is not None:
        attributes[genai.REQUEST_MODEL] = record.model_asked
    if record.status >= 400:
        attributes[genai.ERROR_TYPE] = record.error or str(record.status)
    optional: tuple[tuple[str, Any], ...] = (
        ("router.key", record.key),
        ("router.model", record.model),
        ("router.provider", record.provider),
        ("router.strategy", record.strategy),
        ("router.fallback_reason", record.fallback_reason),
        ("router.cost_usd", record.cost_usd),
        ("router.overhead_ms", record.overhead_ms),
        ("router.ttft_ms", record.ttft_ms),
        ("router.cache", record.cache),
        (genai.INPUT_TOKENS, record.tokens_in),
        (genai.OUTPUT_TOKENS, record.tokens_out),
        (genai.CACHE_READ_TOKENS, record.tokens_cached),
        (genai.REASONING_TOKENS, record.tokens_reasoning),
    )
    attributes.update((name, value) for name, value in optional if value is not None)
    if record.skipped:
        attributes["router.skipped"] = list(record.skipped)  # passed over: breaker open
    return attributes


class _AttemptSpan:
    __slots__ = ("_ended", "_token", "facts", "provider", "request", "span")

    def __init__(
        self,
        tracer: OtelTracer,
        model: Model,
        provider: Provider,
        tier: str | None,
        index: int,
        after: PriorAttempt | None,
    ) -> None:
        self.provider = provider
        request = otel_context.get_value(_REQUEST_KEY)
        self.request = request if isinstance(request, _RequestSpan) else None
        operation = self.request.operation if self.request is not None else "chat"
        self.span = span = tracer.start(f"{operation} {model.upstream}", SpanKind.CLIENT, None)
        self._ended = False
        # What the answer says of itself, read only for a span that records (a sampled one).
        self.facts: genai.Facts | None = None
        if span.is_recording():
            self.facts = genai.Facts(self.request.capture if self.request is not None else False)
            span.set_attributes(
                {
                    genai.OPERATION: operation,
                    genai.PROVIDER: genai.provider_name(provider),
                    genai.REQUEST_MODEL: model.upstream,
                    "router.model": model.id,
                    "router.provider": provider.name,
                    "router.attempt.index": index,
                    **tracer.server(provider.base_url),
                }
            )
            if tier is not None:
                span.set_attribute("router.service_tier", tier)
            if after is not None:
                # Why this call happens: the same model again (a retry) or the next one (a fallback).
                reason = "router.retry_reason" if after.model == model.id else "router.fallback_reason"
                span.set_attribute(reason, after.outcome)
        self._token: Token[Context] | None = otel_context.attach(trace.set_span_in_context(span))

    @property
    def recording(self) -> bool:
        return not self._ended and self.facts is not None

    def observe(self, answer: object) -> None:
        if not self._ended and self.facts is not None:
            self.facts.observe(answer)

    def release(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)

    def failed(self, error: RouterError, outcome: str) -> None:
        if self._ended:
            return
        span = self.span
        if span.is_recording():
            span.set_attributes(
                {
                    genai.ERROR_TYPE: outcome,
                    "router.attempt.outcome": outcome,
                    "router.fallback": error.may_fall_back,
                }
            )
            if isinstance(error, UpstreamStatusError):
                span.set_attribute(genai.STATUS_CODE, error.status)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        self._close()

    def end(self) -> None:
        if self._ended:
            return
        span = self.span
        if self.facts is not None:
            span.set_attributes(self.facts.attributes())
            span.set_attributes({"router.attempt.outcome": "ok", genai.STATUS_CODE: 200})
        request = self.request
        if request is not None:
            request.facts = self.facts
            request.served_by = self.provider
        self._close()

    def abandoned(self) -> None:
        if self._ended:
            return
        if self.span.is_recording():
            self.span.set_attributes({genai.ERROR_TYPE: "cancelled", "router.attempt.outcome": "cancelled"})
            self.span.set_status(Status(StatusCode.ERROR, "cancelled"))
        self._close()

    def _close(self) -> None:
        self._ended = True
        self.span.end()
