"""How a model route's answers are counted, written as a stream, and put back together for the
response cache: the parts of a route that the exchange pipeline calls besides the route itself."""

from __future__ import annotations

from typing import NamedTuple, Protocol, TypeVar

from router.errors import RouterError
from router.telemetry.record import Tokens
from router.types import Usage

Ev_contra = TypeVar("Ev_contra", contravariant=True)


class Counted(NamedTuple):
    """What an answer's usage means for the record, the limits and the bill."""

    tokens: Tokens
    total: int  # what the token limits are settled with
    usage: Usage  # Chat-shaped, for pricing
    tier: str | None  # the service tier it was served at


def chat_counted(usage: Usage, tier: str | None) -> Counted:
    """A Chat-shaped usage (``prompt_tokens`` include cached, ``completion_tokens`` reasoning)."""
    cached = (
        usage.prompt_tokens_details.get("cached_tokens")
        if isinstance(usage.prompt_tokens_details, dict)
        else 0
    )
    details = usage.completion_tokens_details
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else 0
    tokens = (usage.prompt_tokens, usage.completion_tokens, int(cached or 0), int(reasoning or 0))
    return Counted(tokens, usage.total_tokens, usage, tier)


class StreamWriter(Protocol[Ev_contra]):
    """How a route's stream is written: each event's frame, the terminator, the failure event."""

    def frame(self, event: Ev_contra) -> bytes | None:
        """The bytes of ``event`` (``None``: nothing to send for it)."""
        ...

    def end(self) -> bytes:
        """What follows the last event of a complete stream (may be empty)."""
        ...

    def failure(self, error: RouterError) -> bytes:
        """The event that ends a stream broken after its commit point."""
        ...

    def counted(self) -> Counted | None:
        """The usage the stream reported, if it did."""
        ...

    async def close(self) -> None:
        """After the stream, whatever happened (a stored Responses conversation is kept here)."""
        ...


class Assembler(Protocol[Ev_contra]):
    """A streamed answer put back together as its route's JSON answer, to be kept in the cache."""

    def feed(self, event: Ev_contra) -> None:
        """One event, as the engine produced it (before the route's writer frames it)."""
        ...

    def answer(self) -> bytes | None:
        """The whole answer's JSON body, or ``None`` when it may not be kept."""
        ...
