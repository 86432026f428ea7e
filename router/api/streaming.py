"""Sending an SSE answer: the events' bytes go out as they are produced, coalesced per wake-up.

An upstream read usually carries several events. The events are framed by one task (the pump) into
an outbox, and the request's task sends what the outbox holds whenever it wakes: the events of one
read leave in one ``http.response.body`` message instead of one each (a server send costs more than
everything else the router does to an event). The last events leave with the end of the body. The
pump pauses while the outbox holds more than ``HIGH_WATER`` bytes, so a slow client slows the
upstream read instead of filling memory. A client that goes away (``http.disconnect``) stops the
pump at once, which closes the upstream call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from litestar.types import Receive, ReceiveMessage, Send

SSE_TYPE = b"text/event-stream; charset=utf-8"
HIGH_WATER = 256 * 1024


class _Outbox:
    """Frames waiting to be sent, and the hand-over between the pump and the sender."""

    __slots__ = ("_drained", "_frames", "_loop", "_ready", "finished", "size")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._frames: list[bytes] = []
        self.size = 0
        self.finished = False  # the events are exhausted, failed or abandoned
        self._ready: asyncio.Future[None] | None = None  # the sender waits for frames
        self._drained: asyncio.Future[None] | None = None  # the pump waits for room

    async def fill(self, events: AsyncIterator[bytes]) -> None:
        try:
            async for frame in events:
                self._frames.append(frame)
                self.size += len(frame)
                self._wake()
                if self.size > HIGH_WATER:
                    self._drained = self._loop.create_future()
                    await self._drained
        finally:
            self.finished = True
            self._wake()

    def stop(self) -> None:
        """The client went away."""
        self.finished = True
        self._wake()

    def take(self) -> bytes:
        frames = self._frames
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        frames.clear()
        self.size = 0
        drained = self._drained
        if drained is not None and not drained.done():
            drained.set_result(None)
        return data

    def pending(self) -> bool:
        return bool(self._frames)

    async def wait(self) -> None:
        if self._frames or self.finished:
            return
        self._ready = self._loop.create_future()
        try:
            await self._ready
        finally:
            self._ready = None

    def _wake(self) -> None:
        ready = self._ready
        if ready is not None and not ready.done():
            ready.set_result(None)


async def send_stream(
    receive: Receive, send: Send, events: AsyncIterator[bytes], headers: Mapping[str, str]
) -> None:
    """Send an SSE answer of ``events``, each already framed; see the module's docstring."""
    raw = [(b"content-type", SSE_TYPE)]
    raw.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
    await send({"type": "http.response.start", "status": 200, "headers": raw})
    loop = asyncio.get_running_loop()
    outbox = _Outbox(loop)
    pump = loop.create_task(outbox.fill(events))
    gone = False

    def on_message(listener: asyncio.Future[ReceiveMessage]) -> None:
        nonlocal gone
        if listener.cancelled() or listener.exception() is not None:
            return
        if listener.result()["type"] == "http.disconnect":
            gone = True
            outbox.stop()

    listener = asyncio.ensure_future(_disconnect(receive))
    listener.add_done_callback(on_message)
    try:
        while True:
            await outbox.wait()
            if gone:
                return
            if outbox.finished and not pump.done():
                await asyncio.wait((pump,))  # its generator's cleanup, before the last bytes
            last = outbox.finished and pump.done()
            if last and not pump.cancelled() and (error := pump.exception()) is not None:
                raise error
            body = outbox.take() if outbox.pending() else b""
            if last:
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            await send({"type": "http.response.body", "body": body, "more_body": True})
    finally:
        listener.remove_done_callback(on_message)
        listener.cancel()
        if not pump.done():
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump


async def _disconnect(receive: Receive) -> ReceiveMessage:
    """The next message that is not more of the request's body: ``http.disconnect``."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return message
