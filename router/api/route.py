"""``POST /v1/route``: a chat body in, the routing plan out; no upstream is called."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler

from router.api.decode import decode_chat
from router.api.errors import JSON
from router.api.services import Services
from router.routing.explain import explain

_encode = msgspec.json.Encoder().encode


def route_explain_handlers(services: Services) -> list[HTTPRouteHandler]:
    @post(["/v1/route", "/route"], status_code=200)
    async def route(request: Request[Any, Any, Any]) -> Response[bytes]:
        chat = decode_chat(await request.body())
        return Response(content=_encode(explain(services.engine, chat)), media_type=JSON)

    return [route]
