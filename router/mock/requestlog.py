"""The fake providers' request log: what each request was, which fault it met, when its client left.

A handler records its request once (``RequestLog.record``), which also pins the entry on the aiohttp
request, so the shared fault and stream code can later note the fault played (``note_fault``) and the
moment the client went away (``note_disconnect``) without knowing the provider.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

import msgspec
from aiohttp import web

from router.mock.faultspec import Fault

HISTORY: Final = 200


class RecordedRequest(msgspec.Struct, frozen=True):
    """A request a fake provider received; ``body`` is the parsed JSON (or the text when not JSON).

    ``fault`` is the scripted fault it met (``None``: none); ``disconnected_monotonic`` is
    when the mock saw its client close the connection before the answer was complete (``None``: it
    did not). Both clocks are ``time.monotonic()``, comparable with other processes on the machine.
    ``peer`` is the client's ``host:port`` (which, on one machine, tells the client process apart)."""

    provider: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    received_monotonic: float
    fault: Fault | None = None
    disconnected_monotonic: float | None = None
    peer: str = ""


class _Entry:
    """One logged request, kept raw: parsing waits until someone reads the log."""

    __slots__ = (
        "body",
        "disconnected",
        "fault",
        "headers",
        "method",
        "path",
        "peer",
        "provider",
        "query",
        "received",
    )

    def __init__(
        self,
        provider: str,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        peer: str = "",
    ) -> None:
        self.provider = provider
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.peer = peer
        self.received = time.monotonic()
        self.fault: Fault | None = None
        self.disconnected: float | None = None

    def parsed(self) -> RecordedRequest:
        body: Any = None
        if self.body:
            try:
                body = msgspec.json.decode(self.body)
            except msgspec.DecodeError:
                body = self.body.decode("utf-8", errors="replace")
        return RecordedRequest(
            provider=self.provider,
            method=self.method,
            path=self.path,
            query=self.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            received_monotonic=self.received,
            fault=self.fault,
            disconnected_monotonic=self.disconnected,
            peer=self.peer,
        )


_ENTRY: Final = web.RequestKey("mock_log_entry", _Entry)


class RequestLog:
    """The last ``history`` requests, oldest first."""

    __slots__ = ("_entries",)

    def __init__(self, history: int = HISTORY) -> None:
        self._entries: deque[_Entry] = deque(maxlen=history)

    def record(self, request: web.BaseRequest | None, provider: str, body: bytes) -> None:
        """Log ``request`` (``None``: a request built by hand, with nothing to pin the entry on)."""
        if request is None:
            return
        entry = _Entry(
            provider,
            request.method,
            request.path,
            request.query_string,
            request.headers,
            body,
            _peer(request),
        )
        self._entries.append(entry)
        request[_ENTRY] = entry

    def entries(self, provider: str | None = None) -> list[RecordedRequest]:
        return [e.parsed() for e in list(self._entries) if provider is None or e.provider == provider]

    def clear(self) -> None:
        self._entries.clear()


def note_fault(request: web.BaseRequest, fault: Fault) -> None:
    """Remember on the request's log entry which fault it met."""
    entry = request.get(_ENTRY)
    if entry is not None:
        entry.fault = fault


def note_disconnect(request: web.BaseRequest) -> None:
    """Remember when the request's client went away (the first time only)."""
    entry = request.get(_ENTRY)
    if entry is not None and entry.disconnected is None:
        entry.disconnected = time.monotonic()


def _peer(request: web.BaseRequest) -> str:
    transport = request.transport
    address = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return ""
