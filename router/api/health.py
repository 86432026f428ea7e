"""``GET /model-health``: each model's configuration and breaker state, for operators and dashboards."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from router.api.errors import JSON
from router.api.services import Services
from router.routing.breaker import BreakerView
from router.routing.stats import LatencyView


class ModelHealth(msgspec.Struct, kw_only=True):
    id: str
    provider: str
    configured: bool
    missing_env: str | None
    breaker: BreakerView
    latency: LatencyView


class HealthReport(msgspec.Struct, kw_only=True):
    models: list[ModelHealth]


_encode = msgspec.json.Encoder().encode


def health_handlers(services: Services) -> list[HTTPRouteHandler]:
    @get(["/model-health", "/v1/model-health"], sync_to_thread=False)
    def model_health() -> Response[bytes]:
        catalog = services.catalog
        board = services.engine.breakers
        models = []
        for model in catalog.models.values():
            provider = catalog.provider_of(model)
            models.append(
                ModelHealth(
                    id=model.id,
                    provider=provider.name,
                    configured=provider.configured,
                    missing_env=None if provider.configured else provider.api_key_env,
                    breaker=board.get(model.id).view(),
                    latency=services.engine.stats.get(model).view(),
                )
            )
        return Response(content=_encode(HealthReport(models=models)), media_type=JSON)

    return [model_health]
