"""The collaborators the HTTP handlers use, built by ``create_app`` and passed in (never global)."""

from __future__ import annotations

from router.catalog import Catalog
from router.clock import Clock
from router.routing import Engine
from router.settings import Settings


class Services:
    """What one app instance serves with; the engine is replaced as a whole when the catalog changes."""

    __slots__ = ("clock", "engine", "settings")

    def __init__(self, settings: Settings, engine: Engine, clock: Clock) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock

    @property
    def catalog(self) -> Catalog:
        return self.engine.catalog
