"""ASGI middleware that gives every request an id and puts it on every answer as ``x-request-id``."""

from __future__ import annotations

import os
from typing import Any, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_KEY = "router.request_id"


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


def request_id_of(scope: Scope) -> str:
    request_id: str = cast(dict[str, Any], scope)[REQUEST_ID_KEY]
    return request_id


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = new_request_id()
        cast(dict[str, Any], scope)[REQUEST_ID_KEY] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await app(scope, receive, send_with_id)

    return middleware
