"""Plumbing the three fake upstreams share: request logging, catch-all and model-list routes, faults.

The shared parts take every provider quirk as a parameter (the not-found answer, the key check, the
status-fault rendering, extra headers); wire formats themselves stay in each provider's module.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import ClassVar, Final

import msgspec
from aiohttp import web

from router.mock.faults import Fault, MockState, drop_connection

MALFORMED_BODY: Final = b"<html>upstream proxy error</html>"
MSGSPEC_PATH: Final = re.compile(r"(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
MISSING_FIELD: Final = re.compile(r"Object missing required field `(?P<field>[^`]+)`")


def split_validation_error(exc: msgspec.ValidationError) -> tuple[str, str]:
    """The message of a msgspec validation error and its raw ``$``-relative path (``""`` when none)."""
    found = MSGSPEC_PATH.match(str(exc))
    if not found:
        return str(exc), ""
    return found["msg"], found["path"] or ""


def fault_headers(fault: Fault, *, with_ms: bool = False) -> dict[str, str]:
    """The fault's headers plus ``retry-after`` (and ``-ms`` if ``with_ms``) and ``x-should-retry``."""
    headers = dict(fault.headers)
    if fault.retry_after is not None:
        headers["retry-after"] = f"{fault.retry_after:g}"
        if with_ms:
            headers["retry-after-ms"] = f"{fault.retry_after * 1000:g}"
    if fault.should_retry is not None:
        headers["x-should-retry"] = "true" if fault.should_retry else "false"
    return headers


async def act_out(
    request: web.BaseRequest,
    fault: Fault | None,
    status_error: Callable[[Fault], web.Response],
    headers: dict[str, str] | None = None,
) -> web.StreamResponse | Fault | None:
    """The response for a request-level fault, else the fault still to play out in the answer (``None``
    after a ``timeout``, which only delays it); ``headers`` go on the ``malformed`` response."""
    if fault is None:
        return None
    if fault.kind == "status":
        return status_error(fault)
    if fault.kind == "drop":
        return drop_connection(request)
    if fault.kind == "malformed":
        return web.Response(body=MALFORMED_BODY, content_type="application/json", headers=headers)
    if fault.kind == "timeout":
        await asyncio.sleep(fault.delay)
        return None
    return fault


class FakeProvider:
    """The routes every fake has: a logged catch-all answering not-found and a key-checked model list.

    Subclasses set ``provider`` and implement ``_denied`` and ``_not_found`` (or override the routes)."""

    provider: ClassVar[str]

    def __init__(self, state: MockState, models_body: bytes) -> None:
        self._state = state
        self._models_body = models_body

    def _record(self, request: web.BaseRequest, body: bytes) -> None:
        self._state.record(
            self.provider, request.method, request.path, request.query_string, request.headers, body
        )

    def _denied(self, request: web.BaseRequest) -> web.Response | None:
        """The provider's refusal of a missing or wrong key; ``None`` when the key is accepted."""
        raise NotImplementedError

    def _not_found(self, request: web.BaseRequest) -> web.Response:
        """The provider's answer to an unknown path."""
        raise NotImplementedError

    async def unknown(self, request: web.Request) -> web.Response:
        self._record(request, await request.read())
        return self._not_found(request)

    async def list_models(self, request: web.Request) -> web.Response:
        self._record(request, b"")
        denied = self._denied(request)
        if denied is not None:
            return denied
        return web.Response(body=self._models_body, content_type="application/json")
