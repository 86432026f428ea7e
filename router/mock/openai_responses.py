"""Fake OpenAI Responses API, ``POST /openai/v1/responses``: the endpoint that wires a request's checks,
answer and rendering to the shared fake state (key check, request log, faults, speed).

The fake stores nothing: a request naming ``previous_response_id``, a ``conversation`` or an
``item_reference`` gets OpenAI's not-found answer, so a router under test must send whole conversations.
Only function tools are served; hosted tools (``web_search`` …) get a 400.

The request view and ``parse``/``plan`` are in ``openai_responses_request`` (input items and tools in
``openai_responses_input``, the refusal helpers in ``openai_responses_checks``); the ``Response`` object
and its stream events in ``openai_responses_render``.
"""

from __future__ import annotations

import asyncio

import msgspec
from aiohttp import web

from router.mock._base import act_out, answer
from router.mock.openai_responses_checks import Rejected
from router.mock.openai_responses_render import Renderer
from router.mock.openai_responses_request import ResponsesRequest, parse, plan
from router.mock.openai_wire import CACHE_MINIMUM_TOKENS, OpenAIGate, decode_failure
from router.mock.prefixcache import PromptCache, implicit
from router.mock.streaming import SSE_HEADERS, write_stream
from router.mock.textgen import Reply


def cached_tokens(req: ResponsesRequest, reply: Reply, cache: PromptCache) -> int:
    """The prompt tokens an earlier request left cached: OpenAI caches prompts of 1,024 tokens or more."""
    if reply.prompt_tokens < CACHE_MINIMUM_TOKENS:
        return 0
    text = msgspec.json.encode([req.tools, req.instructions, req.input]).decode()
    return min(implicit(cache, req.model, text, CACHE_MINIMUM_TOKENS), reply.prompt_tokens)


class ResponsesEndpoint:
    """``POST /openai/v1/responses`` on the OpenAI fake: its key check, request log, faults and speed."""

    __slots__ = ("_decoder", "_gate")

    def __init__(self, gate: OpenAIGate) -> None:
        self._gate = gate
        self._decoder = msgspec.json.Decoder(ResponsesRequest)

    async def create(self, request: web.Request) -> web.StreamResponse:
        body, denied = await self._gate.admit(request)
        if denied is not None:
            return denied
        try:
            req = self._decoder.decode(body)
        except msgspec.DecodeError as exc:
            return decode_failure(exc)
        try:
            parsed = parse(req)
        except Rejected as rejected:
            return rejected.response
        state = self._gate.state
        streaming = bool(req.stream)
        fault = await act_out(
            request,
            state.faults.take(self._gate.provider, req.model, streaming=streaming),
            lambda f: self._gate.fault_error(f, req.model),
        )
        if isinstance(fault, web.StreamResponse):
            return fault
        hex_id = state.ids.next_hex()
        reply = plan(parsed, hex_id)
        renderer = Renderer(req, parsed, reply, hex_id, cached_tokens(req, reply, state.prompts))
        behaviour = state.behaviour(self._gate.provider, req.model)
        if streaming:
            events = renderer.events()
            count = len(events)
            return await write_stream(
                request,
                SSE_HEADERS,
                events,
                behaviour,
                fault,
                error_event=lambda f: renderer.failure(f, min(f.after_chunks, count)),
                end=lambda: renderer.terminal(count),
            )
        delay = behaviour.non_stream_delay(len(reply.pieces))
        if delay > 0:
            await asyncio.sleep(delay)
        return await answer(request, msgspec.json.encode(renderer.final()), fault)
