"""Reading an upstream stream that breaks: every byte received before the break is handed out, then
the break is raised. aiohttp's own readers raise a broken connection before returning what they had
buffered, which would drop an answer's last events (its finish signal among them)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from router.catalog import parse_catalog
from router.errors import StreamInterrupted
from router.providers._http import UpstreamClient, _unread

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


def test_aiohttp_raises_a_break_before_its_buffer_and_unread_takes_the_buffer() -> None:
    async def scenario() -> None:
        reader = aiohttp.StreamReader(
            aiohttp.base_protocol.BaseProtocol(asyncio.get_running_loop()),
            2**16,
            loop=asyncio.get_running_loop(),
        )
        reader.feed_data(b"data: last\n\n")
        reader.set_exception(aiohttp.ClientPayloadError("cut"))
        with pytest.raises(aiohttp.ClientPayloadError):
            await reader.readany()  # what the router must not rely on alone
        assert _unread(reader) == b"data: last\n\n"
        assert _unread(reader) == b""

    asyncio.run(scenario())


def test_a_stream_closed_mid_body_yields_everything_then_raises() -> None:
    events = [f"data: {i}\n\n".encode() for i in range(50)]

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            await response.write(event)
        assert request.transport is not None
        request.transport.close()  # no final chunk: the body ends without its terminator
        return response

    async def scenario() -> bytes:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        client = UpstreamClient(CATALOG.providers["p"])
        received = b""
        try:
            async with client.stream(f"http://127.0.0.1:{port}/v1/chat/completions", {}, b"{}") as answer:
                await asyncio.sleep(0.2)  # everything arrives and is buffered before the router reads
                with pytest.raises(StreamInterrupted):
                    async for chunk in answer.chunks():
                        received += chunk
        finally:
            await client.aclose()
            await runner.cleanup()
        return received

    assert asyncio.run(scenario()) == b"".join(events)
