"""The error envelopes two adapters each read: Anthropic's (its own API, and Claude on Vertex AI) and
Google's RPC status (the Gemini API, and every Vertex AI front-end error), mapped onto router errors.

A refused credential (401/403) is the caller's to word: each provider knows what to fix, so the
mappers take a ``refused`` callable for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from router.catalog import Provider
from router.errors import DECODE_ERRORS, RouterError, UpstreamStatusError
from router.providers._errors import scrub
from router.providers._http import retry_after_seconds

# Words a refused credential's message is built from (the upstream's own message).
Refused = Callable[[str], RouterError]
GOOGLE_TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_error"}

# --- wire types ----------------------------------------------------------------------------------


class GoogleError(msgspec.Struct):
    code: int = 500
    message: str = ""
    status: str = ""
    details: list[dict[str, Any]] = []


class _GoogleEnvelope(msgspec.Struct):
    error: GoogleError | None = None


class _AnthropicError(msgspec.Struct):
    type: str = "api_error"
    message: str = ""


class _AnthropicEnvelope(msgspec.Struct):
    error: _AnthropicError | None = None


_decode_any = msgspec.json.Decoder().decode
_decode_anthropic = msgspec.json.Decoder(_AnthropicEnvelope).decode

# --- Google --------------------------------------------------------------------------------------


def google_error(body: bytes) -> GoogleError | None:
    """The ``error`` of a Google RPC status body; streaming methods may wrap it in a one-element array."""
    try:
        payload = _decode_any(body)
        if isinstance(payload, list) and payload:
            payload = payload[0]
        return msgspec.convert(payload, _GoogleEnvelope).error
    except DECODE_ERRORS:
        return None


def retry_delay(error: GoogleError | None, headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: a ``RetryInfo`` detail's ``retryDelay`` ("12s"), else ``Retry-After``."""
    for detail in error.details if error else ():
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            with contextlib.suppress(ValueError):
                return float(delay[:-1])
    return retry_after_seconds(headers)


def map_google_error(
    status: int, body: bytes, headers: Mapping[str, str], provider: Provider, refused: Refused
) -> RouterError:
    """A Google RPC error answer → router error: the status as sent, its ``status`` name as the code."""
    error = google_error(body)
    message = scrub(
        (error.message if error else "") or f"provider '{provider.name}' answered HTTP {status}", provider
    )
    details = error.details if error else []
    if status in (401, 403) or any(d.get("reason") == "API_KEY_INVALID" for d in details):
        return refused(message)
    kind = GOOGLE_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = error.status if error and error.status else None
    return UpstreamStatusError(
        status,
        message,
        error_type=kind,
        code=code,
        retry_after=retry_delay(error, headers),
        provider=provider.name,
    )


# --- Anthropic -----------------------------------------------------------------------------------


def is_anthropic_error(body: bytes) -> bool:
    """Whether ``body`` is Anthropic's envelope (``{"type": "error", "error": {type, message}}``)."""
    try:
        payload = _decode_any(body)
    except DECODE_ERRORS:
        return False
    return isinstance(payload, dict) and payload.get("type") == "error"


def map_anthropic_error(
    status: int, body: bytes, headers: Mapping[str, str], provider: Provider, refused: Refused
) -> RouterError:
    """An Anthropic error answer → router error; 529 and ``overloaded_error`` become OpenAI's 503."""
    try:
        error = _decode_anthropic(body).error
    except DECODE_ERRORS:
        error = None
    kind = error.type if error else "api_error"
    message = scrub(
        (error.message if error else "") or f"provider '{provider.name}' answered HTTP {status}", provider
    )
    if status in (401, 403):
        return refused(message)
    retry_after = retry_after_seconds(headers)
    if status == 529 or kind == "overloaded_error":
        # OpenAI clients know 503 as "overloaded"; 529 is Anthropic's own.
        return UpstreamStatusError(
            503,
            message,
            error_type="overloaded_error",
            code="overloaded",
            retry_after=retry_after,
            provider=provider.name,
        )
    openai_type = {"rate_limit_error": "rate_limit_error", "api_error": "server_error"}.get(kind, kind)
    return UpstreamStatusError(
        status, message, error_type=openai_type, retry_after=retry_after, provider=provider.name
    )
