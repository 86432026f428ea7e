"""``/v1/responses``: the Responses API on the same engine as chat.

A candidate model that speaks Responses itself (an OpenAI model with the ``responses`` endpoint) gets
the client's body passed through; any other gets it translated to chat and its answer translated
back. Either way the router owns the Response: its id, its storage for ``previous_response_id`` and
``GET /v1/responses/{id}``, and the numbering of stream events. A stream that breaks after its first
output ends with ``response.failed``, never a bare close.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

import msgspec
from litestar import HttpMethod, Request, asgi, get, route
from litestar.handlers import BaseRouteHandler
from litestar.response import Response
from litestar.types import Receive, Scope, Send

from router.access import ApiKey
from router.api.access import key_of
from router.api.answers import Counted, StreamWriter
from router.api.cache import CachedAnswer
from router.api.decode import convert, decode_object
from router.api.exchange import Exchange, serve
from router.api.services import Services
from router.errors import InvalidRequest, NotFound, RouterError
from router.providers import Call, ChatAdapter, ResponsesNative, UpstreamCall
from router.providers._caching import unmarked
from router.responses.answer import from_completion, new_id, shell
from router.responses.native import passthrough_body
from router.responses.replay import FinalResponse, response_events, response_keeps
from router.responses.request import ResponsesRequest, check, input_items, to_chat_body
from router.responses.stream import ChatToResponses, Event, carries_output, failed_event, output_tokens
from router.responses.usage import responses_usage
from router.routing import OpenedStream, Outcome
from router.store import ResponseStore, StoredResponse
from router.types import ChatRequest

_encode = msgspec.json.Encoder().encode


class _Conversation:
    """One Responses request: the request, its whole conversation, and the chat form of both."""

    __slots__ = ("chat", "created_at", "items", "request", "response_id")

    def __init__(self, request: ResponsesRequest, items: list[dict[str, Any]], created_at: int) -> None:
        self.request = request
        self.items = items
        self.created_at = created_at
        self.response_id = new_id("resp")
        body = to_chat_body(request, items)
        self.chat: ChatRequest = convert(body, ChatRequest)
        self.chat.raw = body

    def native(self, adapter: ChatAdapter, call: UpstreamCall) -> Call[dict[str, Any]] | None:
        """The pass-through call when this candidate speaks Responses itself."""
        if "responses" not in call.model.endpoints or not isinstance(adapter, ResponsesNative):
            return None
        body = passthrough_body(
            self.request.raw, self.items, call.model.upstream, "reasoning" in call.model.capabilities
        )
        if self.request.stream:
            body["stream"] = True
        return Call(
            request=body,
            model=call.model,
            provider=call.provider,
            request_id=call.request_id,
            service_tier=call.service_tier,
            created=call.created,
        )

    def shell(self, call: UpstreamCall) -> Event:
        return shell(self.request, self.response_id, self.created_at, call.model.upstream)

    def own(self, response: dict[str, Any]) -> dict[str, Any]:
        """An upstream's Response object, made this router's: its id and the storage it promised."""
        response["id"] = self.response_id
        response["store"] = self.request.stores
        response["previous_response_id"] = self.request.previous_response_id
        response["background"] = False
        return response


class ResponsesCache:
    """A Response that continues no earlier one may be kept; a hit is a new Response (its own id and
    creation time, stored when the request stores) with the kept one's output and usage."""

    def __init__(self, store: ResponseStore, wall: Callable[[], float]) -> None:
        self._store = store
        self._wall = wall

    def cacheable(self, request: ResponsesRequest) -> bool:
        # The earlier turns live in the response store, not in the request: the key cannot see them.
        return request.previous_response_id is None

    def keeps(self, answer: Event) -> bool:
        return response_keeps(answer)

    def assembler(self, request: ResponsesRequest) -> FinalResponse:
        return FinalResponse()

    async def replay(self, exchange: Exchange, request: ResponsesRequest, entry: CachedAnswer) -> bytes:
        conversation, response = self._renewed(request, entry)
        if request.stores:
            owner = exchange.key.name if exchange.key else None
            stored = StoredResponse(response=response, items=conversation.items, owner=owner)
            await self._store.put(conversation.response_id, stored)
        return _encode(response)

    async def replay_stream(
        self, exchange: Exchange, request: ResponsesRequest, entry: CachedAnswer
    ) -> tuple[Iterable[Event], StreamWriter[Event]]:
        conversation, response = self._renewed(request, entry)
        owner = exchange.key.name if exchange.key else None
        # The writer stores the replayed Response under its new id when the request stores.
        return response_events(response), ResponsesWriter(conversation, None, self._store, owner)

    def _renewed(self, request: ResponsesRequest, entry: CachedAnswer) -> tuple[_Conversation, Event]:
        conversation = _Conversation(request, input_items(request), int(self._wall()))
        response: Event = msgspec.json.decode(entry.body)
        response["id"] = conversation.response_id
        response["created_at"] = conversation.created_at
        if response.get("completed_at") is not None:
            response["completed_at"] = conversation.created_at
        return conversation, response


class ResponsesRoute:
    name = "responses"
    writes = True

    def __init__(self, store: ResponseStore, wall: Callable[[], float]) -> None:
        self._store = store
        self._wall = wall
        self.cache = ResponsesCache(store, wall)

    def decode(self, body: bytes) -> ResponsesRequest:
        data = decode_object(body)
        request = convert(data, ResponsesRequest)
        request.raw = data
        check(request)
        return request

    def streams(self, request: ResponsesRequest) -> bool:
        return bool(request.stream)

    async def _conversation(self, exchange: Exchange, request: ResponsesRequest) -> _Conversation:
        """The request with the conversation it continues, if any (the calling key's own)."""
        items = input_items(request)
        if request.previous_response_id is not None:
            previous = _owned(await self._store.get(request.previous_response_id), exchange.key)
            if previous is None:
                raise InvalidRequest(
                    f"Previous response with id '{request.previous_response_id}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            items = [*unmarked(previous.continuation()), *items]
        return _Conversation(request, items, int(self._wall()))

    async def answer(self, exchange: Exchange, request: ResponsesRequest) -> tuple[Event, Outcome]:
        conversation = await self._conversation(exchange, request)
        engine = exchange.engine
        plan = engine.plan(conversation.chat, output_param="max_output_tokens")
        operation = _Complete(conversation, self._wall)
        response, outcome = await engine.run(
            conversation.chat,
            plan,
            exchange.request_id,
            operation,
            estimate=exchange.estimate,
            admission=exchange.hold,
        )
        if request.stores:
            owner = exchange.key.name if exchange.key else None
            stored = StoredResponse(response=response, items=conversation.items, owner=owner)
            await self._store.put(conversation.response_id, stored)
        return response, outcome

    async def open(
        self, exchange: Exchange, request: ResponsesRequest
    ) -> tuple[OpenedStream[Event], StreamWriter[Event]]:
        conversation = await self._conversation(exchange, request)
        engine = exchange.engine
        plan = engine.plan(conversation.chat, output_param="max_output_tokens")
        operation = _Stream(conversation, self._wall)
        opened = await engine.run_stream(
            conversation.chat,
            plan,
            exchange.request_id,
            operation,
            estimate=exchange.estimate,
            admission=exchange.hold,
        )
        owner = exchange.key.name if exchange.key else None
        return opened, ResponsesWriter(conversation, opened.outcome.service_tier, self._store, owner)

    def encode(self, answer: Event) -> bytes:
        return _encode(answer)

    def counted(self, answer: Event, outcome: Outcome) -> Counted | None:
        return _counted(answer, outcome.service_tier)


def responses_handlers(services: Services) -> list[BaseRouteHandler]:
    store = services.responses
    create = ResponsesRoute(store, services.clock.wall)

    @asgi(["/v1/responses", "/responses"], copy_scope=False)
    async def create_response(scope: Scope, receive: Receive, send: Send) -> None:
        await serve(services, create, scope, receive, send)

    @get(["/v1/responses/{response_id:str}/input_items", "/responses/{response_id:str}/input_items"])
    async def list_input_items(response_id: str, request: Request[Any, Any, Any]) -> Response[bytes]:
        stored = _owned(await store.get(response_id), key_of(request.scope))
        if stored is None:
            raise _missing(response_id)
        items = [{"id": item.get("id") or new_id("msg"), **item} for item in reversed(stored.items)]
        first = items[0]["id"] if items else None
        last = items[-1]["id"] if items else None
        return _json({"object": "list", "data": items, "first_id": first, "last_id": last, "has_more": False})

    # One handler for both methods: Litestar's OPTIONS answer lists the methods of a path's first
    # handler only, and would leave DELETE out.
    @route(
        ["/v1/responses/{response_id:str}", "/responses/{response_id:str}"],
        http_method=[HttpMethod.GET, HttpMethod.DELETE],
        status_code=200,
    )
    async def stored_response(response_id: str, request: Request[Any, Any, Any]) -> Response[bytes]:
        stored = _owned(await store.get(response_id), key_of(request.scope))
        if stored is None:
            raise _missing(response_id)
        if request.method == HttpMethod.GET:
            return _json(stored.response)
        if not await store.delete(response_id):
            raise _missing(response_id)
        return _json({"id": response_id, "object": "response.deleted", "deleted": True})

    handlers: list[BaseRouteHandler] = [create_response, stored_response, list_input_items]
    return handlers


class _Complete:
    """A whole Response from one candidate: passed through to a model that speaks Responses itself,
    or its chat answer translated."""

    def __init__(self, conversation: _Conversation, wall: Callable[[], float]) -> None:
        self._conversation = conversation
        self._wall = wall

    async def call(self, adapter: ChatAdapter, call: UpstreamCall) -> Event:
        conversation = self._conversation
        native = conversation.native(adapter, call)
        if native is not None:
            assert isinstance(adapter, ResponsesNative)
            return conversation.own(await adapter.respond(native))
        completion = await adapter.complete(call)
        return from_completion(completion, conversation.shell(call), int(self._wall()))

    def output_tokens(self, answer: Event) -> int:
        usage = responses_usage(answer.get("usage"))
        return usage.output_tokens if usage else 0


class _Stream:
    """A Responses event stream from one candidate, passed through or translated from chat."""

    def __init__(self, conversation: _Conversation, wall: Callable[[], float]) -> None:
        self._conversation = conversation
        self._wall = wall

    async def open(self, adapter: ChatAdapter, call: UpstreamCall) -> AsyncGenerator[Event, None]:
        conversation = self._conversation
        native = conversation.native(adapter, call)
        if native is not None:
            assert isinstance(adapter, ResponsesNative)
            async for event in adapter.respond_stream(native):
                response = event.get("response")
                if isinstance(response, dict):
                    conversation.own(response)
                yield event
            return
        writer = ChatToResponses(conversation.shell(call))
        for event in writer.start():
            yield event
        async for chunk in adapter.stream(call):
            for event in writer.feed(chunk):
                yield event
        for event in writer.finish(int(self._wall())):
            yield event

    def carries_output(self, event: Event) -> bool:
        return carries_output(event)

    def output_tokens(self, event: Event) -> int | None:
        return output_tokens(event)


class ResponsesWriter:
    """Numbers and frames the events (each with its ``event:`` line); keeps what a failure event and
    the stored conversation need; a break after the first output ends with ``response.failed``."""

    def __init__(
        self, conversation: _Conversation, tier: str | None, store: ResponseStore, owner: str | None
    ) -> None:
        self._conversation = conversation
        self._tier = tier  # the tier the request was sent at, unless the Response says its own
        self._store = store
        self._owner = owner
        self._sequence = 0
        self._response: Event | None = None  # the latest full Response seen
        self._items: dict[int, Event] = {}  # finished output items by index
        self._final: Event | None = None

    def frame(self, event: Event) -> bytes:
        kind = event.get("type")
        if isinstance(event.get("response"), dict):
            self._response = event["response"]
            if kind in ("response.completed", "response.incomplete"):
                self._final = self._response
        elif kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            self._items[int(event.get("output_index", len(self._items)))] = event["item"]
        event["sequence_number"] = self._sequence
        self._sequence += 1
        return b"event: " + str(kind or "message").encode() + b"\ndata: " + _encode(event) + b"\n\n"

    def end(self) -> bytes:
        return b""  # the terminal event was the last one

    def failure(self, error: RouterError) -> bytes:
        partial = _partial(self._response, self._conversation, self._items)
        return self.frame(failed_event(partial, error.message, _failure_code(error)))

    def counted(self) -> Counted | None:
        return _counted(self._final, self._tier) if self._final is not None else None

    async def close(self) -> None:
        if self._final is not None and self._conversation.request.stores:
            stored = StoredResponse(response=self._final, items=self._conversation.items, owner=self._owner)
            await self._store.put(self._conversation.response_id, stored)


def _counted(response: Event, tier: str | None) -> Counted | None:
    usage = responses_usage(response.get("usage"))
    if usage is None:
        return None
    tokens = (usage.input_tokens, usage.output_tokens, usage.cached, usage.reasoning)
    return Counted(tokens, usage.total_tokens, usage.as_chat(), _tier(response, tier))


def _owned(stored: StoredResponse | None, key: ApiKey | None) -> StoredResponse | None:
    """A stored response as the calling key may see it: its own, or none (as if it did not exist)."""
    if stored is None or stored.owner != (key.name if key else None):
        return None
    return stored


def _partial(response: Event | None, conversation: _Conversation, items: dict[int, Event]) -> Event:
    partial: Event = dict(response) if response else {"id": conversation.response_id, "object": "response"}
    partial["output"] = [items[i] for i in sorted(items)]
    return partial


def _failure_code(exc: RouterError) -> str:
    return "rate_limit_exceeded" if exc.status == 429 else "server_error"


def _tier(response: dict[str, Any], sent: str | None) -> str | None:
    tier = response.get("service_tier")
    return tier if isinstance(tier, str) and tier != "auto" else sent


def _missing(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id")


def _json(body: dict[str, Any]) -> Response[bytes]:
    return Response(_encode(body), media_type="application/json")


__all__ = ["responses_handlers"]
