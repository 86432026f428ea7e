"""Tracing's seam: what the exchange pipeline and the routing engine ask of a tracer, the tracer that
does nothing (the default), and what the standard ``OTEL_*`` variables ask for
(``router.telemetry.tracing_env`` builds the tracer from them).

Tracing is on when an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), unless ``OTEL_SDK_DISABLED=true`` or
``OTEL_TRACES_EXPORTER=none``. Off, every call below goes to one constant object that records nothing
and allocates nothing, and OpenTelemetry is never imported: the SDK is an optional extra
(``router[otel]``), imported only when tracing is on.

Prompts and answers reach a span only when the operator opts in with
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (``true``, ``span_only`` or ``span_and_event``),
the variable the OpenTelemetry GenAI instrumentations read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from router.catalog import Model, Provider
from router.errors import RouterError
from router.telemetry.record import RequestRecord

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
CAPTURE_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_VALUES = frozenset({"true", "span_only", "span_and_event"})

# A request's headers, as ASGI gives them.
Headers = Iterable[tuple[bytes, bytes]]


class TracedRequest(Protocol):
    """What a tracer reads of a client's request: the model asked and the decoded JSON body."""

    @property
    def model(self) -> str: ...

    @property
    def raw(self) -> dict[str, Any]: ...


class PriorAttempt(Protocol):
    """The attempt before this one (``router.routing.outcome.Attempt``)."""

    @property
    def model(self) -> str: ...

    @property
    def outcome(self) -> str: ...


class RequestSpan(Protocol):
    """One request through a model route; current (the parent of its attempts) until ``release``."""

    def requested(self, request: TracedRequest) -> None:
        """The request is decoded: name the span after its model, note its parameters."""
        ...

    def release(self) -> None:
        """The engine's calls are over: the span stops being the current one (it is not ended)."""
        ...

    def end(self, record: RequestRecord) -> None:
        """The request is over: the record it wrote says how."""
        ...

    def abandoned(self, cause: BaseException) -> None:
        """The request ended before any answer by ``cause``, not a router error: the client went away
        (cancelled) or a defect (the edge answers 500)."""
        ...


class AttemptSpan(Protocol):
    """One call to one upstream model; current (its ``traceparent`` goes upstream) until ``release``."""

    @property
    def recording(self) -> bool:
        """Whether ``observe`` is worth calling for each event of a stream."""
        ...

    def observe(self, answer: object) -> None:
        """An answer, or one event of a stream, from this attempt (its id, model, finish, usage)."""
        ...

    def release(self) -> None:
        """The call is made (a stream: read to its commit point): no longer the current span."""
        ...

    def failed(self, error: RouterError, outcome: str) -> None:
        """The attempt failed with ``error``; ``outcome`` is the engine's word for it. Ends the span."""
        ...

    def end(self) -> None:
        """The attempt's answer is complete. Ending twice (or after ``failed``) is harmless."""
        ...

    def abandoned(self) -> None:
        """The call was cut short: cancelled (the client left, the routing deadline) or broken by
        something other than a router error. Ends the span, unless it ended already."""
        ...


class Tracer(Protocol):
    enabled: bool

    def request(self, route: str, headers: Headers) -> RequestSpan:
        """Start a request's span (a ``traceparent`` among ``headers`` is its parent) and make it current."""
        ...

    def attempt(
        self, model: Model, provider: Provider, tier: str | None, index: int, after: PriorAttempt | None
    ) -> AttemptSpan:
        """Start the span of the ``index``-th upstream call of the current request (``after``: the
        attempt before it, whose failure this one retries or falls back from) and make it current."""
        ...

    def upstream_headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """``headers`` with the current attempt's ``traceparent`` (the same mapping when there is none)."""
        ...

    def shutdown(self) -> None:
        """Flush what is not exported yet and stop (blocking: call it off the event loop)."""
        ...


class _NoSpan:
    """Request and attempt spans when tracing is off."""

    __slots__ = ()

    @property
    def recording(self) -> bool:
        return False

    def requested(self, request: TracedRequest) -> None:
        return None

    def observe(self, answer: object) -> None:
        return None

    def release(self) -> None:
        return None

    def failed(self, error: RouterError, outcome: str) -> None:
        return None

    def end(self, record: RequestRecord | None = None) -> None:
        return None

    def abandoned(self, cause: BaseException | None = None) -> None:
        return None


NO_SPAN = _NoSpan()  # stateless: the one instance every call returns when tracing is off


class NoTracer:
    """Tracing off: no spans, no headers, nothing to flush."""

    __slots__ = ()
    enabled = False

    def request(self, route: str, headers: Headers) -> RequestSpan:
        return NO_SPAN

    def attempt(
        self, model: Model, provider: Provider, tier: str | None, index: int, after: PriorAttempt | None
    ) -> AttemptSpan:
        return NO_SPAN

    def upstream_headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        return headers

    def shutdown(self) -> None:
        return None


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the standard variables ask for traces (see the module's docstring)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")}
    if exporters <= {"none", ""}:
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def captures_content(environ: Mapping[str, str]) -> bool:
    return environ.get(CAPTURE_VARIABLE, "").strip().lower() in _CAPTURE_VALUES
