"""Routing: model resolution, strategy ranking and the attempt loop with fallbacks."""

from router.routing.engine import Engine, OpenedStream, Outcome, Plan, Served

__all__ = ["Engine", "OpenedStream", "Outcome", "Plan", "Served"]
