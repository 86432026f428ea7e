"""Raw ASGI helpers for the hot routes: read a bounded body, send a JSON answer, run an SSE stream.

The chat route is served as a Litestar ASGI route: it skips the per-request signature model and
``Response`` conversion, which the benchmark showed as a tenth of the router's time per request.
Errors raised here still reach the app's exception handlers (they run before any byte is sent).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from litestar.types import Receive, Scope, Send

from router.clock import Clock
from router.errors import (
    IncompleteBody,
    InvalidRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    RequestTimeout,
)

JSON_TYPE = b"application/json"


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


def require_json(declared: bytes | None) -> None:
    """Bodies must be declared JSON (``declared`` is the Content-Type): OpenAI's own rule, and what
    keeps a web page from posting to an open router cross-origin without a preflight (a form or
    ``text/plain`` needs none)."""
    if declared is not None and (
        declared == JSON_TYPE or declared.split(b";", 1)[0].strip().lower() == JSON_TYPE
    ):
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


class BodyReader:
    """Reads whole JSON request bodies: declared as JSON, at most ``max_bytes``, arrived within
    ``timeout_s`` (a client that stalls mid-body must not hold its request, or its slot, forever).

    The deadline is kept coarsely: a read in progress is an entry in a dict, and one task started in
    the app's lifespan cancels the late ones four times a second. A timer per request (``asyncio.timeout``)
    cost more than the rest of reading a body.
    """

    TICK_S = 0.25

    def __init__(self, clock: Clock, max_bytes: int, timeout_s: float) -> None:
        self._clock = clock
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._reading: dict[asyncio.Task[Any], float] = {}  # task → when its body must be in
        self._late: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.TICK_S)
            now = self._clock.monotonic()
            late = [task for task, deadline in self._reading.items() if deadline <= now]
            for task in late:
                del self._reading[task]
                self._late.add(task)
                task.cancel()

    async def read(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_bytes
        content_type: bytes | None = None
        declared: int | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length" and value.isdigit():
                declared = int(value)
        require_json(content_type)
        if declared is not None and declared > limit:
            raise _too_large(limit)
        task = asyncio.current_task()
        if task is not None:
            self._reading[task] = self._clock.monotonic() + self.timeout_s
        chunks: list[bytes] = []
        size = 0
        try:
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
        except asyncio.CancelledError:
            if task is None or task not in self._late:
                raise
            self._late.discard(task)
            task.uncancel()
            of = f" of the {declared} declared" if declared is not None else ""
            raise RequestTimeout(
                f"The request body did not arrive within {self.timeout_s:g}s "
                f"({size} bytes{of} were received)."
            ) from None
        finally:
            if task is not None:
                self._reading.pop(task, None)


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
