"""The router's edge, in front of every route: a request id, header bounds (431), CORS, and API keys
(401). It answers these rejections itself, in the OpenAI error envelope, before any route runs.

Routes are closed by default: only the public ones (help, liveness) skip the key; the ops routes take
the ops key when one is configured; every other path, with or without the ``/v1`` prefix, takes a
client key whenever keys are configured.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from itertools import chain
from typing import Any, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from router.access import ApiKey
from router.api.access import KEY_SCOPE
from router.api.errors import error_headers, error_json
from router.api.middleware import REQUEST_ID_KEY, new_request_id
from router.api.policy import EdgePolicy
from router.api.services import Services
from router.errors import (
    AuthenticationFailed,
    HeadersTooLarge,
    InternalError,
    InvalidRequest,
    PermissionDenied,
    RouterError,
)
from router.telemetry.logging import RequestLog
from router.telemetry.record import RequestRecord

_log = logging.getLogger("router.api")
PUBLIC_PATHS = frozenset({"/", "/help", "/v1/help", "/health/live", "/dashboard", "/openapi.json"})
OPS_PATHS = frozenset(
    {
        "/health",
        "/metrics",
        "/model-health",
        "/v1/model-health",
        "/model-health/series",
        "/v1/model-health/series",
        "/model-health/spend",
        "/v1/model-health/spend",
    }
)
OPS_PREFIXES = ("/admin/",)
EXPOSED = (
    "x-request-id, retry-after, retry-after-ms, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, "
    "x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, "
    "x-ratelimit-reset-tokens, x-router-model, x-router-provider, x-router-strategy, x-router-attempts, "
    "x-router-overhead-ms, x-router-cost-usd, x-router-fallback-reason, x-router-deployment, "
    "x-router-cache, age"
)


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``x-api-key: <key>``."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value:
            return value.decode("latin-1").strip()
    return None


class Edge:
    """ASGI wrapper around the app; lifespan and other scopes pass straight through."""

    def __init__(
        self,
        app: ASGIApp,
        services: Services,
        request_log: RequestLog,
        *,
        hot: Mapping[str, ASGIApp] | None = None,
    ) -> None:
        """``hot`` maps exact paths to the raw ASGI routes that are called without Litestar. The
        keys, CORS and header bounds come from ``services.policy``, the catalog in force."""
        self.app = app
        self.hot: Mapping[str, ASGIApp] = hot or {}
        self.services = services
        self.request_log = request_log
        self.in_flight = services.in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        state = cast(dict[str, Any], scope)
        state[REQUEST_ID_KEY] = request_id
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        raw = scope["headers"]
        headers = raw if isinstance(raw, list) else list(raw)
        policy = self.services.policy  # read once: a reload swaps it whole
        origin = _origin(policy, headers) if policy.origins else None
        if origin is not None:
            extra.append((b"access-control-allow-origin", origin.encode("latin-1")))
            extra.append((b"vary", b"origin"))
            extra.append((b"access-control-expose-headers", EXPOSED.encode()))
            if policy.cors.allow_credentials:
                extra.append((b"access-control-allow-credentials", b"true"))
            if scope["method"] == "OPTIONS" and any(
                n == b"access-control-request-method" for n, _ in headers
            ):
                await _preflight(policy, send, extra)
                return
        problem = _check(policy, scope, headers, state)
        if problem is not None:
            self._record(request_id, "edge", scope, problem.status, problem.code, 0.0)
            await _reject(send, problem, extra)
            return

        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        in_flight = self.in_flight
        in_flight.count += 1
        clock = self.services.clock
        started = clock.monotonic()
        try:
            route = self.hot.get(scope["path"])
            if route is None:
                await self.app(scope, receive, send_with_headers)
                if status >= 500:
                    # The other routes write no request line of their own; a failure must be seen.
                    elapsed = clock.monotonic() - started
                    self._record(request_id, "other", scope, status, "server_error", elapsed)
                return
            # The model routes are called directly: Litestar's routing and middleware cost more
            # per request than the rest of the edge. Their errors are rendered here, the same way.
            try:
                await route(scope, receive, send_with_headers)
            except RouterError as exc:
                if status:
                    raise
                await _reject(send, exc, extra)
            except Exception:
                # A defect, not a request the route could refuse: it wrote no request line, so the
                # edge does, and the answer is the envelope (never a trace).
                _log.exception("unhandled error on %s %s", scope.get("method"), scope["path"])
                elapsed = clock.monotonic() - started
                self._record(request_id, _route_name(scope["path"]), scope, 500, "internal_error", elapsed)
                if status:
                    raise
                await _reject(send, InternalError("The router failed to handle this request."), extra)
        finally:
            in_flight.count -= 1

    def _record(
        self, request_id: str, route: str, scope: Scope, status: int, error: str | None, elapsed_s: float
    ) -> None:
        key: ApiKey | None = cast(dict[str, Any], scope).get(KEY_SCOPE)
        self.request_log.write(
            RequestRecord(
                request_id=request_id,
                route=route,
                key=key.name if key is not None else None,
                model_asked=None,
                stream=False,
                status=status,
                duration_ms=round(elapsed_s * 1000.0, 2),
                attempts=(),
                error=error,
                path=scope["path"][:200],
            )
        )


def _check(
    policy: EdgePolicy, scope: Scope, headers: list[tuple[bytes, bytes]], state: dict[str, Any]
) -> RouterError | None:
    if scope.get("http_version") == "1.1" and not _has_host(headers):
        return InvalidRequest("An HTTP/1.1 request must carry a Host header (RFC 9112, section 3.2).")
    if len(headers) > policy.max_headers:
        return HeadersTooLarge(
            f"The request has {len(headers)} headers; at most {policy.max_headers} are accepted."
        )
    size = sum(map(len, chain.from_iterable(headers)))  # names and values, counted in C
    if size > policy.max_header_bytes:
        return HeadersTooLarge(
            f"The request's headers hold {size} bytes; at most {policy.max_header_bytes} are accepted."
        )
    path: str = scope["path"]
    if path in PUBLIC_PATHS:
        return None
    keys = policy.keys
    if path in OPS_PATHS or path.startswith(OPS_PREFIXES):
        if path.startswith(OPS_PREFIXES) and not keys.ops_declared and not _loopback(scope):
            return PermissionDenied(
                "Admin routes answer only local clients until an ops key is set (ROUTER_OPS_KEY)."
            )
        if keys.opens_ops(bearer_token(headers)):
            return None
        return AuthenticationFailed(
            "This is an ops route: send the ops key (ROUTER_OPS_KEY) as 'Authorization: Bearer <key>'."
        )
    if not keys.declared:
        return None
    token = bearer_token(headers)
    if token is None:
        return AuthenticationFailed(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
        )
    key = keys.identify(token)
    if key is None:
        return AuthenticationFailed("Incorrect API key provided. Ask the router's operator for a valid key.")
    state[KEY_SCOPE] = key
    return None


def _origin(policy: EdgePolicy, headers: list[tuple[bytes, bytes]]) -> str | None:
    """The value of ``access-control-allow-origin`` for this request, if its origin is allowed."""
    for name, value in headers:
        if name == b"origin":
            origin = value.decode("latin-1")
            if origin in policy.origins:
                return origin
            return "*" if policy.any_origin else None
    return None


async def _preflight(policy: EdgePolicy, send: Send, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [
        *extra,
        (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
        (b"access-control-allow-headers", policy.allow_headers.encode()),
        (b"access-control-max-age", str(policy.cors.max_age_s).encode()),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _has_host(headers: list[tuple[bytes, bytes]]) -> bool:
    # The server fills in an empty Host when a request has none; clients send it first.
    for name, value in headers:
        if name == b"host":
            return bool(value)
    return False


_ROUTE_NAMES = {
    "/chat/completions": "chat",
    "/responses": "responses",
    "/completions": "completions",
    "/embeddings": "embeddings",
}


def _route_name(path: str) -> str:
    """The request-log route of a path (what the model routes call themselves), else ``other``."""
    return _ROUTE_NAMES.get(path.removeprefix("/v1"), "other")


def _loopback(scope: Scope) -> bool:
    client = scope.get("client")
    host = client[0] if client else ""
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


async def _reject(send: Send, error: RouterError, extra: list[tuple[bytes, bytes]]) -> None:
    body = error_json(error)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.encode(), v.encode()) for k, v in error_headers(error).items()),
        *extra,
    ]
    if error.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="router"'))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
