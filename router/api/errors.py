"""The one place where errors become HTTP answers: the OpenAI error envelope with OpenAI's statuses."""

from __future__ import annotations

import logging
import math
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from router.errors import (
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RouterError,
)

JSON = "application/json"
_log = logging.getLogger("router.api")


class _ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None
    # A provider's detail of the error, as it sent it (Azure's content-filter verdicts).
    innererror: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class _Envelope(msgspec.Struct):
    error: _ErrorBody


_encode = msgspec.json.Encoder().encode


def error_json(exc: RouterError) -> bytes:
    """The envelope's bytes; also what an in-band stream error event carries."""
    inner = msgspec.Raw(exc.inner_error) if exc.inner_error is not None else msgspec.UNSET
    return _encode(_Envelope(_ErrorBody(exc.message, exc.error_type, exc.param, exc.code, inner)))


def error_headers(exc: RouterError) -> dict[str, str]:
    headers = dict(exc.headers)
    if exc.retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
        headers["retry-after-ms"] = str(int(exc.retry_after * 1000))
    if not exc.client_should_retry:
        headers["x-should-retry"] = "false"
    if exc.closes_connection:
        headers["connection"] = "close"
    return headers


def error_response(exc: RouterError) -> Response[bytes]:
    return Response(
        content=error_json(exc), status_code=exc.status, media_type=JSON, headers=error_headers(exc)
    )


def from_http_exception(exc: HTTPException, method: str = "") -> RouterError:
    """Litestar's own rejections (unknown route, wrong method, body too large) in our hierarchy."""
    status = exc.status_code
    if status == 404:
        return NotFound("Unknown request URL. GET /v1/models or /help lists what this router serves.")
    if status == 405:
        allow = (exc.headers or {}).get("allow", "")
        use = f": use {allow.replace(', ', ' or ')}" if allow else ""
        return MethodNotAllowed(
            f"Method {method or 'this method'} is not allowed for this URL{use}.",
            headers={"allow": allow} if allow else None,
        )
    if status == 413:
        return PayloadTooLarge("The request body is larger than this router accepts (ROUTER_MAX_BODY_BYTES).")
    if status < 500:
        error = InvalidRequest(str(exc.detail))
        error.status = status
        return error
    return InternalError("The router failed to handle this request.")


def handle_router_error(_: Request[Any, Any, Any], exc: RouterError) -> Response[bytes]:
    return error_response(exc)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    return error_response(from_http_exception(exc, request.method))


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # Logged with the traceback for operators; the client sees only an envelope.
    _log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(InternalError("The router failed to handle this request."))


EXCEPTION_HANDLERS = {
    RouterError: handle_router_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
