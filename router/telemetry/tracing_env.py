"""The tracer the environment asks for, built once by ``create_app``: ``NoTracer`` unless an OTLP
endpoint is set (see ``router.telemetry.tracing``), else OpenTelemetry's, imported only then."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping

from router.telemetry.tracing import ENDPOINT_VARIABLES, NoTracer, Tracer, captures_content, tracing_wanted

_MISSING = (
    "an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT) but OpenTelemetry is not installed: install "
    "the router with its 'otel' extra (pip install 'router[otel]'), or unset the variable"
)


class TracingUnavailable(RuntimeError):
    """Tracing is asked for but the OpenTelemetry SDK is not installed."""


def tracing_problem(environ: Mapping[str, str]) -> str | None:
    """Why the tracing the environment asks for cannot start (checked before the workers start)."""
    if tracing_wanted(environ) and importlib.util.find_spec("opentelemetry.sdk") is None:
        return _MISSING
    return None


def tracing_summary(environ: Mapping[str, str]) -> str | None:
    """One line for the start-up banner when tracing is on."""
    if not tracing_wanted(environ):
        return None
    endpoint = next(environ[name] for name in ENDPOINT_VARIABLES if environ.get(name, "").strip())
    content = "with" if captures_content(environ) else "without"
    return f"tracing: OpenTelemetry spans over OTLP/HTTP to {endpoint}, {content} prompt and answer text"


def build_tracer(environ: Mapping[str, str]) -> Tracer:
    """The tracer the environment asks for: ``NoTracer`` unless an OTLP endpoint is set. The SDK
    reads the rest of the standard variables itself (sampler, service name, headers, timeout)."""
    if not tracing_wanted(environ):
        return NoTracer()
    try:
        from router.telemetry.otel import OtelTracer  # the optional extra: only when on
    except ImportError as exc:
        raise TracingUnavailable(_MISSING) from exc
    return OtelTracer.from_environment(capture_content=captures_content(environ))
