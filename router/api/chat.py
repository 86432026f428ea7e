"""``POST /v1/chat/completions``: a chat request routed to a model, answered as JSON or as an SSE stream."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from router.api.answers import Counted, StreamWriter, chat_counted
from router.api.cache import CachedAnswer
from router.api.chunks import ChunkWriter
from router.api.decode import decode_chat
from router.api.exchange import Exchange, serve
from router.api.replay import ChatAssembler, chat_chunks, chat_keeps
from router.api.services import Services
from router.routing import ChatAnswer, ChatStream, OpenedStream, Outcome
from router.types import ChatChunk, ChatCompletion, ChatRequest, Usage

_encode = msgspec.json.Encoder().encode
_ANSWER = ChatAnswer()
_STREAM = ChatStream()


class ChatCache:
    """A kept Chat Completion is replayed as it was (same id), or as its stream."""

    def cacheable(self, request: ChatRequest) -> bool:
        return True

    def keeps(self, answer: ChatCompletion) -> bool:
        return chat_keeps(answer)

    def assembler(self, request: ChatRequest) -> ChatAssembler:
        return ChatAssembler()

    async def replay(self, exchange: Exchange, request: ChatRequest, entry: CachedAnswer) -> bytes:
        return entry.body

    async def replay_stream(
        self, exchange: Exchange, request: ChatRequest, entry: CachedAnswer
    ) -> tuple[Iterable[ChatChunk], StreamWriter[ChatChunk]]:
        return chat_chunks(entry.body), ChunkWriter(request.include_usage, None)


class ChatRoute:
    name = "chat"
    writes = True
    cache = ChatCache()

    def decode(self, body: bytes) -> ChatRequest:
        return decode_chat(body)

    def streams(self, request: ChatRequest) -> bool:
        return bool(request.stream)

    async def answer(self, exchange: Exchange, request: ChatRequest) -> tuple[ChatCompletion, Outcome]:
        engine = exchange.engine
        plan = engine.plan(request)
        return await engine.run(
            request, plan, exchange.request_id, _ANSWER, estimate=exchange.estimate, admission=exchange.hold
        )

    async def open(
        self, exchange: Exchange, request: ChatRequest
    ) -> tuple[OpenedStream[ChatChunk], StreamWriter[ChatChunk]]:
        engine = exchange.engine
        plan = engine.plan(request)
        opened = await engine.run_stream(
            request, plan, exchange.request_id, _STREAM, estimate=exchange.estimate, admission=exchange.hold
        )
        return opened, ChunkWriter(request.include_usage, opened.outcome.service_tier)

    def encode(self, answer: ChatCompletion) -> bytes:
        return _encode(answer)

    def counted(self, answer: ChatCompletion, outcome: Outcome) -> Counted | None:
        if not isinstance(answer.usage, Usage):
            return None
        tier = answer.service_tier if isinstance(answer.service_tier, str) else None
        return chat_counted(answer.usage, tier or outcome.service_tier)


def chat_handlers(services: Services) -> list[ASGIRouteHandler]:
    """The chat route, bound to this app's services (with and without the ``/v1`` prefix)."""
    route = ChatRoute()

    @asgi(["/v1/chat/completions", "/chat/completions"], copy_scope=False)
    async def chat_completions(scope: Scope, receive: Receive, send: Send) -> None:
        await serve(services, route, scope, receive, send)

    return [chat_completions]
