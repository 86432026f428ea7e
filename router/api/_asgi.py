"""Raw ASGI helpers for the hot routes: read a bounded body, send a JSON answer, run an SSE stream.

The chat route is served as a Litestar ASGI route: it skips the per-request signature model and
``Response`` conversion, which the benchmark showed as a tenth of the router's time per request.
Errors raised here still reach the app's exception handlers (they run before any byte is sent).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Receive, Scope, Send

from router.errors import MethodNotAllowed, PayloadTooLarge

JSON_TYPE = b"application/json"
SSE_TYPE = "text/event-stream; charset=utf-8"


def require_method(scope: Scope, method: str) -> None:
    if scope["method"] != method:  # type: ignore[typeddict-item]
        raise MethodNotAllowed(f"Method not allowed for this URL: use {method}.")


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than this router accepts ({limit} bytes).")


async def send_json(send: Send, body: bytes, headers: Mapping[str, str], status: int = 200) -> None:
    raw = [(b"content-type", JSON_TYPE), (b"content-length", str(len(body)).encode())]
    raw.extend((k.encode(), v.encode()) for k, v in headers.items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_stream(
    scope: Scope, receive: Receive, send: Send, events: AsyncIterator[bytes], headers: Mapping[str, str]
) -> None:
    """Stream ``events``; a client that goes away cancels the iterator, which closes the upstream."""
    response = ASGIStreamingResponse(iterator=events, media_type=SSE_TYPE, headers=dict(headers))
    await response(scope, receive, send)
