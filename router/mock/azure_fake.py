"""Fake Azure OpenAI resource under ``/azure``: OpenAI's fake endpoints behind Azure's URLs, credentials,
errors and content-filter annotations.

URL forms (``{mock}/azure`` is the resource endpoint):

- v1: ``/azure/openai/v1/chat/completions``, ``/responses``, ``/embeddings``, ``GET /models``;
  ``api-version`` optional (``v1``, ``preview``, ``latest``), a dated one is refused.
- deployments: ``/azure/openai/deployments/{deployment}/chat/completions`` and ``/embeddings``, and
  ``/azure/openai/responses`` (from ``2025-03-01-preview``), each with a required dated ``api-version``.

Requests are admitted by ``AzureGate`` (``azure_wire``) and then served by the OpenAI fake's own endpoints;
chat answers get Azure's additions: ``prompt_filter_results`` and per-choice ``content_filter_results``,
the model version as ``model``, and in streams a first chunk with ``choices: []`` carrying the prompt's
verdicts. A prompt holding ``content_filter=prompt`` is refused with Azure's 400; one holding
``content_filter=completion`` is cut by the filter after a few words (``finish_reason: content_filter``;
in a stream, as the asynchronous filter sends it: an annotation-only chunk, then the finish in a chunk
with an empty ``id``). Faults and speed are scripted under the provider name ``azure``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import msgspec
from aiohttp import web

from router.mock._base import FakeProvider
from router.mock.azure_wire import (
    DEPLOYMENTS,
    FILTER_COMPLETION,
    PREFIX,
    PROVIDER,
    AzureGate,
    output_verdicts,
    prompt_results,
    resource_not_found,
)
from router.mock.faults import MockState
from router.mock.openai_chat import ChatEndpoint, ChatRequest, prompt_of
from router.mock.openai_legacy import LegacyEndpoints
from router.mock.openai_responses import ResponsesEndpoint
from router.mock.streaming import Pace, paced
from router.mock.textgen import Reply

KEPT_PIECES: Final = 2
"""How many pieces of a filtered answer get out before the filter cuts it."""
_FILTERED_CATEGORY: Final = "violence"


class _ModelOut(msgspec.Struct):
    id: str
    object: str
    created: int
    owned_by: str


class _ModelList(msgspec.Struct):
    object: str
    data: list[_ModelOut]


def _decode(event: bytes) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.json.decode(event.removeprefix(b"data: "))
    return data


def _event(chunk: dict[str, Any]) -> bytes:
    return b"data: " + msgspec.json.encode(chunk) + b"\n\n"


def _offsets(end: int) -> dict[str, int]:
    return {"check_offset": 0, "start_offset": 0, "end_offset": end}


class AzureChatEndpoint(ChatEndpoint):
    """OpenAI's chat endpoint, its answers annotated (and, when asked, cut) by Azure's content filter."""

    __slots__ = ()

    def render(self, req: ChatRequest, reply: Reply, hex_id: str, tier: str, cached: int) -> bytes:
        completion = _decode(super().render(req, reply, hex_id, tier, cached))
        completion["model"] = DEPLOYMENTS.get(req.model, req.model)
        completion["prompt_filter_results"] = prompt_results()
        cut = FILTER_COMPLETION in prompt_of(req).user_text
        for choice in completion["choices"]:
            choice["content_filter_results"] = output_verdicts(_FILTERED_CATEGORY if cut else None)
            if cut:
                choice["message"]["content"] = "".join(reply.pieces[:KEPT_PIECES])
                choice["finish_reason"] = "content_filter"
        return msgspec.json.encode(completion)

    def render_events(
        self, req: ChatRequest, reply: Reply, hex_id: str, tier: str, cached: int
    ) -> Iterator[tuple[bytes, Pace]]:
        cut = FILTER_COMPLETION in prompt_of(req).user_text
        events = _annotated(super().render_events(req, reply, hex_id, tier, cached), req, cut)
        return paced(events, first_wait_before=2)  # the prompt's verdicts and the role go at once


def _annotated(events: Iterator[tuple[bytes, Pace]], req: ChatRequest, cut: bool) -> Iterator[bytes]:
    """OpenAI's chunks as Azure sends them: the prompt's verdicts first, verdicts on every choice; cut
    by the filter after ``KEPT_PIECES`` pieces when ``cut``."""
    usage = bool(req.stream_options and req.stream_options.include_usage)
    first: dict[str, Any] = {"id": "", "object": "", "created": 0, "model": "", "choices": []}
    first["prompt_filter_results"] = prompt_results()
    if usage:
        first["usage"] = None
    yield _event(first)
    pieces = 0
    sent = 0
    for event, _ in events:
        chunk = _decode(event)
        chunk["model"] = DEPLOYMENTS.get(req.model, req.model)
        choices = chunk["choices"]
        if not choices:  # the usage chunk
            yield _event(chunk)
            continue
        choice = choices[0]
        delta = choice.get("delta") or {}
        content = delta.get("content") or ""
        finishing = choice.get("finish_reason") is not None
        if cut and (finishing or pieces >= KEPT_PIECES):
            if finishing:
                yield from _filtered_end(sent, usage)
            continue
        if content:
            pieces += 1
            sent += len(content)
        choice["content_filter_results"] = output_verdicts() if content or finishing else {}
        yield _event(chunk)


def _filtered_end(sent: int, usage: bool) -> Iterator[bytes]:
    """What the asynchronous filter sends when it cuts an answer: an annotation without a delta, then the
    choice's finish, both with an empty id, object and model."""
    blank: dict[str, Any] = {"id": "", "object": "", "created": 0, "model": ""}
    if usage:
        blank["usage"] = None
    note = {"index": 0, "finish_reason": None, "content_filter_results": output_verdicts()}
    note["content_filter_offsets"] = _offsets(sent)
    yield _event({**blank, "choices": [note]})
    end = {"index": 0, "finish_reason": "content_filter"}
    end["content_filter_results"] = output_verdicts(_FILTERED_CATEGORY)
    end["content_filter_offsets"] = _offsets(sent)
    yield _event({**blank, "choices": [end]})


class AzureFake(FakeProvider):
    """The routes of the fake Azure OpenAI resource, reading faults, speed and keys from ``state``."""

    provider = PROVIDER

    def __init__(self, state: MockState) -> None:
        models = _ModelList(
            "list", [_ModelOut(name, "model", 1_700_000_000, "system") for name in DEPLOYMENTS]
        )
        super().__init__(state, msgspec.json.encode(models))
        gate = AzureGate(state)
        self._gate = gate
        self._chat = AzureChatEndpoint(gate)
        self._responses = ResponsesEndpoint(gate)
        self._legacy = LegacyEndpoints(gate)

    def add_routes(self, app: web.Application) -> None:
        router = app.router
        for base in (f"{PREFIX}/openai/v1", f"{PREFIX}/openai/deployments/{{deployment}}"):
            router.add_post(f"{base}/chat/completions", self._chat.create)
            router.add_post(f"{base}/embeddings", self._legacy.embeddings)
        router.add_post(f"{PREFIX}/openai/v1/responses", self._responses.create)
        router.add_post(f"{PREFIX}/openai/responses", self._responses.create)
        router.add_get(f"{PREFIX}/openai/v1/models", self.list_models)
        router.add_route("*", f"{PREFIX}/{{tail:.*}}", self.unknown)
        app.on_response_prepare.append(_stamp)

    def _not_found(self, request: web.BaseRequest) -> web.Response:
        return resource_not_found()

    def _denied(self, request: web.BaseRequest) -> web.Response | None:
        return self._gate.denied(request)


async def _stamp(request: web.Request, response: web.StreamResponse) -> None:
    """Azure's request id and region on every answer of the fake resource."""
    if request.path.startswith(PREFIX + "/"):
        response.headers.setdefault("apim-request-id", "00000000-0000-4000-8000-000000000000")
        response.headers.setdefault("x-ms-region", "Sweden Central")
