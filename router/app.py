"""The composition root: ``create_app`` builds one router from its settings and collaborators."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar

from router.api import Services, route_handlers
from router.api.errors import EXCEPTION_HANDLERS
from router.api.middleware import request_id_middleware
from router.catalog import Catalog, load_catalog
from router.clock import Clock, SystemClock
from router.providers import ChatAdapter, build_adapter, supports
from router.routing import Engine
from router.routing.breaker import BreakerBoard
from router.settings import Settings
from router.store import MemoryResponseStore
from router.telemetry.logging import RequestLog


def create_app(
    settings: Settings,
    *,
    catalog: Catalog | None = None,
    clock: Clock | None = None,
    adapters: dict[str, ChatAdapter] | None = None,
) -> Litestar:
    """Build the app. Upstream clients open in the lifespan, inside the running loop, and close there.

    ``adapters`` replaces the adapters built from the catalog (tests use it to inject fakes).
    """
    catalog = catalog or load_catalog(settings.catalog_path, settings.environ)
    clock = clock or SystemClock()
    live: dict[str, ChatAdapter] = {}
    breakers = BreakerBoard(catalog.routing.breaker, clock, on_transition=_log_transition)
    engine = Engine(catalog, live, clock, breakers)
    request_log = RequestLog(
        enabled=settings.log_level in ("debug", "info"), text=settings.log_format == "text"
    )
    responses = MemoryResponseStore(clock, settings.responses_max, settings.responses_ttl_s)
    services = Services(settings, engine, clock, request_log, responses)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if adapters is not None:
            live.update(adapters)
        else:
            for name, provider in catalog.providers.items():
                if supports(provider):
                    live[name] = build_adapter(provider)
        await request_log.start()
        try:
            yield
        finally:
            await request_log.aclose()
            for adapter in live.values():
                await adapter.aclose()
            live.clear()

    return Litestar(
        route_handlers=route_handlers(services),
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[request_id_middleware],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )


def _log_transition(model: str, old: str, new: str, reason: str) -> None:
    level = logging.WARNING if new == "open" else logging.INFO
    fields = {"event": "breaker", "model": model, "from": old, "to": new, "reason": reason}
    logging.getLogger("router.breaker").log(
        level, "breaker %s: %s -> %s", model, old, new, extra={"fields": fields}
    )


def app_from_env() -> Litestar:
    """Factory for the ASGI server's worker processes: settings come from the environment."""
    return create_app(Settings.from_env())
