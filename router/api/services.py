"""The collaborators the HTTP handlers use, built by ``create_app`` and passed in (never global)."""

from __future__ import annotations

from router.access import KeyRing, Limiter
from router.catalog import Catalog
from router.clock import Clock
from router.routing import Engine
from router.settings import Settings
from router.store import ResponseStore, StateBackend
from router.telemetry.logging import RequestLog
from router.telemetry.metrics import Metrics


class Services:
    """What one app instance serves with; the engine is replaced as a whole when the catalog changes."""

    __slots__ = (
        "clock",
        "engine",
        "keys",
        "limiter",
        "metrics",
        "request_log",
        "responses",
        "settings",
        "state",
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
    ) -> None:
        self.metrics = metrics
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.request_log = request_log
        self.state = state
        self.responses: ResponseStore = state.responses
        self.keys = keys
        self.limiter = limiter

    @property
    def catalog(self) -> Catalog:
        return self.engine.catalog
