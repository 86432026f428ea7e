"""Plumbing the three fake upstreams share: request logging, catch-all and model-list routes, faults.

The shared parts take every provider quirk as a parameter (the not-found answer, the key check, the
status-fault rendering, extra headers); wire formats themselves stay in each provider's module.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import ClassVar, Final, NamedTuple

import msgspec
from aiohttp import web

from router.mock.connection import abort_connection, drop_connection, reset_connection
from router.mock.faults import MockState
from router.mock.faultspec import Fault
from router.mock.requestlog import note_disconnect, note_fault

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
    after a ``timeout``, which only delays it); ``headers`` go on the ``malformed`` response. The fault's
    kind goes into the request log."""
    if fault is None:
        return None
    note_fault(request, fault)
    if fault.kind == "status":
        return status_error(fault)
    if fault.kind == "drop":
        return drop_connection(request)
    if fault.kind == "reset":
        return reset_connection(request)
    if fault.kind == "malformed":
        return web.Response(body=MALFORMED_BODY, content_type="application/json", headers=headers)
    if fault.kind == "timeout":
        await asyncio.sleep(fault.delay)
        return None
    return fault


async def answer(
    request: web.BaseRequest,
    body: bytes,
    fault: Fault | None,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> web.StreamResponse:
    """A non-stream answer as a body fault shapes it: ``truncated`` (half of it) or ``trickle`` (slowly);
    any other fault left to play (a stream's) does not concern a whole body."""
    kind = fault.kind if fault is not None else None
    if fault is None or kind not in ("truncated", "trickle"):
        return web.Response(body=body, content_type=content_type, headers=headers)
    half = body[: len(body) // 2]
    if kind == "truncated" and not fault.claims_more:
        return web.Response(body=half, content_type=content_type, headers=headers)
    response = web.StreamResponse(headers=headers)
    response.content_type = content_type
    response.content_length = len(body)
    try:
        await response.prepare(request)
        if kind == "truncated":
            await response.write(half)
            await abort_connection(request)
            return response
        size = -(-len(body) // fault.pieces)
        for start in range(0, len(body), size):
            await asyncio.sleep(fault.interval)
            await response.write(body[start : start + size])
        await response.write_eof()
    except ConnectionError:
        note_disconnect(request)
    return response


class Venue(NamedTuple):
    """Where a fake's wire format is served: by the provider itself, or by another host of its models
    (Vertex AI hosts Gemini's and Claude's). ``provider`` is the name faults and speed are scripted
    under; ``status_error`` renders a ``status`` fault there (``True``: the answer would have been a
    JSON array, or a stream, where some hosts wrap errors in one)."""

    provider: str
    status_error: Callable[[Fault, bool], web.Response]


class FakeProvider:
    """The routes every fake has: a logged catch-all answering not-found and a key-checked model list.

    Subclasses set ``provider`` and implement ``_denied`` and ``_not_found`` (or override the routes)."""

    provider: ClassVar[str]

    def __init__(self, state: MockState, models_body: bytes) -> None:
        self._state = state
        self._models_body = models_body

    def _record(self, request: web.BaseRequest, body: bytes) -> None:
        self._state.record(request, self.provider, body)

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
