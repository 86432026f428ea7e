"""The composition root: ``create_app`` builds one router from its settings and collaborators, and
``Reloader`` rebuilds the catalog-dependent parts when the catalog changes (SIGHUP, /admin/reload)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import msgspec
from litestar import Litestar
from litestar.types import ASGIApp

from router.access import Budgets, Limiter, build_keyring
from router.access.limits import rule_of
from router.api import Services, hot_routes, route_handlers
from router.api.edge import Edge
from router.api.errors import EXCEPTION_HANDLERS
from router.api.services import CatalogState, ReloadResult
from router.catalog import Catalog, CatalogError, load_catalog
from router.clock import Clock, SystemClock
from router.providers import ChatAdapter, IncomingHeaders, OutgoingHeaders, build_adapter, supports
from router.routing import Engine
from router.routing.breaker import BreakerBoard
from router.routing.deployments import QuotaBoard
from router.settings import Settings
from router.store import StateBackend, build_backend
from router.telemetry.logging import RequestLog
from router.telemetry.metrics import Metrics
from router.telemetry.record import RequestRecord
from router.telemetry.series import Series
from router.telemetry.tracing import Tracer
from router.telemetry.tracing_env import build_tracer
from router.telemetry.traffic import Traffic

_log = logging.getLogger("router.app")
# Adapters a reload replaced are closed this long after, so requests still using them can finish.
RETIRE_AFTER_S = 900.0


class RouterApp:
    """The ASGI app Granian serves: the edge (request ids, keys, CORS) in front of the Litestar app."""

    def __init__(self, edge: Edge, litestar: Litestar, services: Services) -> None:
        self.edge = edge
        self.litestar = litestar
        self.services = services

    async def __call__(self, scope: object, receive: object, send: object) -> None:
        await self.edge(scope, receive, send)  # type: ignore[arg-type]


def create_app(
    settings: Settings,
    *,
    catalog: Catalog | None = None,
    clock: Clock | None = None,
    adapters: dict[str, ChatAdapter] | None = None,
    state: StateBackend | None = None,
    tracer: Tracer | None = None,
) -> RouterApp:
    """Build the app. Upstream clients and the Redis link open in the lifespan, inside the running
    loop, and close there.

    ``adapters`` replaces the adapters built from the catalog (tests use it to inject fakes);
    ``state`` replaces the backend chosen from the settings; ``tracer`` the one the ``OTEL_*``
    variables choose (tests pass one that exports to memory).
    """
    catalog = catalog or load_catalog(settings.catalog_path, settings.environ)
    clock = clock or SystemClock()
    instance = f"{os.uname().nodename}:{os.getpid()}:{os.urandom(4).hex()}"
    state = state or build_backend(
        clock,
        redis_url=settings.redis_url,
        prefix=settings.redis_prefix,
        instance=instance,
        responses_max=settings.responses_max,
        responses_ttl_s=settings.responses_ttl_s,
        workers=settings.workers,
    )
    sync = state.sync
    tracer = tracer or build_tracer(settings.environ)
    # Only when tracing: each upstream request then carries its attempt's traceparent.
    outgoing = tracer.upstream_headers if tracer.enabled else None
    metrics = Metrics(settings.metrics_dir)
    traffic = Traffic(clock)
    series = Series(clock)

    def on_transition(model: str, old: str, new: str, reason: str) -> None:
        _log_transition(model, old, new, reason)
        metrics.transition(model, new)
        if sync is not None:
            sync.transition(model, old, new, reason)

    def observe(record: RequestRecord) -> None:
        metrics.record_request(record)
        traffic.record(record)
        series.record(record)

    breakers = BreakerBoard(catalog.routing.breaker, clock, on_transition=on_transition, shared=sync)
    if sync is not None:
        sync.attach(breakers)
    keys = build_keyring(catalog, settings.environ)
    limiter = _limiter(catalog, state, metrics)
    budgets = Budgets(state.spend, clock, catalog, on_refusal=metrics.budget_refused)
    live: dict[str, ChatAdapter] = {}
    gate = limiter.admit_model if limiter.model_rules else None
    quotas = QuotaBoard(clock)
    incoming = quotas.observe
    engine = Engine(catalog, live, clock, breakers, gate=gate, tracer=tracer, quotas=quotas)
    request_log = RequestLog(
        enabled=settings.log_level in ("debug", "info"),
        text=settings.log_format == "text",
        observer=observe,
    )
    loaded = CatalogState(source=settings.catalog_path, loaded_at=clock.wall())
    services = Services(
        settings,
        clock,
        request_log,
        state,
        metrics,
        traffic,
        loaded,
        current=(engine, keys, limiter, budgets),
        series=series,
    )
    metrics.models(catalog)
    reloader = Reloader(
        services, live, fixed_adapters=adapters is not None, outgoing=outgoing, incoming=incoming
    )

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if adapters is not None:
            live.update(adapters)
        else:
            live.update(build_adapters(catalog, outgoing, incoming, clock))
        _warn(keys.warnings)
        await state.start()
        await services.bodies.start()
        await request_log.start()
        await metrics.start(services.gauges)
        hangup = _on_hangup(reloader)
        try:
            yield
        finally:
            hangup()
            await request_log.aclose()
            await services.bodies.aclose()
            await state.aclose()
            await metrics.aclose(services.gauges)
            await reloader.aclose()
            for adapter in reloader.live.values():
                await adapter.aclose()
            if tracer.enabled:
                await asyncio.to_thread(tracer.shutdown)  # flushes the spans not exported yet

    handlers = route_handlers(services, reloader.reload)
    litestar = Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
    edge = Edge(litestar, services, request_log, hot=hot_routes(handlers))
    return RouterApp(edge, litestar, services)


class Reloader:
    """Replaces the catalog while serving: the new file is validated and everything that depends on
    it is built before anything is swapped; a bad file is refused and the old catalog keeps serving.
    Requests in flight finish on the engine they started with; breaker state and live latency
    statistics carry over for the models that remain."""

    def __init__(
        self,
        services: Services,
        live: dict[str, ChatAdapter],
        *,
        fixed_adapters: bool,
        outgoing: OutgoingHeaders | None = None,
        incoming: IncomingHeaders | None = None,
    ) -> None:
        self.services = services
        self.live = live
        self.fixed_adapters = fixed_adapters  # injected adapters (tests) are kept as they are
        self.outgoing = outgoing  # headers added to every upstream request (tracing)
        self.incoming = incoming  # told every upstream answer's headers (deployment quotas)
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    async def reload(self, trigger: str) -> ReloadResult:
        async with self._lock:
            services = self.services
            settings = services.settings
            old = services.catalog
            try:
                catalog = load_catalog(settings.catalog_path, settings.environ)
                keys = build_keyring(catalog, settings.environ)
                limiter = _limiter(catalog, services.state, services.metrics)
                budgets = Budgets(
                    services.spend, services.clock, catalog, on_refusal=services.metrics.budget_refused
                )
            except CatalogError as exc:
                return self._refused(trigger, str(exc))
            live, retired = self._adapters(old, catalog)
            breakers = services.engine.breakers
            breakers.update(catalog.routing.breaker, _breaker_keys(catalog))
            gate = limiter.admit_model if limiter.model_rules else None
            old_engine = services.engine
            engine = Engine(
                catalog,
                live,
                services.clock,
                breakers,
                gate=gate,
                stats=old_engine.stats,
                tracer=old_engine.tracer,
                quotas=old_engine.quotas,
            )
            # The swap: later requests read the new objects.
            services.swap(engine, keys, limiter, budgets)
            self.live = live
            services.metrics.models(catalog)
            services.metrics.reloaded(True)
            loaded = services.loaded
            loaded.loaded_at = services.clock.wall()
            loaded.reloads += 1
            loaded.last_error = None
            self._retire(retired)
            added = sorted(set(catalog.models) - set(old.models))
            removed = sorted(set(old.models) - set(catalog.models))
            result = ReloadResult(
                status="reloaded", trigger=trigger, models=len(catalog.models), added=added, removed=removed
            )
            _log.info(
                "catalog reloaded",
                extra={"fields": {"event": "catalog_reload", **msgspec.to_builtins(result)}},
            )
            _warn(keys.warnings)
            return result

    def _refused(self, trigger: str, error: str) -> ReloadResult:
        self.services.metrics.reloaded(False)
        self.services.loaded.last_error = error
        fields = {"event": "catalog_reload", "status": "refused", "trigger": trigger, "error": error}
        _log.error("catalog reload refused; the previous catalog keeps serving", extra={"fields": fields})
        return ReloadResult(
            status="refused", trigger=trigger, models=len(self.services.catalog.models), error=error
        )

    def _adapters(self, old: Catalog, new: Catalog) -> tuple[dict[str, ChatAdapter], list[ChatAdapter]]:
        """Adapters for the new catalog: a provider that did not change keeps its adapter (and its
        pooled connections); the others get new ones, and the replaced ones retire."""
        if self.fixed_adapters:
            return self.live, []
        live: dict[str, ChatAdapter] = {}
        for name, provider in new.providers.items():
            current = self.live.get(name)
            if current is not None and old.providers.get(name) == provider:
                live[name] = current
            elif supports(provider):
                live[name] = build_adapter(provider, self.outgoing, self.incoming, self.services.clock)
        kept = {id(adapter) for adapter in live.values()}
        return live, [a for a in self.live.values() if id(a) not in kept]

    def _retire(self, adapters: list[ChatAdapter]) -> None:
        if not adapters:
            return

        async def later() -> None:
            await asyncio.sleep(RETIRE_AFTER_S)
            for adapter in adapters:
                await adapter.aclose()

        task = asyncio.get_running_loop().create_task(later())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def aclose(self) -> None:
        for task in list(self._retiring):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def build_adapters(
    catalog: Catalog,
    outgoing: OutgoingHeaders | None = None,
    incoming: IncomingHeaders | None = None,
    clock: Clock | None = None,
) -> dict[str, ChatAdapter]:
    return {
        name: build_adapter(p, outgoing, incoming, clock)
        for name, p in catalog.providers.items()
        if supports(p)
    }


def _breaker_keys(catalog: Catalog) -> set[str]:
    """What breakers are kept under: each model, and each deployment of a model with several."""
    return {view.key for model in catalog.models.values() for view in model.views()}


def _on_hangup(reloader: Reloader) -> Callable[[], None]:
    """SIGHUP reloads the catalog in this process (the CLI forwards it to every worker)."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[ReloadResult]] = set()

    def hangup() -> None:
        task = loop.create_task(reloader.reload("sighup"))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, hangup)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
        return lambda: None

    def remove() -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGHUP)

    return remove


def _limiter(catalog: Catalog, state: StateBackend, metrics: Metrics) -> Limiter:
    access = catalog.access
    models = {name: rule_of(spec) for name, spec in access.model_limits.items()}
    return Limiter(state.limits, rule_of(access.global_), models, on_refusal=metrics.rejected)


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        _log.warning(warning, extra={"fields": {"event": "access"}})


def _log_transition(model: str, old: str, new: str, reason: str) -> None:
    level = logging.WARNING if new == "open" else logging.INFO
    fields = {"event": "breaker", "model": model, "from": old, "to": new, "reason": reason}
    logging.getLogger("router.breaker").log(
        level, "breaker %s: %s -> %s", model, old, new, extra={"fields": fields}
    )


def app_from_env() -> ASGIApp:
    """Factory for the ASGI server's worker processes: settings come from the environment."""
    # The edge itself: one coroutine frame less per request than calling through ``RouterApp``.
    app: ASGIApp = create_app(Settings.from_env()).edge
    return app
