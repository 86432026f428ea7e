"""Writes a fake's pre-rendered stream events with the shared pacing and stream-fault logic.

Each event carries its ``Pace``: ``None`` (write at once), ``FIRST`` (wait for time-to-first-token plus a
``stall`` fault's delay, then start the clock) or ``k >= 0`` (wait until ``k`` piece intervals after the
clock started, when ``tokens_per_s`` paces the stream). Framing, the in-band error event and the
terminator are the provider's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from aiohttp import web

from router.mock.faults import Behaviour, Fault, abort_connection

Pace = int | None
FIRST: Final = -1
SSE_HEADERS: Final = (
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
)


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
    """Write ``events`` (each through ``frame``), then: abort on ``cut``, ``error_event`` on ``stream_error``
    (both after ``after_chunks`` events), else ``end`` (nothing when empty). A gone client ends it quietly."""
    response = web.StreamResponse(headers=tuple(headers))
    limit = fault.after_chunks if fault is not None and fault.kind in ("cut", "stream_error") else None
    first_wait = behaviour.ttft_ms / 1000.0
    if fault is not None and fault.kind == "stall":
        first_wait += fault.delay
    interval = behaviour.piece_interval
    loop = asyncio.get_running_loop()
    started = 0.0
    try:
        await response.prepare(request)
        for index, (event, pace) in enumerate(events):
            if index == limit:
                break
            if pace == FIRST:
                if first_wait > 0:
                    await asyncio.sleep(first_wait)
                started = loop.time()
            elif pace is not None and interval:
                wait = started + pace * interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            await response.write(event if frame is None else frame(event))
        if fault is not None and fault.kind == "cut":
            await abort_connection(request)
        elif fault is not None and fault.kind == "stream_error":
            await response.write(error_event(fault))
        else:
            tail = end if isinstance(end, bytes) else end()
            if tail:
                await response.write(tail)
    except ConnectionError:
        pass  # the client went away; nothing left to tell it
    return response
