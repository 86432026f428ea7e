"""Upstream HTTP: one pooled client per provider, explicit timeouts, transport errors mapped in one place.

The client API is httpx. The transport underneath is aiohttp's (through ``httpx-aiohttp``, as the
official OpenAI SDK does) because httpx's own transport loses most of its throughput under concurrency;
``transport="httpx"`` keeps the pure-httpx one for comparison in the benchmark.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Literal

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from router.catalog import Provider
from router.errors import (
    RouterError,
    StreamInterrupted,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamUnreachable,
)

TransportKind = Literal["aiohttp", "httpx"]
USER_AGENT = "router/0.1"


class UpstreamResponse:
    """A complete upstream answer: status, headers and body bytes."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: httpx.Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class UpstreamClient:
    """The pooled HTTP client of one provider. Create and close it inside the running event loop."""

    def __init__(self, provider: Provider, transport: TransportKind = "aiohttp") -> None:
        t = provider.timeouts
        self.provider = provider
        self._timeout = httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=t.connect)
        limits = httpx.Limits(
            max_connections=provider.max_connections,
            max_keepalive_connections=provider.max_connections,
            keepalive_expiry=30.0,
        )
        base: httpx.AsyncBaseTransport
        if transport == "aiohttp":
            connector_limit = provider.max_connections

            def session() -> aiohttp.ClientSession:
                return aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=connector_limit, keepalive_timeout=30.0),
                    skip_auto_headers=("User-Agent",),
                )

            base = AiohttpTransport(client=session, limits=limits)
        else:
            base = httpx.AsyncHTTPTransport(limits=limits)
        self._client = httpx.AsyncClient(transport=base, timeout=self._timeout, trust_env=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> UpstreamResponse:
        """POST and read the whole answer, within the provider's total timeout."""
        try:
            async with asyncio.timeout(self.provider.timeouts.total):
                response = await self._client.post(url, content=body, headers=headers)
                data = await response.aread()
        except Exception as exc:
            raise map_transport_error(exc, self.provider.name) from None
        return UpstreamResponse(response.status_code, response.headers, data)

    @asynccontextmanager
    async def stream(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[bytes]]]:
        """POST and yield the answer's status/headers and an iterator over its raw body chunks.

        Errors while connecting and while reading are mapped to router errors; reads after the
        headers raise ``StreamInterrupted`` rather than ``UpstreamUnreachable``.
        """
        request = self._client.build_request("POST", url, content=body, headers=headers)
        try:
            response = await self._client.send(request, stream=True)
        except Exception as exc:
            raise map_transport_error(exc, self.provider.name) from None
        try:
            yield response, self._chunks(response)
        finally:
            await response.aclose()

    async def _chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        except Exception as exc:
            raise map_transport_error(exc, self.provider.name, streaming=True) from None


def map_transport_error(exc: BaseException, provider: str, *, streaming: bool = False) -> RouterError:
    """Translate a transport exception into the most specific router error.

    httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout``, a refused
    connection included, so the aiohttp cause is inspected first.
    """
    if isinstance(exc, RouterError):
        return exc
    cause = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
    who = f"provider '{provider}'"
    if isinstance(cause, (TimeoutError, asyncio.TimeoutError, aiohttp.ServerTimeoutError)) or isinstance(
        cause, httpx.TimeoutException
    ):
        if isinstance(cause, (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout, httpx.PoolTimeout)):
            return UpstreamTimeout(f"{who} did not accept a connection in time")
        return UpstreamTimeout(f"{who} did not answer in time")
    if streaming and isinstance(
        cause, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, httpx.ReadError, httpx.RemoteProtocolError)
    ):
        return StreamInterrupted(f"{who} broke off the stream: the connection closed mid-answer")
    if isinstance(cause, (aiohttp.ClientConnectorError, httpx.ConnectError)):
        return UpstreamUnreachable(f"{who} is unreachable: connection failed ({_reason(cause)})")
    if isinstance(cause, (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError, httpx.ReadError)):
        return UpstreamUnreachable(f"{who} closed the connection without answering")
    if isinstance(cause, (aiohttp.ClientError, httpx.TransportError, OSError)):
        return UpstreamUnreachable(f"{who} could not be reached ({type(cause).__name__})")
    if isinstance(cause, (httpx.DecodingError, UnicodeDecodeError)):
        return UpstreamBadResponse(f"{who} sent a body that could not be decoded")
    raise exc


def _reason(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror.lower()
    return type(exc).__name__


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Parse ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date) into seconds."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
        if parsed is None:
            return None
        return max(parsed.timestamp() - time.time(), 0.0)
