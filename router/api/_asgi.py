"""Raw ASGI helpers for the hot routes: read a bounded body, send a JSON answer, run an SSE stream.

The chat route is served as a Litestar ASGI route: it skips the per-request signature model and
``Response`` conversion, which the benchmark showed as a tenth of the router's time per request.
Errors raised here still reach the app's exception handlers (they run before any byte is sent).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Receive, Scope, Send

from router.errors import (
    IncompleteBody,
    InvalidRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    RequestTimeout,
)
from router.settings import Settings

JSON_TYPE = b"application/json"
SSE_TYPE = "text/event-stream"  # Litestar adds the charset


async def allow_only(scope: Scope, send: Send, method: str) -> bool:
    """Whether the request uses ``method``. ``OPTIONS`` is answered here (204 with ``Allow``, as on
    every other route) and ``False`` returned; any other method is a 405 naming the one to use."""
    used: str = scope["method"]  # type: ignore[typeddict-item]
    if used == method:
        return True
    allow = f"{method}, OPTIONS"
    if used == "OPTIONS":
        headers = [(b"allow", allow.encode()), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return False
    raise MethodNotAllowed(
        f"Method {used} is not allowed for {scope['path']}: use {method}.", headers={"allow": allow}
    )


def require_json(scope: Scope) -> None:
    """Bodies must be declared JSON: OpenAI's own rule, and what keeps a web page from posting to an
    open router cross-origin without a preflight (a form or ``text/plain`` needs none)."""
    declared: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            declared = value
            break
    if declared is not None and declared.split(b";", 1)[0].strip().lower() == JSON_TYPE:
        return
    if declared is None:
        said = "you did not send a Content-Type header"
    else:
        said = f"you specified the header 'Content-Type: {declared.decode('latin-1')[:100]}'"
    raise InvalidRequest(
        f"Unsupported content type. This API method only accepts 'application/json' requests, but {said}. "
        "Please try again with 'Content-Type: application/json'.",
        code="unsupported_content_type",
    )


async def read_body(scope: Scope, receive: Receive, settings: Settings) -> bytes:
    """The whole JSON body: declared as JSON, at most ``max_body_bytes``, arrived within
    ``body_timeout_s`` (a client that stalls mid-body must not hold the request forever)."""
    require_json(scope)
    limit = settings.max_body_bytes
    declared: int | None = None
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            declared = int(value)
            if declared > limit:
                raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(settings.body_timeout_s):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    raise _incomplete(size, declared)
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit)
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    if declared is not None and size < declared:
                        raise _incomplete(size, declared)
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except TimeoutError:
        of = f" of the {declared} declared" if declared is not None else ""
        raise RequestTimeout(
            f"The request body did not arrive within {settings.body_timeout_s:g}s "
            f"({size} bytes{of} were received)."
        ) from None


def _incomplete(size: int, declared: int | None) -> IncompleteBody:
    of = f" of the {declared} bytes it declared" if declared is not None else ""
    return IncompleteBody(f"The request body was incomplete: the connection ended after {size} bytes{of}.")


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
