"""Incremental Server-Sent Events parser for upstream streams.

Network reads split events anywhere: mid-line, mid-JSON, between ``\\r`` and ``\\n``, inside a UTF-8
sequence. The parser works on bytes and only hands out complete lines, so decoding never sees half a
character. It accepts LF and CRLF line endings.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Protocol, TypeVar

from router.errors import RouterError, StreamInterrupted

E = TypeVar("E")


class SSEEvent:
    __slots__ = ("data", "event")

    def __init__(self, event: str, data: bytes) -> None:
        self.event = event
        self.data = data

    def __repr__(self) -> str:
        return f"SSEEvent(event={self.event!r}, data={self.data[:60]!r})"


class SSEParser:
    """Feed it byte chunks; it returns the events each chunk completes."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    events.append(SSEEvent(self._event or "message", b"\n".join(self._data)))
                self._event = ""
                self._data = []
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                self._event = line[6:].strip().decode("utf-8", "replace")
            # comments (":...") and unknown fields (id:, retry:) are ignored
        self._buffer = buffer[start:]
        return events

    @property
    def pending(self) -> bool:
        """Whether an event was started but not terminated by a blank line."""
        return bool(self._data) or bool(self._buffer.strip())


class FinishingReader(Protocol[E]):
    """Reads an OpenAI-style stream: events, then ``[DONE]``; ``finished`` once every choice has
    sent its finish reason; ``error`` for an in-band error (raised after the events before it)."""

    done: bool
    error: RouterError | None

    @property
    def finished(self) -> bool: ...

    def feed(self, raw: bytes) -> list[E]: ...

    def check_complete(self) -> None: ...


async def events_until_end(
    raw: AsyncIterator[bytes], reader: FinishingReader[E], early_close: Callable[[], None]
) -> AsyncGenerator[E, None]:
    """The events of an upstream stream, to its end. A connection that breaks after every choice
    finished ends the stream normally (``early_close`` notes it); before, it raises."""
    try:
        async for chunk in raw:
            for event in reader.feed(chunk):
                yield event
            if reader.error is not None or reader.done:
                break
    except StreamInterrupted:
        if not reader.finished:
            raise  # the connection broke before the answer was whole
    if reader.error is not None:
        raise reader.error
    reader.check_complete()
    if not reader.done:
        early_close()
