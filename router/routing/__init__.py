"""Routing: model resolution, strategy ranking and the attempt loop with fallbacks."""

from router.routing.engine import Engine, OpenedStream, Plan, Routable, chunk_tokens
from router.routing.outcome import Outcome, Served

__all__ = ["Engine", "OpenedStream", "Outcome", "Plan", "Routable", "Served", "chunk_tokens"]
