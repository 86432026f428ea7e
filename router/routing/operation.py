"""What the engine calls on each candidate: one operation per API, for a whole answer or a stream.

The engine owns the attempt loop (breakers, retries, fallbacks, the commit point); an operation knows
only how to get its API's answer from one adapter for one call, and where the answer's output tokens
are (for the live speed statistics).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol, TypeVar

from router.providers import Call, ChatAdapter
from router.types import ChatChunk, ChatCompletion, ChatRequest, Usage

Q = TypeVar("Q")
T = TypeVar("T")
E = TypeVar("E")


class Operation(Protocol[Q, T]):
    """A whole answer from one call."""

    async def call(self, adapter: ChatAdapter, call: Call[Q]) -> T: ...

    def output_tokens(self, answer: T) -> int: ...


class StreamOperation(Protocol[Q, E]):
    """A stream of events from one call; its commit point is its first event that carries output."""

    def open(self, adapter: ChatAdapter, call: Call[Q]) -> AsyncGenerator[E, None]: ...

    def carries_output(self, event: E) -> bool: ...

    def output_tokens(self, event: E) -> int | None:
        """The answer's output tokens, on the event that reports them (else ``None``)."""
        ...


class ChatAnswer:
    """Chat Completions from a chat adapter, as it is."""

    async def call(self, adapter: ChatAdapter, call: Call[ChatRequest]) -> ChatCompletion:
        return await adapter.complete(call)

    def output_tokens(self, answer: ChatCompletion) -> int:
        return answer.usage.completion_tokens if isinstance(answer.usage, Usage) else 0


class ChatStream:
    """A Chat Completions stream from a chat adapter, as it is."""

    def open(self, adapter: ChatAdapter, call: Call[ChatRequest]) -> AsyncGenerator[ChatChunk, None]:
        return adapter.stream(call)

    def carries_output(self, event: ChatChunk) -> bool:
        return event.carries_output()

    def output_tokens(self, event: ChatChunk) -> int | None:
        return event.usage.completion_tokens if isinstance(event.usage, Usage) else None
