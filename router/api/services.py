"""The collaborators the HTTP handlers use, built by ``create_app`` and passed in (never global)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from router.access import Budgets, KeyRing, Limiter
from router.api._asgi import BodyReader
from router.api.cache import ResponseCache
from router.api.policy import EdgePolicy
from router.catalog import Catalog
from router.clock import Clock
from router.routing import Engine
from router.settings import Settings
from router.store import ResponseStore, SpendStore, StateBackend
from router.telemetry.logging import RequestLog
from router.telemetry.metrics import Metrics
from router.telemetry.series import Series
from router.telemetry.traffic import InFlight, Traffic


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


Reload = Callable[[str], Awaitable[ReloadResult]]


class Services:
    """What one app instance serves with. The engine, keys, limiter, budgets and edge policy are
    replaced together when the catalog is reloaded (``swap``); a request reads them once and keeps
    what it read. The spend ledger is the state backend's: it outlives every reload."""

    __slots__ = (
        "bodies",
        "budgets",
        "cache",
        "clock",
        "engine",
        "gauges",
        "in_flight",
        "keys",
        "limiter",
        "loaded",
        "metrics",
        "policy",
        "request_log",
        "responses",
        "series",
        "settings",
        "spend",
        "state",
        "traffic",
    )

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        request_log: RequestLog,
        state: StateBackend,
        metrics: Metrics,
        traffic: Traffic,
        loaded: CatalogState,
        current: tuple[Engine, KeyRing, Limiter, Budgets],
        *,
        series: Series,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.request_log = request_log
        self.state = state
        self.responses: ResponseStore = state.responses
        self.spend: SpendStore = state.spend
        self.metrics = metrics
        self.traffic = traffic
        self.series = series  # each model's last hour, for the dashboard's charts
        self.loaded = loaded
        self.in_flight = InFlight()
        self.bodies = BodyReader(clock, settings.max_body_bytes, settings.body_timeout_s)
        self.gauges = Gauges(self)
        self.swap(*current)

    def swap(self, engine: Engine, keys: KeyRing, limiter: Limiter, budgets: Budgets | None = None) -> None:
        """Serve later requests with what a (re)loaded catalog built; each assignment is atomic. The
        response cache takes the new catalog's settings and keeps the answers it holds; without
        ``budgets`` the budgets in force stay (the spend ledger always does)."""
        self.policy = EdgePolicy(keys, engine.catalog.access)
        self.cache: ResponseCache | None = ResponseCache.configured(
            engine.catalog.cache, self.settings, self.state.cache, self.clock
        )
        self.engine = engine
        self.keys = keys
        self.limiter = limiter
        if budgets is not None:
            self.budgets = budgets

    @property
    def catalog(self) -> Catalog:
        return self.engine.catalog


class Gauges:
    """What the metrics sample at each flush (``router.telemetry.metrics.Sources``), from the
    services in force."""

    __slots__ = ("_services",)

    def __init__(self, services: Services) -> None:
        self._services = services

    def catalog(self) -> Catalog:
        return self._services.catalog

    def in_flight(self) -> int:
        return self._services.in_flight.count

    def routable(self) -> int:
        return self._services.engine.routable()

    def tick(self) -> None:
        self._services.traffic.tick()
