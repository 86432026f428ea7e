"""HTTP surface: the only layer that knows the outbound formats (Chat Completions JSON and SSE)."""

from __future__ import annotations

from litestar.handlers import BaseRouteHandler

from router.api.chat import chat_handlers
from router.api.completions import completion_handlers
from router.api.dashboard import dashboard_handlers
from router.api.embeddings import embedding_handlers
from router.api.health import health_handlers, metrics_handlers, service_health_handlers
from router.api.help import help_handlers
from router.api.models import model_handlers
from router.api.responses import responses_handlers
from router.api.route import route_explain_handlers
from router.api.services import Services


def route_handlers(services: Services) -> list[BaseRouteHandler]:
    return [
        *chat_handlers(services),
        *completion_handlers(services),
        *responses_handlers(services),
        *embedding_handlers(services),
        *model_handlers(services),
        *health_handlers(services),
        *service_health_handlers(services),
        *metrics_handlers(services),
        *help_handlers(services),
        *dashboard_handlers(services),
        *route_explain_handlers(services),
    ]


__all__ = ["Services", "route_handlers"]
