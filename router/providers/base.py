"""The provider seam: what the routing engine asks of every adapter, and the call it hands over."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import msgspec

from router.catalog import Model, Provider
from router.types import ChatChunk, ChatCompletion, ChatRequest, EmbeddingRequest, EmbeddingResponse

Req = TypeVar("Req")


class Call(msgspec.Struct, Generic[Req], frozen=True, kw_only=True):
    """One attempt at one model: the request, where it goes, and at which service tier."""

    request: Req
    model: Model
    provider: Provider
    request_id: str
    service_tier: str | None = None
    # Unix time for answers the adapter builds itself (providers that do not send one).
    created: int = 0


UpstreamCall = Call[ChatRequest]
EmbeddingCall = Call[EmbeddingRequest]


class ChatAdapter(Protocol):
    """A provider adapter: canonical request in, canonical completion or chunk stream out.

    Adapters raise only ``router.errors.RouterError`` subclasses. A stream ends normally only when the
    upstream signalled a complete answer; a cut or an in-band error raises ``StreamInterrupted``.
    """

    async def complete(self, call: UpstreamCall) -> ChatCompletion: ...

    def stream(self, call: UpstreamCall) -> AsyncGenerator[ChatChunk, None]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Embedder(Protocol):
    """An adapter whose provider turns text into vectors."""

    async def embed(self, call: EmbeddingCall) -> EmbeddingResponse: ...


@runtime_checkable
class ResponsesNative(Protocol):
    """An adapter whose provider speaks the Responses API itself (bodies and events as dicts)."""

    async def respond(self, call: Call[dict[str, Any]]) -> dict[str, Any]: ...

    def respond_stream(self, call: Call[dict[str, Any]]) -> AsyncGenerator[dict[str, Any], None]: ...
