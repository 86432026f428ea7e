"""Azure OpenAI: OpenAI's wire format at Azure's URLs, with Azure's credential header and error extras.

``AzureDialect`` is handed to ``OpenAIAdapter``, which builds and reads every body; nothing of the
OpenAI translation is repeated here. Policy:

- URLs: ``api: v1`` → ``{endpoint}/openai/v1/{path}`` (``?api-version=preview`` only when asked);
  ``api: deployments`` → ``{endpoint}/openai/deployments/{deployment}/{path}?api-version=...`` for
  chat and embeddings, ``{endpoint}/openai/responses?api-version=...`` for the Responses API (no
  deployment segment there, as in the official SDK). The body's ``model`` is the deployment name
  either way (the catalog's ``upstream``); the answer's ``model`` (the model version) is not read.
- Credential: ``api-key: <key>``, or ``Authorization: Bearer <token>`` for a Microsoft Entra ID token.
- Answers: Azure's content-filter annotations (``prompt_filter_results``, ``content_filter_results``)
  are not part of OpenAI's schema and are left out of what clients receive; ``finish_reason:
  content_filter`` passes through as it is. In streams, the chunks that carry only annotations (the
  first chunk, with ``choices: []``; the asynchronous filter's ``content_filter_offsets`` chunks) are
  dropped, and chunks Azure sends with an empty ``id``/``object``/``model`` get the stream's own.
- Errors: a prompt refused by the filter (400 ``content_filter``) is the client's ``ContentFiltered``
  with Azure's ``innererror`` passed on; a missing deployment, an endpoint without the API or an API
  version Azure refuses are the catalog's fault (502, another model may serve); a refused key is the
  router's (502); a 429 says when to retry in its headers or, failing those, in its message.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from urllib.parse import quote

import msgspec

from router.catalog import Provider
from router.errors import DECODE_ERRORS, ContentFiltered, RouterError, UpstreamStatusError
from router.providers._dialect import PATHS, Api, StreamTidy, base_headers
from router.providers._errors import refused_credentials, scrub
from router.providers._http import retry_after_seconds
from router.providers.base import UpstreamCall
from router.types import ChatChunk, Delta, Usage

# --- constants -----------------------------------------------------------------------------------

V1_PREFIX = "/openai/v1"
DEPLOYMENTS_PREFIX = "/openai/deployments/"
# The APIs whose path names the deployment on the deployments form (the others name it in the body).
DEPLOYMENT_SCOPED: frozenset[Api] = frozenset({"chat", "embeddings", "completions"})
FILTER_CODE = "content_filter"
FILTER_INNER_CODE = "ResponsibleAIPolicyViolation"
CHUNK_OBJECT = "chat.completion.chunk"
_RETRY_TEXT = re.compile(r"retry after (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)
_NO_DELTA = Delta()
_NO_DETAIL = msgspec.Raw(b"")

# --- wire types ----------------------------------------------------------------------------------


class _InnerView(msgspec.Struct):
    code: str | None = None


class _AzureError(msgspec.Struct):
    message: str = ""
    type: str | None = None
    param: str | None = None
    code: str | int | None = None
    # Azure's detail, kept as sent (empty when absent); the v1 reference spells it ``inner_error``, the
    # wire ``innererror``.
    innererror: msgspec.Raw = _NO_DETAIL
    inner_error: msgspec.Raw = _NO_DETAIL


class _Envelope(msgspec.Struct):
    error: _AzureError | str | None = None
    # The gateway's own envelope for a missing key or a bad token: {"statusCode": 401, "message": ...}.
    message: str | None = None


_decode_envelope = msgspec.json.Decoder(_Envelope).decode
_decode_inner = msgspec.json.Decoder(_InnerView).decode

# --- stream translator ---------------------------------------------------------------------------


async def tidy_chunks(
    chunks: AsyncIterator[ChatChunk], call: UpstreamCall
) -> AsyncGenerator[ChatChunk, None]:
    """Azure's chunk stream as OpenAI's: annotation-only chunks dropped, empty ids filled in."""
    stamp: ChatChunk | None = None
    async for chunk in chunks:
        if chunk.choices:
            kept = [c for c in chunk.choices if c.finish_reason is not None or c.delta != _NO_DELTA]
            if not kept:
                continue  # content-filter annotations (offsets, verdicts) and nothing else
            chunk.choices = kept
        elif not isinstance(chunk.usage, Usage):
            continue  # the prompt's filter verdicts, before any output
        if chunk.id:
            stamp = chunk
        elif stamp is not None:
            chunk.id, chunk.created, chunk.model = stamp.id, stamp.created, stamp.model
        else:
            chunk.id, chunk.created, chunk.model = (
                f"chatcmpl-{call.request_id}",
                call.created,
                call.model.upstream,
            )
        chunk.object = CHUNK_OBJECT
        yield chunk


# --- error mapper --------------------------------------------------------------------------------


def map_error(status: int, body: bytes, headers: Mapping[str, str], provider: Provider) -> RouterError:
    """An Azure error answer → router error (see the module's docstring for the policy)."""
    message = f"provider '{provider.name}' answered HTTP {status}"
    error_type: str | None = None
    param: str | None = None
    code: str | None = None
    inner = _NO_DETAIL
    try:
        envelope = _decode_envelope(body)
    except DECODE_ERRORS:
        envelope = _Envelope()
    error = envelope.error
    if isinstance(error, _AzureError):
        message = error.message or message
        error_type, param = error.type, error.param
        code = str(error.code) if error.code is not None else None
        inner = error.innererror if _present(error.innererror) else error.inner_error
    elif isinstance(error, str):
        message = error
    elif envelope.message:
        message = envelope.message
    message = scrub(message, provider)
    if status == 400 and (code == FILTER_CODE or _inner_code(inner) == FILTER_INNER_CODE):
        detail = bytes(inner) if _present(inner) else None
        return ContentFiltered(message, param=param or "prompt", inner_error=detail)
    if status in (401, 403):
        return refused_credentials(provider, message)
    if status == 404 or (status == 400 and "api version" in message.lower()):
        return _misconfigured(provider, status, message, code)
    retry_after = retry_after_seconds(headers)
    if status == 429 and retry_after is None:
        found = _RETRY_TEXT.search(message)
        retry_after = float(found.group(1)) if found else None
    if code is not None and code.isdigit():
        code = "rate_limit_exceeded" if status == 429 else None  # Azure repeats the status as the code
    return UpstreamStatusError(
        status,
        message,
        error_type=error_type,
        param=param,
        code=code,
        retry_after=retry_after,
        provider=provider.name,
    )


def _present(raw: msgspec.Raw) -> bool:
    return len(raw) > 0 and bytes(raw) != b"null"


def _inner_code(inner: msgspec.Raw) -> str | None:
    if not _present(inner):
        return None
    try:
        return _decode_inner(inner).code
    except DECODE_ERRORS:
        return None


def _misconfigured(provider: Provider, status: int, message: str, code: str | None) -> UpstreamStatusError:
    """No such deployment, no such API at the endpoint, or a refused API version: the catalog's
    fault, not the client's request (a gateway failure: another model may serve)."""
    return UpstreamStatusError(
        502,
        f"provider '{provider.name}' answered HTTP {status} ({code or 'no code'}): {message} "
        "Check its endpoint, api form and api_version, and that each model's upstream names a "
        "deployment of the resource.",
        error_type="upstream_error",
        code="upstream_misconfigured",
        provider=provider.name,
    )


# --- dialect: URLs, headers and errors of one provider ------------------------------------------


class AzureDialect:
    """Where each call of one Azure OpenAI provider goes, as whom, and what its errors mean."""

    __slots__ = ("_base", "_deployments", "_provider", "_query", "_urls", "tidy_stream")

    def __init__(self, provider: Provider) -> None:
        access = provider.azure
        if access is None:
            raise ValueError(f"provider '{provider.name}' is not of kind 'azure'")
        self._provider = provider
        endpoint = provider.base_url
        self._query = f"?api-version={quote(access.api_version)}" if access.api_version else ""
        if access.api == "v1":
            self._deployments = ""
            self._urls = {api: f"{endpoint}{V1_PREFIX}{path}{self._query}" for api, path in PATHS.items()}
        else:
            self._deployments = endpoint + DEPLOYMENTS_PREFIX
            self._urls = {"responses": f"{endpoint}/openai/responses{self._query}"}
        base = base_headers(provider)
        key = provider.api_key
        if key:
            if access.auth == "entra":
                base["authorization"] = f"Bearer {key}"
            else:
                base["api-key"] = key
        self._base = base
        self.tidy_stream: StreamTidy | None = tidy_chunks

    def url(self, api: Api, deployment: str) -> str:
        if self._deployments and api in DEPLOYMENT_SCOPED:
            return f"{self._deployments}{quote(deployment, safe='')}{PATHS[api]}{self._query}"
        return self._urls[api]

    def headers(self, request_id: str, url: str, body: bytes) -> dict[str, str]:
        headers = self._base.copy()
        headers["x-client-request-id"] = request_id  # Azure echoes it as x-ms-client-request-id
        return headers

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> RouterError:
        return map_error(status, body, headers, self._provider)
