"""Routing: model resolution, strategy ranking and the attempt loop with fallbacks."""

from router.routing.engine import Engine, OpenedStream, Outcome, Plan, Routable, Served, chunk_tokens

__all__ = ["Engine", "OpenedStream", "Outcome", "Plan", "Routable", "Served", "chunk_tokens"]
