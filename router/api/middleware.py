"""ASGI middleware that gives every request an id and puts it on every answer as ``x-request-id``."""

from __future__ import annotations

import os

from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_KEY = "router.request_id"


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = new_request_id()
        scope[REQUEST_ID_KEY] = request_id  # type: ignore[literal-required]
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await app(scope, receive, send_with_id)

    return middleware
