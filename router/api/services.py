"""The collaborators the HTTP handlers use, built by ``create_app`` and passed in (never global)."""

from __future__ import annotations

from router.catalog import Catalog
from router.clock import Clock
from router.routing import Engine
from router.settings import Settings
from router.store import ResponseStore
from router.telemetry.logging import RequestLog


class Services:
    """What one app instance serves with; the engine is replaced as a whole when the catalog changes."""

    __slots__ = ("clock", "engine", "request_log", "responses", "settings")

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        clock: Clock,
        request_log: RequestLog,
        responses: ResponseStore,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.request_log = request_log
        self.responses = responses

    @property
    def catalog(self) -> Catalog:
        return self.engine.catalog
