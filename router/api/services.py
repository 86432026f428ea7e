"""The collaborators the HTTP handlers use, built by ``create_app`` and passed in (never global)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from router.access import KeyRing, Limiter
from router.api._asgi import BodyReader
from router.catalog import Catalog
from router.clock import Clock
from router.routing import Engine
from router.settings import Settings
from router.store import ResponseStore, StateBackend
from router.telemetry.logging import RequestLog
from router.telemetry.metrics import Metrics
from router.telemetry.traffic import Traffic


class CatalogState(msgspec.Struct, kw_only=True):
    """Where the catalog in force came from, and how its reloads went."""

    source: str
    loaded_at: float
    reloads: int = 0
    last_error: str | None = None  # the last refused reload's reason, until one succeeds


class ReloadResult(msgspec.Struct, frozen=True, kw_only=True):
    status: str  # "reloaded" or "refused"
    trigger: str  # "sighup" or "admin"
    models: int
    added: list[str] = []
    removed: list[str] = []
    error: str | None = None


async def _no_reload(trigger: str) -> ReloadResult:
    raise NotImplementedError("this app was built without a reloader")


class Services:
    """What one app instance serves with. The engine, keys and limiter are replaced as a whole when
    the catalog is reloaded; a request reads them once and keeps what it read."""

    __slots__ = (
        "bodies",
        "clock",
        "engine",
        "keys",
        "limiter",
        "loaded",
        "metrics",
        "reload",
        "request_log",
        "responses",
        "settings",
        "state",
        "traffic",
    )

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        clock: Clock,
        request_log: RequestLog,
        state: StateBackend,
        keys: KeyRing,
        limiter: Limiter,
        metrics: Metrics,
        traffic: Traffic,
        loaded: CatalogState,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.request_log = request_log
        self.state = state
        self.responses: ResponseStore = state.responses
        self.keys = keys
        self.limiter = limiter
        self.metrics = metrics
        self.traffic = traffic
        self.loaded = loaded
        self.reload: Callable[[str], Awaitable[ReloadResult]] = _no_reload
        self.bodies = BodyReader(clock, settings.max_body_bytes, settings.body_timeout_s)

    @property
    def catalog(self) -> Catalog:
        return self.engine.catalog
