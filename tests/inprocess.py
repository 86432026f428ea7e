"""The router app in this process: its lifespan run by hand, requests through httpx's ASGI transport,
its providers on the simulated ones (a real aiohttp server on a loopback port). For tests that must see
inside the app (its spans); the integration tests run it in a process of its own.

No OpenTelemetry import here: the test that tracing off imports none runs this module alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from router.app import RouterApp
from router.catalog import Catalog, parse_catalog

MODEL = """
  {name}:
    provider: local
    upstream: {upstream}
    context_window: 100000
    max_output: 4000
    price: {{input: 1.0, output: 2.0}}
    capabilities: [{capabilities}]
    endpoints: [{endpoints}]
    quality: {quality}
    speed: {{ttft_ms: 100, tokens_per_s: 100}}
"""


def _model(name: str, upstream: str, quality: int, *, embeds: bool = False) -> str:
    if embeds:
        return MODEL.format(
            name=name, upstream=upstream, quality=quality, capabilities="embeddings", endpoints="embeddings"
        )
    return MODEL.format(
        name=name,
        upstream=upstream,
        quality=quality,
        capabilities="streaming, tools",
        endpoints="chat, responses",
    )


def two_model_catalog(openai_url: str) -> Catalog:
    """``first`` and ``second`` (chat) and ``embedder`` on the simulated OpenAI server; each model is
    called once (no retry), so a failure of ``first`` falls back to ``second`` at once."""
    models = (
        _model("first", "first-upstream", 90)
        + _model("second", "second-upstream", 80)
        + _model("embedder", "text-embedding-3-small", 50, embeds=True)
    )
    text = f"""
providers:
  local:
    kind: openai
    base_url: {openai_url}
    timeouts: {{connect: 1, read: 5, total: 10, first_token: 5}}
models:{models}
routing:
  retry: {{attempts_per_model: 1}}
"""
    return parse_catalog(text, {})


@asynccontextmanager
async def serving(app: RouterApp) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app's lifespan, hand out a client of it, and shut it down (clients closed, spans
    flushed) on the way out."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.ensure_future(app.edge(scope, inbox.get, outbox.put))  # type: ignore[arg-type]
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        transport = httpx.ASGITransport(app=app.edge)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://router", timeout=20) as client:
            yield client
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        stopped = await outbox.get()
        await task
        assert stopped["type"] == "lifespan.shutdown.complete", stopped


def sse_data(body: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order."""
    return [line[len("data: ") :] for line in body.splitlines() if line.startswith("data: ")]
