"""HTTP surface: the only layer that knows the outbound formats (Chat Completions JSON and SSE)."""

from __future__ import annotations

from typing import cast

from litestar.handlers import ASGIRouteHandler, BaseRouteHandler
from litestar.types import ASGIApp

from router.api.chat import chat_handlers
from router.api.completions import completion_handlers
from router.api.dashboard import dashboard_handlers
from router.api.embeddings import embedding_handlers
from router.api.health import health_handlers, metrics_handlers, service_health_handlers
from router.api.help import help_handlers
from router.api.models import model_handlers
from router.api.responses import responses_handlers
from router.api.route import route_explain_handlers
from router.api.series import series_handlers
from router.api.services import Reload, Services
from router.api.spend import spend_handlers
from router.api.spend_view import spend_view_handlers


def route_handlers(services: Services, reload_catalog: Reload) -> list[BaseRouteHandler]:
    return [
        *chat_handlers(services),
        *completion_handlers(services),
        *responses_handlers(services),
        *embedding_handlers(services),
        *model_handlers(services),
        *health_handlers(services),
        *series_handlers(services),
        *service_health_handlers(services, reload_catalog),
        *metrics_handlers(services),
        *help_handlers(services),
        *dashboard_handlers(services),
        *route_explain_handlers(services),
        *spend_handlers(services),
        *spend_view_handlers(services),
    ]


def hot_routes(handlers: list[BaseRouteHandler]) -> dict[str, ASGIApp]:
    """The raw ASGI routes by exact path, for the edge to call without Litestar's dispatch."""
    table: dict[str, ASGIApp] = {}
    for handler in handlers:
        if isinstance(handler, ASGIRouteHandler):
            for path in handler.paths:
                if "{" not in path:
                    table[path] = cast(ASGIApp, handler.fn)
    return table


__all__ = ["Services", "hot_routes", "route_handlers"]
