"""The floor under the router: the same server (Granian, one worker, uvloop, HTTP/1) and the router's
own upstream client, forwarding each request's body to the simulated provider and its answer back,
with nothing else. The benchmark measures it next to the router, so the router's own share of the
latency and CPU shows apart from what its server and its upstream hop cost on this machine.

Served as ``granian --interface asgi --factory tests.bench.floor:app`` with ``FLOOR_UPSTREAM`` set to
the provider's chat completions URL.
"""

from __future__ import annotations

import os

from litestar.types import ASGIApp, Receive, Scope, Send

from router.catalog import parse_catalog
from router.providers._http import UpstreamClient

_CATALOG = """
providers:
  p: {kind: openai, base_url: "http://127.0.0.1:1/v1"}
models:
  m: {provider: p, context_window: 1000, max_output: 100, quality: 1,
      price: {input: 1, output: 1}, speed: {ttft_ms: 1, tokens_per_s: 1}}
"""
_HEADERS = {"authorization": "Bearer bench-key", "content-type": "application/json"}


def app() -> ASGIApp:
    upstream = os.environ["FLOOR_UPSTREAM"]
    provider = parse_catalog(_CATALOG, {}).providers["p"]
    clients: list[UpstreamClient] = []

    async def forward(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            for client in clients:
                await client.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if not clients:
            clients.append(UpstreamClient(provider))  # inside the running loop
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        answer = await clients[0].post(upstream, _HEADERS, body)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer.body))]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    return forward  # type: ignore[return-value]
