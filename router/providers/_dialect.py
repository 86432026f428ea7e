"""The seam between the OpenAI wire format and a provider that speaks it: where a call goes, as whom.

``OpenAIAdapter`` builds the bodies, reads the answers and streams; a ``Dialect``, given to it at
construction, says what differs from one OpenAI-format provider to another: the URL of each API
(OpenAI's ``{base_url}/chat/completions``, Azure's deployment paths and ``api-version``), the headers
that authenticate a call (a bearer key, Azure's ``api-key``; a signature over the URL and body for
a provider that signs its requests), how its error answers map onto the router's errors, and the
tidying its chunk streams need before anything else reads them (``None``: none, at no cost).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Literal, Protocol

from router.catalog import Provider
from router.errors import RouterError
from router.providers.base import UpstreamCall
from router.types import ChatChunk

Api = Literal["chat", "responses", "embeddings", "completions"]
# The path of each API under an OpenAI-format base URL.
PATHS: dict[Api, str] = {
    "chat": "/chat/completions",
    "responses": "/responses",
    "embeddings": "/embeddings",
    "completions": "/completions",
}
# Rewrites one call's chunk stream as it is read (Azure: its filter annotations left out).
StreamTidy = Callable[[AsyncIterator[ChatChunk], UpstreamCall], AsyncGenerator[ChatChunk, None]]


class Dialect(Protocol):
    """What one OpenAI-format provider does its own way."""

    tidy_stream: StreamTidy | None

    def url(self, api: Api, deployment: str) -> str:
        """The URL of ``api`` for the model the provider knows as ``deployment``."""
        ...

    def headers(self, request_id: str, url: str, body: bytes) -> dict[str, str]:
        """A new dict of the headers of one call (the caller may add to it)."""
        ...

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> RouterError:
        """An error answer of the provider → the most specific router error."""
        ...


def base_headers(provider: Provider) -> dict[str, str]:
    """The headers every call of ``provider`` carries, before its credential and request id."""
    headers = {
        "content-type": "application/json",
        "accept": "application/json",
        "user-agent": "router/0.1",
    }
    headers.update(provider.headers)
    return headers
