"""The edge answers and records what the routes behind it fail to: an unexpected exception is a 500 in
the OpenAI envelope that writes a request line (so metrics and the error-rate alert see it)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec

from router.api.edge import Edge
from router.app import create_app
from router.catalog import parse_catalog
from router.settings import Settings
from router.telemetry.logging import RequestLog
from router.telemetry.metrics import Metrics
from router.telemetry.record import RequestRecord

CATALOG = parse_catalog(
    """
providers:
  p: {kind: openai, base_url: "http://127.0.0.1:1/v1"}
models:
  m: {provider: p, context_window: 1000, max_output: 100, quality: 1,
      price: {input: 1, output: 1}, speed: {ttft_ms: 1, tokens_per_s: 1}}
""",
    {},
)


async def _broken(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("a defect")


async def _other_route(scope: Any, receive: Any, send: Any) -> None:
    # What Litestar sends when a handler raises something unexpected.
    await send({"type": "http.response.start", "status": 500, "headers": []})
    await send({"type": "http.response.body", "body": b"{}", "more_body": False})


def _call(edge: Edge, path: str) -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "http_version": "1.1",
        "headers": [(b"host", b"router"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
    }
    asyncio.run(edge(scope, receive, send))  # type: ignore[arg-type]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def _edge(lines: list[dict[str, Any]]) -> Edge:
    services = create_app(Settings(), catalog=CATALOG).services
    log = RequestLog(enabled=False, observer=lambda record: lines.append(msgspec.structs.asdict(record)))
    return Edge(_other_route, services, log, hot={"/v1/chat/completions": _broken})


def test_an_unexpected_exception_in_a_model_route_is_a_logged_500_envelope() -> None:
    lines: list[dict[str, Any]] = []
    status, body = _call(_edge(lines), "/v1/chat/completions")
    assert status == 500
    assert body["error"]["type"] == "server_error" and "a defect" not in body["error"]["message"]
    assert [(line["route"], line["status"]) for line in lines] == [("chat", 500)]


def test_a_5xx_from_any_other_route_writes_a_request_line() -> None:
    lines: list[dict[str, Any]] = []
    status, _ = _call(_edge(lines), "/v1/models")
    assert status == 500
    assert [(line["route"], line["status"]) for line in lines] == [("other", 500)]


def test_a_logged_500_is_counted_in_the_requests_metric() -> None:
    metrics = Metrics(None)
    for route in ("other", "chat"):
        metrics.record_request(
            RequestRecord(
                request_id="r",
                route=route,
                key=None,
                model_asked=None,
                stream=False,
                status=500,
                duration_ms=1.0,
                attempts=(),
            )
        )
    services = create_app(Settings(), catalog=CATALOG).services
    scrape = metrics.exposition(services.gauges).decode()
    assert "router_requests_total{" in scrape
    assert scrape.count('status="500"') >= 2
