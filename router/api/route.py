"""``POST /v1/route``: a chat body in, the routing plan out; no upstream is called."""

from __future__ import annotations

import msgspec
from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from router.api._asgi import allow_only, send_json
from router.api.decode import decode_chat
from router.api.services import Services
from router.routing.explain import explain

_encode = msgspec.json.Encoder().encode


def route_explain_handlers(services: Services) -> list[ASGIRouteHandler]:
    @asgi(["/v1/route", "/route"], copy_scope=False)
    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if not await allow_only(scope, send, "POST"):
            return
        chat = decode_chat(await services.bodies.read(scope, receive))
        await send_json(send, _encode(explain(services.engine, chat)), {})

    return [route]
