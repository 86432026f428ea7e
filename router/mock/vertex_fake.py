"""Fake Google Vertex AI under ``/vertex``: Gemini and Claude models of a project, behind a bearer-token
check, with Google's OAuth token endpoint beside them.

Routes (``{mock}/vertex`` stands for ``https://{region}-aiplatform.googleapis.com``):

- ``POST /vertex/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent``
  and ``:streamGenerateContent`` (SSE with ``?alt=sse``, else a JSON array): the Gemini fake's answers,
  after Vertex's own checks (every content has a role, none is ``system``).
- ``POST .../publishers/anthropic/models/{model}:rawPredict`` and ``:streamRawPredict``: the Anthropic
  fake's answers to the Messages body, which must carry ``anthropic_version: vertex-2023-10-16`` and no
  ``model``; ids are ``msg_vrtx_...``, the answer's model Anthropic's name (``claude-haiku-4-5-20251001``).
- ``POST /vertex/token``: the OAuth token endpoint for service-account keys (``vertex_token``); a key
  file comes from ``POST /__mock__/vertex/service-account`` (``{project, lifetime_s, email}``, all
  optional), with its ``token_uri`` pointing here.

Every model call needs ``Authorization: Bearer <token>``: none is Google's 401 ``CREDENTIALS_MISSING``
(an API key in its place, the 401 saying API keys are not supported); a token this endpoint issued must
be unexpired and carry the ``cloud-platform`` scope; any other token is accepted unless a key is
required (``POST /__mock__/key`` with provider ``vertex``), then it must be that one. An unknown model is
Vertex's 404. Faults and speed are scripted under the provider ``vertex`` and the model id of the URL
(``claude-haiku-4-5@20251001``); on Claude, the front end's statuses (401, 403, 404, 429, 503, 504, or a
``type`` in upper case) come in Google's envelope, an array on ``streamRawPredict``, the others in
Anthropic's.
"""

from __future__ import annotations

from typing import Annotated, Final
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from router.mock._base import FakeProvider, Venue
from router.mock.anthropic_fake import AnthropicFake
from router.mock.faults import MockState
from router.mock.gemini_fake import GeminiFake, checked_request, invalid_argument
from router.mock.vertex_token import TOKEN_PREFIX, ServiceAccounts
from router.mock.vertex_wire import (
    API_KEY_REFUSED,
    CLAUDE_MODELS,
    GEMINI_MODELS,
    INSUFFICIENT_SCOPES,
    INVALID_CREDENTIAL,
    METHODS,
    MISSING_CREDENTIAL,
    PREFIX,
    PROVIDER,
    anthropic_name,
    auth_error,
    claude_body,
    claude_fault,
    gemini_problem,
    model_not_found,
    platform_fault,
    rpc_error,
)

CONTROL: Final = "/__mock__/vertex"
_GEMINI_ON_VERTEX: Final = Venue(PROVIDER, platform_fault)


class _ServiceAccountBody(msgspec.Struct, forbid_unknown_fields=True):
    project: str = "mock-project"
    lifetime_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 3599
    email: str | None = None


def _json(payload: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode(payload), content_type="application/json")


class VertexFake(FakeProvider):
    """The Vertex AI routes of a mock app, serving through the Gemini and Anthropic fakes."""

    provider = PROVIDER

    def __init__(self, state: MockState, gemini: GeminiFake, claude: AnthropicFake) -> None:
        super().__init__(state, b'{"publisherModels":[]}')
        self._gemini = gemini
        self._claude = claude
        self.accounts = ServiceAccounts()

    def add_routes(self, app: web.Application) -> None:
        router = app.router
        resource = "/{version}/projects/{project}/locations/{location}/publishers/{publisher}/models/{target}"
        router.add_post(PREFIX + resource, self.predict)
        router.add_post(f"{PREFIX}/token", self.token)
        router.add_post(f"{CONTROL}/service-account", self.new_service_account)
        router.add_get(f"{CONTROL}/tokens", self.tokens_issued)
        router.add_route("*", f"{PREFIX}/{{tail:.*}}", self.unknown)

    def _not_found(self, request: web.BaseRequest) -> web.Response:
        return rpc_error(404, f"Method not found: {request.method} {request.path}", "NOT_FOUND")

    def _denied(self, request: web.BaseRequest, method: str = "") -> web.Response | None:
        """Google's refusal of a missing, invalid, expired or under-scoped token; ``None``: accepted."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            api_key = request.headers.get("x-goog-api-key") or request.query.get("key")
            return auth_error(
                401, API_KEY_REFUSED if api_key else MISSING_CREDENTIAL, "CREDENTIALS_MISSING", method
            )
        if token.startswith(TOKEN_PREFIX):
            verdict = self.accounts.check(token)
            if verdict == "ok":
                return None
            if verdict == "scope":
                return auth_error(403, INSUFFICIENT_SCOPES, "ACCESS_TOKEN_SCOPE_INSUFFICIENT", method)
            reason = "ACCESS_TOKEN_EXPIRED" if verdict == "expired" else "ACCESS_TOKEN_TYPE_UNSUPPORTED"
            return auth_error(401, INVALID_CREDENTIAL, reason, method)
        required = self._state.required_key(PROVIDER)
        if required is None or token == required:
            return None
        return auth_error(401, INVALID_CREDENTIAL, "ACCESS_TOKEN_TYPE_UNSUPPORTED", method)

    async def predict(self, request: web.Request) -> web.StreamResponse:
        """``POST .../publishers/{publisher}/models/{model}:{method}``."""
        body = await request.read()
        self._record(request, body)
        info = request.match_info
        model, _, method = info["target"].rpartition(":")
        publisher = info["publisher"]
        known = METHODS.get(publisher, ())
        if info["version"] not in ("v1", "v1beta1") or not model or method not in known:
            return self._not_found(request)
        denied = self._denied(request, method)
        if denied is not None:
            return denied
        streaming = method.startswith("stream")
        if model not in (GEMINI_MODELS if publisher == "google" else CLAUDE_MODELS):
            where = f"projects/{info['project']}/locations/{info['location']}/publishers/{publisher}"
            return model_not_found(f"{where}/models/{model}")
        if publisher == "google":
            return await self._generate(request, body, model, streaming)
        return await self._raw_predict(request, body, model, streaming)

    async def _generate(
        self, request: web.Request, body: bytes, model: str, streaming: bool
    ) -> web.StreamResponse:
        req = checked_request(body, model)
        if isinstance(req, web.Response):
            return req
        problem = gemini_problem(req)
        if problem is not None:
            return invalid_argument(problem)
        return await self._gemini.generate(request, req, model, streaming=streaming, venue=_GEMINI_ON_VERTEX)

    async def _raw_predict(
        self, request: web.Request, body: bytes, model: str, streaming: bool
    ) -> web.StreamResponse:
        request_id = "req_vrtx_" + self._state.ids.next_hex()
        messages = claude_body(body, anthropic_name(model), request_id)
        if isinstance(messages, web.Response):
            return messages
        req = self._claude.checked(messages, request_id)
        if isinstance(req, web.Response):
            return req
        name = req.model
        venue = Venue(PROVIDER, lambda fault, stream: claude_fault(fault, name, request_id, stream))
        return await self._claude.serve(
            request, req, request_id, streaming=streaming, venue=venue, scripted_as=model, id_prefix="vrtx_"
        )

    async def token(self, request: web.Request) -> web.Response:
        """Google's token endpoint (the JWT bearer grant of a service-account key)."""
        body = await request.read()
        self._record(request, b"")  # the signed assertion stays out of the log
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        answer = self.accounts.exchange(form)
        return _json(answer.body, answer.status)

    async def new_service_account(self, request: web.Request) -> web.Response:
        """A new service account's key file, its ``token_uri`` this mock's token endpoint."""
        try:
            spec = msgspec.json.decode(await request.read() or b"{}", type=_ServiceAccountBody)
        except msgspec.DecodeError as exc:
            return _json({"error": str(exc)}, 400)
        token_uri = f"{request.scheme}://{request.host}{PREFIX}/token"
        return _json(self.accounts.create(token_uri, spec.project, spec.email, spec.lifetime_s))

    async def tokens_issued(self, request: web.Request) -> web.Response:
        return _json({"issued": self.accounts.issued})
