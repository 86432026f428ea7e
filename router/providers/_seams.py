"""The seams of the two translating adapters: where a Gemini or Claude call goes, as whom, and what
its error answers mean.

``GeminiAdapter`` and ``AnthropicAdapter`` build every body and read every answer; a route, given to
each at construction, says what differs between the provider's own API and another host of the same
models: Google's Gemini API against Gemini on Vertex AI (``{base}/models/{m}:generateContent`` with a
key, against ``.../publishers/google/models/{m}:generateContent`` with an OAuth token), Anthropic's
Messages API against Claude on Vertex AI (``/v1/messages`` with ``x-api-key``, against
``.../publishers/anthropic/models/{m}:rawPredict`` with the version in the body and no ``model``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from router.errors import RouterError


class GeminiRoute(Protocol):
    """Where the calls of a Gemini-format provider go, and as whom."""

    def url(self, model: str, method: str) -> str:
        """The URL of ``method`` (``generateContent``, ``streamGenerateContent?alt=sse``,
        ``batchEmbedContents``) for ``model``."""
        ...

    async def headers(self) -> dict[str, str]:
        """The headers of one call (waits only when a credential must be fetched first)."""
        ...

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> RouterError:
        """An error answer → the most specific router error."""
        ...


class ClaudeRoute(Protocol):
    """Where the calls of an Anthropic-format provider go, and as whom."""

    # The ``anthropic_version`` a body carries in place of ``model`` (Vertex AI); ``None``: the body
    # names its model and the version travels as a header.
    body_version: str | None

    def url(self, model: str, *, stream: bool) -> str: ...

    async def headers(self, *, stream: bool) -> dict[str, str]: ...

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> RouterError: ...
