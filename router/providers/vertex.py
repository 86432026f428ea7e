"""Adapter for Google Vertex AI: the Gemini and Claude models of a Google Cloud project, served by the
Gemini and Anthropic adapters through Vertex's routes; nothing of either translation is repeated here.

Policy:

- URLs: ``{base}/v1/projects/{project}/locations/{region}/publishers/{publisher}/models/{model}:{method}``
  (``base``: the region's host, ``https://aiplatform.googleapis.com`` for ``global``; see
  ``router.catalog.vertex``). The publisher follows from the model id: ``gemini-*`` is Google's,
  ``claude-*`` Anthropic's.
- Gemini: ``generateContent`` and ``streamGenerateContent?alt=sse``, with the Gemini API's bodies (every
  content carries its role; system text only in ``systemInstruction``). Embeddings are not served.
- Claude: ``rawPredict`` and ``streamRawPredict``, with Anthropic's Messages body less ``model`` (the
  URL names it), plus ``"anthropic_version": "vertex-2023-10-16"``; a stream's body keeps
  ``"stream": true``, as Anthropic's SDK sends it.
- Credentials: ``Authorization: Bearer`` with a token from a ``TokenSource``: a static one, or
  google-auth's, refreshed ahead of expiry off the event loop; ``x-goog-user-project`` when the
  credentials name a quota project.
- Errors come in Google's RPC envelope from Vertex's front end (possibly as a one-element array, on
  streaming methods) and in Anthropic's from Claude itself; both are read. 401: the token is dropped
  (the next call fetches another) and the answer is a 502 naming where the credentials came from
  and what to fix; 403: a 502 naming the role and the API to enable; 404 and 400
  ``FAILED_PRECONDITION`` (a wrong model id or region, a model not enabled in Model Garden): the
  catalog's fault, 502 ``upstream_misconfigured``; 429 ``RESOURCE_EXHAUSTED``: 429, retried or
  passed on with the wait of its ``RetryInfo`` or ``Retry-After``; Claude's 529 and
  ``overloaded_error``: 503; other statuses as sent.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from functools import partial
from urllib.parse import quote

from router.catalog import Provider
from router.catalog.vertex import CREDENTIALS_ENV, VertexAccess, publisher_of
from router.clock import Clock
from router.errors import RouterError, UpstreamStatusError
from router.providers._envelopes import (
    google_error,
    is_anthropic_error,
    map_anthropic_error,
    map_google_error,
)
from router.providers._errors import scrub
from router.providers._google_auth import GoogleCredentials
from router.providers._tokens import RefreshingToken, StaticToken, TokenSource
from router.providers.base import ChatAdapter, UpstreamCall
from router.types import ChatChunk, ChatCompletion

# --- constants -----------------------------------------------------------------------------------

API_VERSION = "v1"
ANTHROPIC_VERSION = "vertex-2023-10-16"
MISCONFIGURED = frozenset({"FAILED_PRECONDITION"})

# --- error mapper --------------------------------------------------------------------------------


def credential_source(access: VertexAccess) -> str:
    """Where the router's credentials come from, in words for an error message."""
    if access.credentials == "token":
        return f"the access token in {access.token_env}"
    if access.credentials == "file":
        return f"the key file {CREDENTIALS_ENV} names"
    return "application default credentials"


def credential_fix(access: VertexAccess) -> str:
    """What to do when those credentials are refused or cannot be had."""
    if access.credentials == "token":
        return (
            f"set {access.token_env} to a fresh token (`gcloud auth print-access-token`; tokens last an "
            "hour), or unset it to let google-auth fetch and refresh tokens"
        )
    if access.credentials == "file":
        return f"check the key file {CREDENTIALS_ENV} names: a service account key that exists and is enabled"
    return (
        f"set {CREDENTIALS_ENV} to a service account key file, run `gcloud auth application-default "
        "login`, or attach a service account where the router runs on Google Cloud"
    )


def no_token(provider: Provider, reason: str) -> UpstreamStatusError:
    """The router could not get an access token: a gateway failure naming what to fix."""
    access = _access(provider)
    return UpstreamStatusError(
        502,
        f"provider '{provider.name}' has no Google access token ({credential_source(access)}): "
        f"{scrub(reason, provider)}. To fix: {credential_fix(access)}.",
        error_type="upstream_auth_error",
        code="upstream_auth_failed",
        provider=provider.name,
    )


def map_error(
    status: int, body: bytes, headers: Mapping[str, str], provider: Provider, tokens: TokenSource
) -> RouterError:
    """A Vertex AI error answer → router error (see the module's docstring for the policy)."""
    access = _access(provider)
    refused = partial(_refused, provider, access, status)
    if status == 401:
        tokens.refused()
    error = google_error(body)
    if status == 404 or (error is not None and error.status in MISCONFIGURED):
        text = scrub(error.message if error else f"HTTP {status}", provider)
        return UpstreamStatusError(
            502,
            f"provider '{provider.name}' answered HTTP {status} ({error.status if error else 'no status'}): "
            f"{text} Check the model id (a Claude id carries its version after an @, as in "
            f"claude-sonnet-4-5@20250929) and that the model is enabled (Model Garden) and served in "
            f"region '{access.region}' of project '{access.project}'.",
            error_type="upstream_error",
            code="upstream_misconfigured",
            provider=provider.name,
        )
    if is_anthropic_error(body):
        return map_anthropic_error(status, body, headers, provider, refused)
    return map_google_error(status, body, headers, provider, refused)


def _refused(provider: Provider, access: VertexAccess, status: int, message: str) -> RouterError:
    """A 401 refuses the router's token; a 403 says its identity may not call Vertex AI here."""
    who = credential_source(access)
    if status == 403:
        detail = (
            f"provider '{provider.name}': the router's credentials ({who}) may not call Vertex AI in "
            f"project '{access.project}': {message} To fix: grant them the role roles/aiplatform.user "
            "on the project, and enable the Vertex AI API (aiplatform.googleapis.com) there."
        )
    else:
        detail = (
            f"provider '{provider.name}' refused the router's credentials ({who}): {message} "
            f"To fix: {credential_fix(access)}."
        )
    return UpstreamStatusError(
        502, detail, error_type="upstream_auth_error", code="upstream_auth_failed", provider=provider.name
    )


def _access(provider: Provider) -> VertexAccess:
    if provider.vertex is None:
        raise ValueError(f"provider '{provider.name}' is not of kind 'vertex'")
    return provider.vertex


# --- routes: where each publisher's calls go, as whom ----------------------------------------------


class VertexCalls:
    """What both publishers' calls share: the project's URL prefix, the bearer token, the errors."""

    __slots__ = ("_base", "_provider", "prefix", "tokens")

    def __init__(self, provider: Provider, tokens: TokenSource) -> None:
        access = _access(provider)
        self._provider = provider
        self.tokens = tokens
        self.prefix = (
            f"{provider.base_url}/{API_VERSION}/projects/{quote(access.project, safe=':')}"
            f"/locations/{access.region}/publishers/"
        )
        self._base = {"content-type": "application/json", "user-agent": "router/0.1", **provider.headers}

    def url(self, publisher: str, model: str, method: str) -> str:
        return f"{self.prefix}{publisher}/models/{quote(model, safe='@')}:{method}"

    async def headers(self, accept: str) -> dict[str, str]:
        grant = await self.tokens.grant()
        headers = self._base.copy()
        headers["accept"] = accept
        headers["authorization"] = f"Bearer {grant.token}"
        if grant.quota_project:
            headers["x-goog-user-project"] = grant.quota_project
        return headers

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> RouterError:
        return map_error(status, body, headers, self._provider, self.tokens)


class VertexGemini:
    """The route of Gemini models on Vertex AI (``publishers/google``)."""

    __slots__ = ("_calls",)

    def __init__(self, calls: VertexCalls) -> None:
        self._calls = calls

    def url(self, model: str, method: str) -> str:
        return self._calls.url("google", model, method)

    async def headers(self) -> dict[str, str]:
        return await self._calls.headers("application/json")

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> RouterError:
        return self._calls.map_error(status, body, headers)


class VertexClaude:
    """The route of Claude models on Vertex AI (``publishers/anthropic``)."""

    __slots__ = ("_calls", "body_version")

    def __init__(self, calls: VertexCalls) -> None:
        self._calls = calls
        self.body_version: str | None = ANTHROPIC_VERSION

    def url(self, model: str, *, stream: bool) -> str:
        return self._calls.url("anthropic", model, "streamRawPredict" if stream else "rawPredict")

    async def headers(self, *, stream: bool) -> dict[str, str]:
        return await self._calls.headers("text/event-stream" if stream else "application/json")

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> RouterError:
        return self._calls.map_error(status, body, headers)


def vertex_tokens(provider: Provider, clock: Clock) -> TokenSource:
    """The provider's token source: its static token, or google-auth's kept fresh (started here when
    the provider is configured and a loop runs, so the first request finds a token waiting)."""
    access = _access(provider)
    if access.credentials == "token" and provider.api_key:
        return StaticToken(provider.api_key)
    tokens = RefreshingToken(
        GoogleCredentials(access.credentials_file), clock, partial(no_token, provider), name=provider.name
    )
    if provider.configured:
        tokens.start()
    return tokens


# --- I/O -----------------------------------------------------------------------------------------


class VertexAdapter:
    """Chat Completions against a Vertex AI project: each call to the adapter of its model's publisher."""

    def __init__(self, gemini: ChatAdapter, claude: ChatAdapter, tokens: TokenSource) -> None:
        self._gemini = gemini
        self._claude = claude
        self._tokens = tokens

    def _for(self, call: UpstreamCall) -> ChatAdapter:
        return self._claude if publisher_of(call.model.upstream) == "anthropic" else self._gemini

    async def complete(self, call: UpstreamCall) -> ChatCompletion:
        return await self._for(call).complete(call)

    def stream(self, call: UpstreamCall) -> AsyncGenerator[ChatChunk, None]:
        return self._for(call).stream(call)

    async def aclose(self) -> None:
        await self._tokens.aclose()
        await self._gemini.aclose()
        await self._claude.aclose()
