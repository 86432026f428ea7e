"""What every OpenAI fake endpoint shares: its names, error envelope, body-decode 400, tiers and key check.

Chat Completions (``openai_chat``), the Responses API (``openai_responses``) and legacy Completions and
Embeddings (``openai_legacy``) each build on this module; ``openai_fake`` composes them into one fake.
"""

from __future__ import annotations

import re
from typing import ClassVar, Final

import msgspec
from aiohttp import web

from router.mock._base import MISSING_FIELD, fault_headers, split_validation_error
from router.mock.faults import MockState
from router.mock.faultspec import Fault

PROVIDER: Final = "openai"
PREFIX: Final = "/openai/v1"
MODELS: Final = ("gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4o-mini", "o4-mini")
"""The chat models (served on Chat Completions and the Responses API)."""
REASONING_MODEL: Final = re.compile(r"gpt-5|o\d")
"""Matches (``.match``) the model names that reason: no ``max_tokens`` on chat, a reasoning item first."""
STREAM_ERROR_MESSAGE: Final = "The server had an error while processing your request."
CACHE_MINIMUM_TOKENS: Final = 1024
"""OpenAI caches prompt prefixes automatically from this length on, in 128-token steps."""


# --- error envelope ------------------------------------------------------------------------------


class _ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody


def openai_error(
    status: int,
    message: str,
    error_type: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An OpenAI error response: ``{"error": {message, type, param, code}}`` with ``status``."""
    body = msgspec.json.encode(_ErrorEnvelope(_ErrorBody(message, error_type, param, code)))
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> web.Response:
    return openai_error(400, message, "invalid_request_error", param=param, code=code)


def not_found(request: web.BaseRequest) -> web.Response:
    """OpenAI's answer to an unknown path."""
    return openai_error(404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error")


def fault_error(fault: Fault, model: str) -> web.Response:
    """Render a ``status`` fault as OpenAI would send it."""
    message, error_type, code = _default_error(fault.status, model)
    return openai_error(
        fault.status,
        fault.message if fault.message is not None else message,
        fault.type if fault.type is not None else error_type,
        param=fault.param,
        code=fault.code if fault.code is not None else code,
        headers=fault_headers(fault, with_ms=True),
    )


def stream_error_event(fault: Fault) -> bytes:
    """The in-band SSE error event of a ``stream_error`` fault; the fault's fields override the defaults."""
    error = _ErrorBody(
        fault.message if fault.message is not None else STREAM_ERROR_MESSAGE,
        fault.type if fault.type is not None else "server_error",
        fault.param,
        fault.code,
    )
    return b"data: " + msgspec.json.encode(_ErrorEnvelope(error)) + b"\n\n"


def _default_error(status: int, model: str) -> tuple[str, str, str | None]:
    if status == 429:
        return (
            f"Rate limit reached for {model} in organization org-mock on requests per min (RPM): "
            "Limit 60, Used 60, Requested 1. Please try again in 1s. "
            "Visit https://platform.openai.com/account/rate-limits to learn more.",
            "requests",
            "rate_limit_exceeded",
        )
    if status == 503:
        return "The engine is currently overloaded, please try again later", "server_error", None
    if status >= 500:
        return (
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        )
    if status == 401:
        return "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
    if status == 404:
        return (
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        )
    return f"Mock error {status}.", "invalid_request_error", None


# --- request checks every endpoint makes ---------------------------------------------------------


def decode_failure(exc: msgspec.DecodeError, prefix: str = "") -> web.Response:
    """OpenAI's 400 for a body that is not JSON or does not fit the request type; ``prefix`` is the
    parameter path of the part that was converted (``input[2]``) when it is not the whole body."""
    if not isinstance(exc, msgspec.ValidationError):
        return invalid_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was "
            "not valid JSON. If you have trouble figuring out how to fix this, please contact us through "
            "our help center at help.openai.com.)"
        )
    detail, path = split_validation_error(exc)
    path = (prefix + path).lstrip(".")
    missing = MISSING_FIELD.match(detail)
    if missing:
        param = f"{path}.{missing['field']}" if path else missing["field"]
        return invalid_request(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    if not path:
        return invalid_request(f"Invalid body: {detail}.")
    return invalid_request(f"Invalid type for '{path}': {detail}.", param=path, code="invalid_type")


def invalid_tier(requested: str | None) -> web.Response:
    """The 400 for a ``service_tier`` that ``served_tier`` does not know."""
    return invalid_request(
        f"Invalid value: '{requested}'. Supported values are: "
        "'auto', 'default', 'flex', 'scale', 'priority' and 'fast'.",
        param="service_tier",
        code="invalid_value",
    )


def served_tier(requested: str | None) -> str | None:
    """The tier echoed in the response (see flex-and-tiers.md §3.7); ``None`` for an unknown value."""
    match requested:
        case None | "auto" | "default":
            return "default"
        case "fast" | "priority":
            return "priority"
        case "flex" | "scale":
            return requested
        case _:
            return None


class OpenAIGate:
    """The way into every OpenAI endpoint: read and record the body, then check the key against ``state``.

    The endpoints ask it, too, under which provider name to look up faults and speed, and how to render a
    fault: a provider that speaks OpenAI's format its own way (Azure) subclasses it.
    """

    __slots__ = ("state",)
    provider: ClassVar[str] = PROVIDER

    def __init__(self, state: MockState) -> None:
        self.state = state

    async def admit(self, request: web.BaseRequest) -> tuple[bytes, web.Response | None]:
        """Read and record the body, then check the key: the body and the 401 (``None`` when let in)."""
        body = await request.read()
        self.state.record(request, self.provider, body)
        return body, self.denied(request)

    def fault_error(self, fault: Fault, model: str) -> web.Response:
        """A ``status`` fault as this provider sends it."""
        return fault_error(fault, model)

    def stream_error_event(self, fault: Fault) -> bytes:
        """A ``stream_error`` fault's in-band event as this provider sends it."""
        return stream_error_event(fault)

    def denied(self, request: web.BaseRequest) -> web.Response | None:
        """OpenAI's 401 for a missing or wrong key; ``None`` when the key is accepted (or none is set)."""
        required = self.state.required_key(PROVIDER)
        if required is None:
            return None
        given = request.headers.get("Authorization", "")
        if given == f"Bearer {required}":
            return None
        key = given.removeprefix("Bearer ").strip()
        shown = f"{key[:3]}{'*' * max(len(key) - 7, 0)}{key[-4:]}" if len(key) > 7 else key or "(none)"
        return openai_error(
            401,
            f"Incorrect API key provided: {shown}. "
            "You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            code="invalid_api_key",
        )
