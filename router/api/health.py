"""``GET /model-health``: each model's configuration and breaker state, for operators and dashboards."""

from __future__ import annotations

import msgspec
from litestar import Response, get, post
from litestar.handlers import HTTPRouteHandler

from router import __version__
from router.api.errors import JSON
from router.api.services import Reload, Services
from router.catalog import Model
from router.errors import InvalidRequest
from router.routing.breaker import BreakerView
from router.routing.stats import LatencyView
from router.telemetry.traffic import TrafficView


class QuotaView(msgspec.Struct, kw_only=True):
    headroom: float  # the smallest share left of any known limit (1: none known to be short)
    resets_in_s: float  # until an exhausted deployment has quota again
    rpm: int | None
    tpm: int | None


class DeploymentHealth(msgspec.Struct, kw_only=True):
    id: str  # ``provider/model``: asking for it pins this deployment
    provider: str
    upstream: str
    weight: float
    configured: bool
    missing_env: str | None
    breaker: BreakerView
    latency: LatencyView
    quota: QuotaView


class ModelHealth(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    provider: str
    configured: bool
    missing_env: str | None
    # With several deployments: the one most ready to serve (breaker, then quota left).
    breaker: BreakerView
    latency: LatencyView
    deployments: list[DeploymentHealth] = []


_READINESS = {"closed": 0, "half_open": 1, "open": 2}


def _deployment(services: Services, view: Model) -> DeploymentHealth:
    engine = services.engine
    provider = services.catalog.provider_of(view)
    quota = engine.quotas.get(view)
    return DeploymentHealth(
        id=view.key,
        provider=provider.name,
        upstream=view.upstream,
        weight=view.weight,
        configured=provider.configured,
        missing_env=None if provider.configured else provider.needs(),
        breaker=engine.breakers.get(view.key).view(),
        latency=engine.stats.get(view).view(),
        quota=QuotaView(
            headroom=round(quota.headroom(), 3),
            resets_in_s=round(quota.resets_in(), 3),
            rpm=view.rpm,
            tpm=view.tpm,
        ),
    )


class HealthReport(msgspec.Struct, kw_only=True):
    models: list[ModelHealth]


_encode = msgspec.json.Encoder().encode


def health_handlers(services: Services) -> list[HTTPRouteHandler]:
    @get(["/model-health", "/v1/model-health"], sync_to_thread=False)
    def model_health() -> Response[bytes]:
        catalog = services.catalog
        engine = services.engine
        board = engine.breakers
        models = []
        for model in catalog.models.values():
            provider = catalog.provider_of(model)
            ways = [_deployment(services, view) for view in model.deployments]
            if ways:
                ready = min(
                    ways, key=lambda d: (not d.configured, _READINESS[d.breaker.state], -d.quota.headroom)
                )
                models.append(
                    ModelHealth(
                        id=model.id,
                        provider=ready.provider,
                        configured=any(d.configured for d in ways),
                        missing_env=ready.missing_env,
                        breaker=ready.breaker,
                        latency=ready.latency,
                        deployments=ways,
                    )
                )
                continue
            models.append(
                ModelHealth(
                    id=model.id,
                    provider=provider.name,
                    configured=provider.configured,
                    missing_env=None if provider.configured else provider.needs(),
                    breaker=board.get(model.id).view(),
                    latency=engine.stats.get(model).view(),
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
    ways = [v.key for m in configured for v in m.views()]
    opened = [way for way in ways if states.get(way) == "open"]
    half = [way for way in ways if states.get(way) == "half_open"]
    routable = sum(1 for m in configured if engine.available(m))
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
