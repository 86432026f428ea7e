"""OpenTelemetry traces of real requests: the app in this process with the SDK's in-memory exporter
(or its OTLP/HTTP exporter against a small receiver), its providers the simulated ones on a real port.

A request is a SERVER span named after its operation and the model asked, with the GenAI attributes and
the router's own; each upstream call is a CLIENT span under it, and the upstream receives that call's
``traceparent``. Prompts and answers appear only when content capture is switched on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from router.app import create_app
from router.mock import MockServer
from router.settings import Settings
from router.telemetry.otel import OtelTracer
from tests.inprocess import serving, sse_data, two_model_catalog

ROOT = Path(__file__).resolve().parents[2]
CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
PROMPT = "the secret prompt words"


@pytest.fixture()
async def mock() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


def _tracer(capture_content: bool = False) -> tuple[OtelTracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return OtelTracer.with_exporter(exporter, capture_content=capture_content), exporter


def _chat(stream: bool, **extra: Any) -> dict[str, Any]:
    return {
        "model": "first",
        "models": ["second"],
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": stream,
        "max_tokens": 40,
        "temperature": 0.5,
        **extra,
    }


def _split(spans: Sequence[ReadableSpan]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    servers = [s for s in spans if s.kind == SpanKind.SERVER]
    assert len(servers) == 1, [s.name for s in spans]
    attempts = sorted((s for s in spans if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    assert len(servers) + len(attempts) == len(spans)
    return servers[0], attempts


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _traceparent(headers: dict[str, str]) -> tuple[str, str]:
    """(trace id, parent span id) of a ``traceparent`` header, in hex."""
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1  # sampled
    return trace_id, span_id


def _no_content(spans: Sequence[ReadableSpan]) -> None:
    for span in spans:
        for name, value in _attrs(span).items():
            assert "messages" not in name and "instructions" not in name, (span.name, name)
            assert PROMPT not in str(value), (span.name, name)


async def test_a_streamed_request_that_fell_back_once_is_a_span_with_two_attempt_children(
    mock: MockServer,
) -> None:
    tracer, exporter = _tracer()
    app = create_app(Settings(), catalog=two_model_catalog(mock.openai_url), tracer=tracer)
    mock.state.faults.add("openai", "first-upstream", {"kind": "status", "status": 503})
    async with serving(app) as client:
        answer = await client.post(
            "/v1/chat/completions",
            json=_chat(True, stream_options={"include_usage": True}),
            headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-router-model"] == "second"
    assert answer.headers["x-router-fallback-reason"] == "server_error"
    events = sse_data(answer.text)
    assert events[-1] == "[DONE]"
    usage = json.loads(events[-2])["usage"]
    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in map(json.loads, events[:-1]) if c["choices"]
    )

    request, attempts = _split(exporter.get_finished_spans())
    # The request: a child of the client's trace, named and described by the GenAI conventions.
    assert request.context is not None and request.parent is not None
    assert f"{request.context.trace_id:032x}" == CLIENT_TRACE
    assert f"{request.parent.span_id:016x}" == CLIENT_SPAN
    assert request.name == "chat first"
    attrs = _attrs(request)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "first"
    assert attrs["gen_ai.response.model"] == "second-upstream"
    assert attrs["gen_ai.provider.name"] == "local"  # an OpenAI-compatible server: the catalog's name
    assert attrs["gen_ai.request.max_tokens"] == 40
    assert attrs["gen_ai.request.temperature"] == 0.5
    assert attrs["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.response.id"].startswith("chatcmpl-")
    assert attrs["http.response.status_code"] == 200
    assert attrs["router.stream"] is True
    assert attrs["router.model"] == "second"
    assert attrs["router.fallback_reason"] == "server_error"
    assert attrs["router.attempts"] == ("first:server_error", "second:ok")
    assert attrs["router.cost_usd"] > 0
    assert "error.type" not in attrs and request.status.status_code == StatusCode.UNSET

    # The attempts: one CLIENT span per upstream call, both children of the request span.
    assert [a.name for a in attempts] == ["chat first-upstream", "chat second-upstream"]
    for attempt in attempts:
        assert attempt.parent is not None and attempt.context is not None
        assert attempt.parent.span_id == request.context.span_id
        assert attempt.context.trace_id == request.context.trace_id
        assert attempt.start_time and request.start_time and attempt.start_time >= request.start_time
    failed, served = (_attrs(a) for a in attempts)
    assert failed["error.type"] == "server_error"
    assert failed["http.response.status_code"] == 503
    assert failed["router.attempt.index"] == 0 and failed["router.fallback"] is True
    assert failed["gen_ai.request.model"] == "first-upstream" and failed["router.model"] == "first"
    assert failed["server.address"] == "127.0.0.1" and failed["server.port"] == mock.port
    assert attempts[0].status.status_code == StatusCode.ERROR
    assert served["router.attempt.index"] == 1
    assert served["router.fallback_reason"] == "server_error"  # why this model was called
    assert served["router.attempt.outcome"] == "ok" and served["http.response.status_code"] == 200
    assert served["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert served["gen_ai.response.finish_reasons"] == ("stop",)
    # The served attempt lasts as long as its stream, which ends before the request does.
    assert attempts[1].end_time and request.end_time and attempts[1].end_time <= request.end_time

    # Each upstream call carried its own attempt's traceparent.
    calls = mock.state.requests("openai")
    assert [c.body["model"] for c in calls] == ["first-upstream", "second-upstream"]
    for call, attempt in zip(calls, attempts, strict=True):
        assert attempt.context is not None
        assert _traceparent(call.headers) == (CLIENT_TRACE, f"{attempt.context.span_id:016x}")
    assert text and text not in json.dumps([_attrs(s) for s in (request, *attempts)])
    _no_content([request, *attempts])


async def test_a_json_request_that_fell_back_on_a_429_is_traced_too(mock: MockServer) -> None:
    tracer, exporter = _tracer()
    app = create_app(Settings(), catalog=two_model_catalog(mock.openai_url), tracer=tracer)
    mock.state.faults.add("openai", "first-upstream", {"kind": "status", "status": 429})
    async with serving(app) as client:
        answer = await client.post("/v1/chat/completions", json=_chat(False))
    assert answer.status_code == 200, answer.text
    completion = answer.json()
    request, attempts = _split(exporter.get_finished_spans())
    attrs = _attrs(request)
    assert request.parent is None  # no traceparent from the client: a trace of its own
    assert attrs["router.stream"] is False
    # The provider's own error type for a 429 (OpenAI's is "requests"), as the header says.
    reason = answer.headers["x-router-fallback-reason"]
    assert attrs["router.fallback_reason"] == reason
    assert attrs["gen_ai.usage.input_tokens"] == completion["usage"]["prompt_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == completion["usage"]["completion_tokens"]
    assert attrs["gen_ai.response.id"] == completion["id"]
    failed, served = (_attrs(a) for a in attempts)
    assert failed["error.type"] == reason and failed["http.response.status_code"] == 429
    assert served["router.fallback_reason"] == reason
    for call, attempt in zip(mock.state.requests("openai"), attempts, strict=True):
        assert attempt.context is not None
        assert _traceparent(call.headers) == (
            f"{attempt.context.trace_id:032x}",
            f"{attempt.context.span_id:016x}",
        )
    _no_content([request, *attempts])


async def test_prompts_and_answers_are_recorded_only_when_the_operator_opts_in(mock: MockServer) -> None:
    tracer, exporter = _tracer(capture_content=True)
    app = create_app(Settings(), catalog=two_model_catalog(mock.openai_url), tracer=tracer)
    async with serving(app) as client:
        plain = await client.post("/v1/chat/completions", json=_chat(False))
        streamed = await client.post("/v1/chat/completions", json=_chat(True))
    answer = plain.json()["choices"][0]["message"]["content"]
    chunks = [json.loads(e) for e in sse_data(streamed.text)[:-1]]
    streamed_text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    requests = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(requests) == 2
    for span, text in zip(requests, (answer, streamed_text), strict=True):
        attrs = _attrs(span)
        assert json.loads(attrs["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
        ]
        assert json.loads(attrs["gen_ai.output.messages"]) == [
            {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}
        ]


async def test_a_request_refused_before_any_call_is_an_error_span_without_attempts(
    mock: MockServer,
) -> None:
    tracer, exporter = _tracer()
    app = create_app(Settings(), catalog=two_model_catalog(mock.openai_url), tracer=tracer)
    async with serving(app) as client:
        answer = await client.post("/v1/chat/completions", json={**_chat(False), "model": "nope"})
    assert answer.status_code == 404
    (request,) = exporter.get_finished_spans()
    attrs = _attrs(request)
    assert request.name == "chat nope"
    assert attrs["error.type"] == "model_not_found" and attrs["http.response.status_code"] == 404
    assert request.status.status_code == StatusCode.UNSET  # the client's error, not the router's


async def test_embeddings_and_completions_name_their_operations(mock: MockServer) -> None:
    tracer, exporter = _tracer()
    app = create_app(Settings(), catalog=two_model_catalog(mock.openai_url), tracer=tracer)
    async with serving(app) as client:
        embedded = await client.post("/v1/embeddings", json={"model": "embedder", "input": "hello"})
        completed = await client.post("/v1/completions", json={"model": "second", "prompt": "Say hi"})
    assert embedded.status_code == 200 and completed.status_code == 200, (embedded.text, completed.text)
    requests = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert [(s.name, _attrs(s)["gen_ai.operation.name"]) for s in requests] == [
        ("embeddings embedder", "embeddings"),
        ("text_completion second", "text_completion"),
    ]
    assert _attrs(requests[0])["gen_ai.usage.input_tokens"] == embedded.json()["usage"]["prompt_tokens"]


async def test_a_streamed_responses_request_is_a_chat_span_with_its_answer_when_captured(
    mock: MockServer,
) -> None:
    tracer, exporter = _tracer(capture_content=True)
    app = create_app(Settings(), catalog=two_model_catalog(mock.openai_url), tracer=tracer)
    body = {"model": "second", "input": PROMPT, "instructions": "Be brief.", "stream": True}
    async with serving(app) as client:
        answer = await client.post("/v1/responses", json=body)
    assert answer.status_code == 200, answer.text
    events = [json.loads(data) for data in sse_data(answer.text)]
    completed = next(e["response"] for e in events if e["type"] == "response.completed")
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    request, (attempt,) = _split(exporter.get_finished_spans())
    attrs = _attrs(request)
    assert request.name == "chat second" and attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.response.id"] == completed["id"] == _attrs(attempt)["gen_ai.response.id"]
    assert attrs["gen_ai.usage.output_tokens"] == completed["usage"]["output_tokens"]
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert json.loads(attrs["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
    output = json.loads(attrs["gen_ai.output.messages"])
    assert output[0]["parts"] == [{"type": "text", "content": text}]


class _Collector:
    """A minimal OTLP/HTTP trace receiver: keeps each export request it is sent."""

    def __init__(self) -> None:
        self.exports: list[ExportTraceServiceRequest] = []
        self.content_types: list[str] = []

    async def traces(self, request: web.Request) -> web.Response:
        self.content_types.append(request.content_type)
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        self.exports.append(export)
        return web.Response(body=b"", content_type="application/x-protobuf")


async def test_spans_reach_an_otlp_collector_named_by_the_standard_variables(
    mock: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = _Collector()
    receiver = web.Application()
    receiver.router.add_post("/v1/traces", collector.traces)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_SERVICE_NAME": "router-test"}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)  # the SDK reads the process environment itself
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    try:
        app = create_app(Settings(environ=environ), catalog=two_model_catalog(mock.openai_url))
        assert app.services.engine.tracer.enabled
        async with serving(app) as client:
            answer = await client.post("/v1/chat/completions", json=_chat(False))
        assert answer.status_code == 200
        # The app's shutdown flushed the batch: the spans are at the collector now.
        assert collector.content_types and set(collector.content_types) == {"application/x-protobuf"}
    finally:
        await runner.cleanup()
    names = [
        span.name
        for export in collector.exports
        for resource in export.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert sorted(names) == ["chat first", "chat first-upstream"]
    services = {
        attribute.value.string_value
        for export in collector.exports
        for resource in export.resource_spans
        for attribute in resource.resource.attributes
        if attribute.key == "service.name"
    }
    assert services == {"router-test"}


def test_tracing_off_needs_no_opentelemetry_and_sends_no_traceparent() -> None:
    """Off, the router runs with OpenTelemetry impossible to import (as without the extra). The Redis
    client would import the SDK's metrics on its own when it is installed, so it is blocked here
    rather than looked for afterwards."""
    script = """
import asyncio, sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocked())

from router.app import create_app
from router.mock import MockServer
from router.settings import Settings
from router.telemetry.tracing import NoTracer
from tests.inprocess import serving, two_model_catalog

async def main():
    async with MockServer() as mock:
        app = create_app(Settings.from_env(), catalog=two_model_catalog(mock.openai_url))
        assert isinstance(app.services.engine.tracer, NoTracer)
        async with serving(app) as client:
            for stream in (False, True):
                body = {"model": "first", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
                assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        headers = [request.headers for request in mock.state.requests("openai")]
        assert len(headers) == 2 and not any("traceparent" in h for h in headers), headers
    print(sorted(name for name in sys.modules if "opentelemetry" in name or name == "router.telemetry.otel"))

asyncio.run(main())
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_endpoint_without_the_sdk_stops_the_start_with_a_message() -> None:
    from router.telemetry.tracing_env import tracing_problem, tracing_summary

    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert tracing_problem(environ) is None  # installed here (the test extra)
    assert tracing_summary(environ) == (
        "tracing: OpenTelemetry spans over OTLP/HTTP to http://collector:4318, without prompt and answer text"
    )
    assert tracing_summary({**environ, "OTEL_SDK_DISABLED": "true"}) is None
    assert tracing_summary({**environ, "OTEL_TRACES_EXPORTER": "none"}) is None
    assert tracing_summary({}) is None
