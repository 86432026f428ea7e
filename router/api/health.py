"""``GET /model-health``: each model's configuration and breaker state, for operators and dashboards."""

from __future__ import annotations

import msgspec
from litestar import Response, get, post
from litestar.handlers import HTTPRouteHandler

from router import __version__
from router.api.errors import JSON
from router.api.services import Reload, Services
from router.errors import InvalidRequest
from router.routing.breaker import BreakerView
from router.routing.stats import LatencyView
from router.telemetry.traffic import TrafficView


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
                    missing_env=None if provider.configured else provider.needs(),
                    breaker=board.get(model.id).view(),
                    latency=services.engine.stats.get(model).view(),
                )
            )
        return Response(content=_encode(HealthReport(models=models)), media_type=JSON)

    return [model_health]


class Component(msgspec.Struct, kw_only=True):
    status: str  # ok, degraded or unhealthy


class CatalogHealth(Component, kw_only=True):
    source: str
    loaded_at: float
    reloads: int
    last_reload_error: str | None
    providers: int
    models: int
    aliases: int


class StoreHealth(Component, kw_only=True):
    backend: str
    scope: str
    connected: bool | None
    url: str | None
    outages: int
    last_error: str | None
    note: str


class ProvidersHealth(Component, kw_only=True):
    configured: list[str]
    missing: dict[str, str]  # provider -> the variable that would configure it


class ModelsHealth(Component, kw_only=True):
    routable: int  # provider configured and breaker admitting calls
    total: int


class BreakersHealth(Component, kw_only=True):
    open: list[str]
    half_open: list[str]


class Components(msgspec.Struct, kw_only=True):
    catalog: CatalogHealth
    store: StoreHealth
    providers: ProvidersHealth
    models: ModelsHealth
    breakers: BreakersHealth


class AccessHealth(msgspec.Struct, kw_only=True):
    keys_required: bool
    keys: list[str]
    ops_key_required: bool


class Health(msgspec.Struct, kw_only=True):
    status: str  # ok, degraded (serving, with something to look at) or unhealthy (nothing routable)
    version: str
    uptime_s: float
    workers: int
    components: Components
    access: AccessHealth
    traffic: TrafficView
    warnings: list[str]


def health_report(services: Services, started: float) -> Health:
    catalog = services.catalog
    engine = services.engine
    report = services.state.report()
    configured = [m for m in catalog.models.values() if engine.unusable_reason(m) is None]
    states = engine.breakers.states()
    opened = [m.id for m in configured if states.get(m.id) == "open"]
    half = [m.id for m in configured if states.get(m.id) == "half_open"]
    routable = sum(1 for m in configured if engine.breakers.available(m.id))
    warnings = list(services.keys.warnings)
    if report.scope == "per_worker" or report.degraded:
        warnings.append(report.note)
    loaded = services.loaded
    if loaded.last_error:
        warnings.append(f"the last catalog reload was refused: {loaded.last_error}")
    providers = catalog.providers.values()
    missing = {p.name: p.needs() for p in providers if not p.configured}
    components = Components(
        catalog=CatalogHealth(
            status="degraded" if loaded.last_error else "ok",
            source=loaded.source,
            loaded_at=loaded.loaded_at,
            reloads=loaded.reloads,
            last_reload_error=loaded.last_error,
            providers=len(catalog.providers),
            models=len(catalog.models),
            aliases=len(catalog.aliases),
        ),
        store=StoreHealth(
            status="degraded" if report.degraded else "ok",
            backend=report.backend,
            scope=report.scope,
            connected=report.connected,
            url=report.url,
            outages=report.outages,
            last_error=report.last_error,
            note=report.note,
        ),
        providers=ProvidersHealth(
            status="ok" if len(missing) < len(catalog.providers) else "unhealthy",
            configured=[p.name for p in providers if p.configured],
            missing=missing,
        ),
        models=ModelsHealth(
            status="ok" if routable else "unhealthy", routable=routable, total=len(catalog.models)
        ),
        breakers=BreakersHealth(status="degraded" if opened else "ok", open=opened, half_open=half),
    )
    parts = (
        components.catalog,
        components.store,
        components.providers,
        components.models,
        components.breakers,
    )
    if components.models.status == "unhealthy":
        status = "unhealthy"
    elif any(part.status != "ok" for part in parts):
        status = "degraded"
    else:
        status = "ok"
    keys = services.keys
    return Health(
        status=status,
        version=__version__,
        uptime_s=round(services.clock.monotonic() - started, 3),
        workers=services.settings.workers,
        components=components,
        access=AccessHealth(keys_required=keys.declared, keys=keys.names, ops_key_required=keys.ops_declared),
        traffic=services.traffic.view(services.in_flight.count),
        warnings=warnings,
    )


def service_health_handlers(services: Services, reload_catalog: Reload) -> list[HTTPRouteHandler]:
    started = services.clock.monotonic()

    @get("/health", sync_to_thread=False)
    def health() -> Response[bytes]:
        """200 while anything can be routed (``ok`` or ``degraded``), 503 when nothing can."""
        report = health_report(services, started)
        status = 503 if report.status == "unhealthy" else 200
        return Response(content=_encode(report), media_type=JSON, status_code=status)

    @get("/health/live", sync_to_thread=False)
    def live() -> Response[bytes]:
        return Response(content=b'{"status":"ok"}', media_type=JSON)

    @post("/admin/reload", status_code=200)
    async def reload() -> Response[bytes]:
        """Reload the catalog file; a bad one is refused (400) and the one in force keeps serving."""
        result = await reload_catalog("admin")
        if result.status != "reloaded":
            raise InvalidRequest(
                f"The catalog was not reloaded: {result.error}", code="catalog_invalid", param=None
            )
        return Response(content=_encode(result), media_type=JSON)

    return [health, live, reload]


def metrics_handlers(services: Services) -> list[HTTPRouteHandler]:
    @get("/metrics", sync_to_thread=False)
    def metrics() -> Response[bytes]:
        return Response(
            content=services.metrics.exposition(services.gauges),
            media_type="text/plain; version=0.0.4",  # Litestar adds the charset to text types
        )

    return [metrics]
