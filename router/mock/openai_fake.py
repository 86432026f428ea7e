"""Fake OpenAI upstream, composed from its endpoints under ``/openai/v1``: routes, model list, catch-all.

Each endpoint lives in its own module and goes through the shared ``OpenAIGate`` of ``openai_wire``:
Chat Completions in ``openai_chat``, the Responses API in ``openai_responses``, legacy Completions and
Embeddings in ``openai_legacy``. None of them imports this module.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from router.mock._base import FakeProvider
from router.mock.faults import MockState
from router.mock.openai_chat import ChatEndpoint
from router.mock.openai_legacy import COMPLETION_MODELS, EMBEDDING_DIMENSIONS, LegacyEndpoints
from router.mock.openai_responses import ResponsesEndpoint
from router.mock.openai_wire import MODELS, PREFIX, PROVIDER, OpenAIGate, not_found


class _ModelOut(msgspec.Struct):
    id: str
    object: str
    created: int
    owned_by: str


class _ModelList(msgspec.Struct):
    object: str
    data: list[_ModelOut]


class OpenAIFake(FakeProvider):
    """The OpenAI routes of a mock app, reading faults, speed and keys from ``state``."""

    provider = PROVIDER

    def __init__(self, state: MockState) -> None:
        names = [(name, "openai") for name in MODELS]
        names += [(name, "system") for name in (*COMPLETION_MODELS, *EMBEDDING_DIMENSIONS)]
        models = _ModelList("list", [_ModelOut(name, "model", 1_700_000_000, owner) for name, owner in names])
        super().__init__(state, msgspec.json.encode(models))
        gate = OpenAIGate(state)
        self._gate = gate
        self._chat = ChatEndpoint(gate)
        self._responses = ResponsesEndpoint(gate)
        self._legacy = LegacyEndpoints(gate)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{PREFIX}/chat/completions", self._chat.create)
        app.router.add_post(f"{PREFIX}/responses", self._responses.create)
        app.router.add_post(f"{PREFIX}/completions", self._legacy.completions)
        app.router.add_post(f"{PREFIX}/embeddings", self._legacy.embeddings)
        app.router.add_get(f"{PREFIX}/models", self.list_models)
        app.router.add_route("*", "/openai/{tail:.*}", self.unknown)

    def _not_found(self, request: web.BaseRequest) -> web.Response:
        return not_found(request)

    def _denied(self, request: web.BaseRequest) -> web.Response | None:
        return self._gate.denied(request)
