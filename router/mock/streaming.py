"""Writes a fake's pre-rendered stream events with the shared pacing and stream-fault logic.

Each event carries its ``Pace``: ``None`` (write at once), ``FIRST`` (wait for time-to-first-token plus a
``stall`` fault's delay, then start the clock) or ``k >= 0`` (wait until ``k`` piece intervals after the
clock started, when ``tokens_per_s`` paces the stream). Framing, the in-band error event and the
terminator are the provider's; the stream faults (``cut``, ``stream_error``, ``stall``, ``stall_mid``,
``malformed_sse``, ``trickle``) are played here alike for every provider.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from aiohttp import web

from router.mock.connection import abort_connection
from router.mock.faults import Behaviour
from router.mock.faultspec import Fault
from router.mock.requestlog import note_disconnect

Pace = int | None
FIRST: Final = -1
SSE_HEADERS: Final = (
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
)
MALFORMED_EVENT: Final = b'{"choices":[{"delta":{"content":"<html>502 Bad Gateway</html>'
"""The payload of a ``malformed_sse`` fault's ``data:`` line: JSON cut short, then an HTML error page."""
_AT_CHUNK_KINDS: Final = frozenset({"cut", "stream_error", "stall_mid", "malformed_sse"})


def paced(events: Iterable[bytes], first_wait_before: int) -> Iterator[tuple[bytes, Pace]]:
    """Tag ``events``: those before index ``first_wait_before`` go at once, that one waits for the first
    token, and each later one is paced one piece interval after the previous."""
    for index, event in enumerate(events):
        offset = index - first_wait_before
        yield event, None if offset < 0 else FIRST if offset == 0 else offset


async def write_stream(
    request: web.BaseRequest,
    headers: Iterable[tuple[str, str]],
    events: Iterable[tuple[bytes, Pace]],
    behaviour: Behaviour,
    fault: Fault | None,
    *,
    error_event: Callable[[Fault], bytes],
    end: bytes | Callable[[], bytes],
    frame: Callable[[bytes], bytes] | None = None,
) -> web.StreamResponse:
    """Write ``events`` (each through ``frame``), then ``end`` (nothing when empty), as ``fault`` shapes
    it: after ``after_chunks`` events, ``cut`` aborts, ``stream_error`` sends ``error_event``,
    ``malformed_sse`` sends a line that is not JSON and ends, ``stall_mid`` waits ``delay`` and goes on;
    ``cut`` with ``after_finish`` closes the connection instead of sending ``end``; ``trickle`` waits
    ``interval`` before each write. A gone client ends it quietly (and is noted in the request log)."""
    response = web.StreamResponse(headers=tuple(headers))
    kind = fault.kind if fault is not None else None
    limit = fault.after_chunks if fault is not None and kind in _AT_CHUNK_KINDS else None
    if fault is not None and fault.after_finish and kind == "cut":
        limit = None
    trickle = fault.interval if fault is not None and kind == "trickle" else 0.0
    first_wait = behaviour.ttft_ms / 1000.0
    if fault is not None and kind == "stall":
        first_wait += fault.delay
    interval = behaviour.piece_interval
    loop = asyncio.get_running_loop()
    started = 0.0
    stalled = False
    try:
        await response.prepare(request)
        for index, (event, pace) in enumerate(events):
            if index == limit:
                if kind != "stall_mid":
                    break
                await _stall(fault)
                stalled = True
            if pace == FIRST:
                if first_wait > 0:
                    await asyncio.sleep(first_wait)
                started = loop.time()
            elif pace is not None and interval:
                wait = started + pace * interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            if trickle:
                await asyncio.sleep(trickle)
            await response.write(event if frame is None else frame(event))
        if fault is not None and kind == "cut":
            # After the finish, the connection is closed (FIN) rather than reset: the chunked body
            # still ends without its last chunk, but nothing already written can be lost in flight
            # (a reset makes the peer's kernel drop what it had not read yet).
            await abort_connection(request, graceful=fault.after_finish)
        elif fault is not None and kind == "stream_error":
            await response.write(error_event(fault))
        elif kind == "malformed_sse":
            await response.write(frame(MALFORMED_EVENT) if frame is not None else _sse(MALFORMED_EVENT))
        else:
            if kind == "stall_mid" and not stalled:
                await _stall(fault)
            tail = end if isinstance(end, bytes) else end()
            if tail:
                if trickle:
                    await asyncio.sleep(trickle)
                await response.write(tail)
    except ConnectionError:
        note_disconnect(request)  # the client went away; nothing left to tell it
    return response


async def _stall(fault: Fault | None) -> None:
    if fault is not None:
        await asyncio.sleep(fault.delay)


def _sse(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"
