"""The composition root: ``create_app`` builds one router from its settings and collaborators."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.types import ASGIApp

from router.access import KeyRing, Limiter, build_keyring
from router.access.limits import rule_of
from router.api import Services, route_handlers
from router.api.edge import Edge
from router.api.errors import EXCEPTION_HANDLERS
from router.catalog import Catalog, load_catalog
from router.clock import Clock, SystemClock
from router.providers import ChatAdapter, build_adapter, supports
from router.routing import Engine
from router.routing.breaker import BreakerBoard
from router.settings import Settings
from router.store import StateBackend, build_backend
from router.telemetry.logging import RequestLog
from router.telemetry.metrics import Metrics

_log = logging.getLogger("router.app")


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
) -> RouterApp:
    """Build the app. Upstream clients and the Redis link open in the lifespan, inside the running
    loop, and close there.

    ``adapters`` replaces the adapters built from the catalog (tests use it to inject fakes);
    ``state`` replaces the backend chosen from the settings.
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
    metrics = Metrics(settings.metrics_dir)

    def on_transition(model: str, old: str, new: str, reason: str) -> None:
        _log_transition(model, old, new, reason)
        metrics.transition(model, new)
        if sync is not None:
            sync.transition(model, old, new, reason)

    breakers = BreakerBoard(catalog.routing.breaker, clock, on_transition=on_transition)
    if sync is not None:
        sync.attach(breakers)
    keys = build_keyring(catalog, settings.environ)
    limiter = _limiter(catalog, state, metrics)
    live: dict[str, ChatAdapter] = {}
    engine = Engine(catalog, live, clock, breakers, gate=limiter.admit_model if limiter.model_rules else None)
    request_log = RequestLog(
        enabled=settings.log_level in ("debug", "info"),
        text=settings.log_format == "text",
        observer=metrics.record_request,
    )
    services = Services(settings, engine, clock, request_log, state, keys, limiter, metrics)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if adapters is not None:
            live.update(adapters)
        else:
            for name, provider in catalog.providers.items():
                if supports(provider):
                    live[name] = build_adapter(provider)
        _warn(keys)
        await state.start()
        await request_log.start()
        await metrics.start()
        try:
            yield
        finally:
            await request_log.aclose()
            await state.aclose()
            await metrics.aclose()
            for adapter in live.values():
                await adapter.aclose()
            live.clear()

    litestar = Litestar(
        route_handlers=route_handlers(services),
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
    access = catalog.access
    edge = Edge(
        litestar,
        keys,
        access.cors,
        request_log,
        metrics,
        max_headers=access.max_headers,
        max_header_bytes=access.max_header_bytes,
    )
    return RouterApp(edge, litestar, services)


def _limiter(catalog: Catalog, state: StateBackend, metrics: Metrics) -> Limiter:
    access = catalog.access
    models = {name: rule_of(spec) for name, spec in access.model_limits.items()}
    return Limiter(state.limits, rule_of(access.global_), models, on_refusal=metrics.rejected)


def _warn(keys: KeyRing) -> None:
    for warning in keys.warnings:
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
