"""Routing: model resolution, strategy ranking and the attempt loop with fallbacks."""

from router.routing.engine import Engine, OpenedStream, Plan, Routable
from router.routing.operation import ChatAnswer, ChatStream, Operation, StreamOperation
from router.routing.outcome import Outcome

__all__ = [
    "ChatAnswer",
    "ChatStream",
    "Engine",
    "OpenedStream",
    "Operation",
    "Outcome",
    "Plan",
    "Routable",
    "StreamOperation",
]
