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


class StoreHealth(msgspec.Struct, kw_only=True):
    backend: str
    scope: str
    connected: bool | None
    url: str | None
    outages: int
    last_error: str | None
    note: str


class AccessHealth(msgspec.Struct, kw_only=True):
    keys_required: bool
    keys: list[str]
    ops_key_required: bool


class Health(msgspec.Struct, kw_only=True):
    status: str  # ok, degraded (serving, with a problem to look at) or unhealthy (nothing routable)
    workers: int
    store: StoreHealth
    access: AccessHealth
    models_routable: int
    breakers_open: list[str]
    warnings: list[str]


def health_report(services: Services) -> Health:
    catalog = services.catalog
    engine = services.engine
    report = services.state.report()
    routable = [m.id for m in catalog.models.values() if engine.unusable_reason(m) is None]
    opened = [m for m in routable if not engine.breakers.available(m)]
    warnings = list(services.keys.warnings)
    if report.scope == "per_worker" or report.degraded:
        warnings.append(report.note)
    if not routable or len(opened) == len(routable):
        status = "unhealthy"
    elif report.degraded or opened:
        status = "degraded"
    else:
        status = "ok"
    keys = services.keys
    return Health(
        status=status,
        workers=services.settings.workers,
        store=StoreHealth(
            backend=report.backend,
            scope=report.scope,
            connected=report.connected,
            url=report.url,
            outages=report.outages,
            last_error=report.last_error,
            note=report.note,
        ),
        access=AccessHealth(keys_required=keys.declared, keys=keys.names, ops_key_required=keys.ops_declared),
        models_routable=len(routable),
        breakers_open=opened,
        warnings=warnings,
    )


def service_health_handlers(services: Services) -> list[HTTPRouteHandler]:
    @get("/health", sync_to_thread=False)
    def health() -> Response[bytes]:
        report = health_report(services)
        status = 503 if report.status == "unhealthy" else 200
        return Response(content=_encode(report), media_type=JSON, status_code=status)

    @get("/health/live", sync_to_thread=False)
    def live() -> Response[bytes]:
        return Response(content=b'{"status":"ok"}', media_type=JSON)

    return [health, live]


def metrics_handlers(services: Services) -> list[HTTPRouteHandler]:
    @get("/metrics", sync_to_thread=False)
    def metrics() -> Response[bytes]:
        return Response(
            content=services.metrics.exposition(),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    return [metrics]
