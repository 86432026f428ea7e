"""Chat Completions and legacy Completions streams as SSE: one ``data:`` line per chunk, ``[DONE]``
after a complete answer, an error event (and no ``[DONE]``) after a failure."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

from router.api.answers import Counted, chat_counted
from router.api.errors import error_json
from router.errors import RouterError
from router.types import ChatChunk, TextCompletion, Usage

DONE = b"data: [DONE]\n\n"
C = TypeVar("C", ChatChunk, TextCompletion)
_encode = msgspec.json.Encoder().encode


class ChunkWriter(Generic[C]):
    """The router always asks the upstream for usage (it prices every answer); the client sees the
    usage chunk only when it set ``stream_options.include_usage``, with ``usage: null`` on every chunk
    before it, as OpenAI sends them."""

    __slots__ = ("include_usage", "tier", "usage")

    def __init__(self, include_usage: bool, tier: str | None) -> None:
        self.include_usage = include_usage
        self.usage: Usage | None = None
        self.tier = tier  # the tier the request was sent at, until the provider reports its own

    def frame(self, chunk: C) -> bytes | None:
        if isinstance(chunk.usage, Usage):
            self.usage = chunk.usage
        if isinstance(chunk, ChatChunk) and isinstance(chunk.service_tier, str):
            self.tier = chunk.service_tier  # the tier the provider reports having served at
        if not self.include_usage:
            if not chunk.choices:
                return None  # the usage chunk the router asked for on its own account
            chunk.usage = msgspec.UNSET
        elif chunk.usage is msgspec.UNSET:
            chunk.usage = None
        return b"data: " + _encode(chunk) + b"\n\n"

    def end(self) -> bytes:
        return DONE

    def failure(self, error: RouterError) -> bytes:
        return b"data: " + error_json(error) + b"\n\n"

    def counted(self) -> Counted | None:
        return chat_counted(self.usage, self.tier) if self.usage is not None else None

    async def close(self) -> None:
        return None
