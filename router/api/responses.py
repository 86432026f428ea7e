"""``/v1/responses``: the Responses API on the same engine as chat.

A candidate model that speaks Responses itself (an OpenAI model with the ``responses`` endpoint) gets
the client's body passed through; any other gets it translated to chat and its answer translated
back. Either way the router owns the Response: its id, its storage for ``previous_response_id`` and
``GET /v1/responses/{id}``, and the numbering of stream events. A stream that breaks after its first
output ends with ``response.failed``, never a bare close.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import anyio
import msgspec
from litestar import HttpMethod, Request, asgi, get, route
from litestar.handlers import BaseRouteHandler
from litestar.response import Response
from litestar.types import Receive, Scope, Send

from router.access import ApiKey, Grant
from router.access.limits import OPEN
from router.api._asgi import allow_only, send_json, send_stream
from router.api._log import log_fields, responses_tokens
from router.api.access import admit, estimate_tokens, key_of, settler
from router.api.chat import SSE_HEADERS, outcome_headers
from router.api.decode import convert, decode_object
from router.api.middleware import request_id_of
from router.api.services import Services
from router.errors import InternalError, InvalidRequest, NotFound, RouterError
from router.providers import Call, ChatAdapter, ResponsesNative, UpstreamCall
from router.responses.answer import from_completion, new_id, shell
from router.responses.native import passthrough_body
from router.responses.request import ResponsesRequest, check, input_items, to_chat_body
from router.responses.stream import ChatToResponses, Event, carries_output, failed_event, output_tokens
from router.responses.usage import responses_usage
from router.routing import OpenedStream, Outcome
from router.routing.cost import cost_usd
from router.store import StoredResponse
from router.types import ChatRequest

_encode = msgspec.json.Encoder().encode
_errors = logging.getLogger("router.api")


class _Exchange:
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


def responses_handlers(services: Services) -> list[BaseRouteHandler]:
    store = services.responses

    @asgi(["/v1/responses", "/responses"])
    async def create_response(scope: Scope, receive: Receive, send: Send) -> None:
        clock = services.clock
        started = clock.monotonic()
        request_id = request_id_of(scope)
        log = services.request_log
        key = key_of(scope)
        exchange: _Exchange | None = None
        grant: Grant = OPEN
        try:
            if not await allow_only(scope, send, "POST"):
                return
            body = await services.bodies.read(scope, receive)
            data = decode_object(body)
            request = convert(data, ResponsesRequest)
            request.raw = data
            check(request)
            estimate = estimate_tokens(body)
            grant = await admit(services, key, [request.model, *(request.models or ())], estimate)
            items = input_items(request)
            if request.previous_response_id is not None:
                previous = _owned(await store.get(request.previous_response_id), key)
                if previous is None:
                    raise InvalidRequest(
                        f"Previous response with id '{request.previous_response_id}' not found.",
                        param="previous_response_id",
                        code="previous_response_not_found",
                    )
                items = [*previous.continuation(), *items]
            exchange = _Exchange(request, items, int(clock.wall()))
            engine = services.engine
            plan = engine.plan(exchange.chat, output_param="max_output_tokens")
            if request.stream:
                opened = await engine.run_stream(
                    exchange.chat,
                    plan,
                    request_id,
                    _stream_op(exchange, clock.wall),
                    carries_output,
                    output_tokens,
                    estimate=estimate,
                )
            else:
                response, outcome = await engine.run(
                    exchange.chat,
                    plan,
                    request_id,
                    _complete_op(exchange, clock.wall),
                    _tokens,
                    estimate=estimate,
                )
        except RouterError as exc:
            elapsed = clock.monotonic() - started
            chat = exchange.chat if exchange else None
            exc.headers.update(grant.headers)
            fields = _fields(request_id, chat, None, exc.status, elapsed, None, attempts=exc.attempts)
            fields["key"] = key.name if key else None
            log.write(fields)
            raise
        if request.stream:
            settle = settler(services, grant, opened.outcome.model.id)
            events = _sse(
                opened, exchange, services, request_id, lambda: clock.monotonic() - started, key, settle
            )
            headers = {
                **SSE_HEADERS,
                **outcome_headers(opened.outcome, clock.monotonic() - started),
                **grant.headers,
            }
            await send_stream(scope, receive, send, events, headers)
            return
        if request.stores:
            owner = key.name if key else None
            await store.put(exchange.response_id, StoredResponse(response=response, items=items, owner=owner))
        elapsed = clock.monotonic() - started
        headers = outcome_headers(outcome, elapsed)
        headers.update(grant.headers)
        usage = responses_usage(response.get("usage"))
        fields = _fields(request_id, exchange.chat, outcome, 200, elapsed, response.get("usage"))
        fields["key"] = key.name if key else None
        if usage is not None:
            settler(services, grant, outcome.model.id)(usage.total_tokens)
            cost = cost_usd(outcome.model, usage.as_chat(), _tier(response, outcome))
            headers["x-router-cost-usd"] = f"{cost:.8f}"
            fields["cost_usd"] = round(cost, 8)
        await send_json(send, _encode(response), headers)
        log.write(fields)

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


def _complete_op(
    exchange: _Exchange, wall: Callable[[], float]
) -> Callable[[ChatAdapter, UpstreamCall], Any]:
    async def op(adapter: ChatAdapter, call: UpstreamCall) -> dict[str, Any]:
        native = exchange.native(adapter, call)
        if native is not None:
            assert isinstance(adapter, ResponsesNative)
            return exchange.own(await adapter.respond(native))
        completion = await adapter.complete(call)
        return from_completion(completion, exchange.shell(call), int(wall()))

    return op


def _stream_op(
    exchange: _Exchange, wall: Callable[[], float]
) -> Callable[[ChatAdapter, UpstreamCall], AsyncGenerator[Event, None]]:
    async def op(adapter: ChatAdapter, call: UpstreamCall) -> AsyncGenerator[Event, None]:
        native = exchange.native(adapter, call)
        if native is not None:
            assert isinstance(adapter, ResponsesNative)
            async for event in adapter.respond_stream(native):
                response = event.get("response")
                if isinstance(response, dict):
                    exchange.own(response)
                yield event
            return
        writer = ChatToResponses(exchange.shell(call))
        for event in writer.start():
            yield event
        async for chunk in adapter.stream(call):
            for event in writer.feed(chunk):
                yield event
        for event in writer.finish(int(wall())):
            yield event

    return op


async def _sse(
    opened: OpenedStream[Event],
    exchange: _Exchange,
    services: Services,
    request_id: str,
    elapsed: Callable[[], float],
    key: ApiKey | None,
    settle: Callable[[int | None], None],
) -> AsyncIterator[bytes]:
    """Number and encode the events; keep what a failure event and the store need."""
    sequence = 0
    response: Event | None = None  # the latest full Response seen
    items: dict[int, Event] = {}  # finished output items by index
    final: Event | None = None
    status = 200

    def frame(event: Event) -> bytes:
        nonlocal sequence
        event["sequence_number"] = sequence
        sequence += 1
        kind = str(event.get("type", "message")).encode()
        return b"event: " + kind + b"\ndata: " + _encode(event) + b"\n\n"

    try:
        async for event in opened.chunks():
            kind = event.get("type")
            if isinstance(event.get("response"), dict):
                response = event["response"]
                if kind in ("response.completed", "response.incomplete"):
                    final = response
            elif kind == "response.output_item.done" and isinstance(event.get("item"), dict):
                items[int(event.get("output_index", len(items)))] = event["item"]
            yield frame(event)
    except RouterError as exc:
        status = exc.status
        yield frame(failed_event(_partial(response, exchange, items), exc.message, _failure_code(exc)))
    except Exception:
        status = 500
        _errors.exception("responses stream failed after the commit point (request %s)", request_id)
        message = InternalError("The router failed while streaming this answer.").message
        yield frame(failed_event(_partial(response, exchange, items), message))
    finally:
        reported = final.get("usage") if final else None
        usage = responses_usage(reported)
        fields = _fields(request_id, exchange.chat, opened.outcome, status, elapsed(), reported)
        fields["key"] = key.name if key else None
        settle(usage.total_tokens if usage is not None else None)
        if usage is not None and final is not None:
            cost = cost_usd(opened.outcome.model, usage.as_chat(), _tier(final, opened.outcome))
            fields["cost_usd"] = round(cost, 8)
        services.request_log.write(fields)
        with anyio.CancelScope(shield=True):
            if final is not None and exchange.request.stores:
                owner = key.name if key else None
                stored = StoredResponse(response=final, items=exchange.items, owner=owner)
                await services.responses.put(exchange.response_id, stored)
            await opened.aclose()


def _owned(stored: StoredResponse | None, key: ApiKey | None) -> StoredResponse | None:
    """A stored response as the calling key may see it: its own, or none (as if it did not exist)."""
    if stored is None or stored.owner != (key.name if key else None):
        return None
    return stored


def _partial(response: Event | None, exchange: _Exchange, items: dict[int, Event]) -> Event:
    partial: Event = dict(response) if response else {"id": exchange.response_id, "object": "response"}
    partial["output"] = [items[i] for i in sorted(items)]
    return partial


def _failure_code(exc: RouterError) -> str:
    return "rate_limit_exceeded" if exc.status == 429 else "server_error"


def _tokens(response: dict[str, Any]) -> int:
    usage = responses_usage(response.get("usage"))
    return usage.output_tokens if usage else 0


def _tier(response: dict[str, Any], outcome: Outcome) -> str | None:
    tier = response.get("service_tier")
    return tier if isinstance(tier, str) and tier != "auto" else outcome.service_tier


def _missing(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id")


def _json(body: dict[str, Any]) -> Response[bytes]:
    return Response(_encode(body), media_type="application/json")


def _fields(
    request_id: str,
    chat: ChatRequest | None,
    outcome: Outcome | None,
    status: int,
    elapsed_s: float,
    usage: Any,
    *,
    attempts: tuple[str, ...] = (),
) -> dict[str, Any]:
    tokens = responses_tokens(usage)
    model = chat.model if chat else None
    stream = bool(chat and chat.stream)
    return log_fields(
        "responses", request_id, model, stream, outcome, status, elapsed_s, tokens=tokens, attempts=attempts
    )


__all__ = ["responses_handlers"]
