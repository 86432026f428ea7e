"""AWS event-stream framing (``application/vnd.amazon.eventstream``), decoded as it arrives.

botocore's ``EventStreamBuffer`` holds the bytes of a frame split across network reads, checks both
CRCs and parses the headers; this wraps it to hand out each whole message as the three things a
Bedrock stream reader needs. It is CPU-only (no I/O), so it runs on the event loop. Needs the
``router[aws]`` extra: only the Bedrock adapter imports it.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from botocore.eventstream import EventStreamBuffer, ParserError


class EventMessage(NamedTuple):
    """One decoded frame: ``kind`` is ``:message-type`` (``event``, ``exception`` or ``error``), ``name``
    its ``:event-type``, ``:exception-type`` or ``:error-code``, ``payload`` the body (JSON)."""

    kind: str
    name: str
    payload: bytes


class CorruptFrame(Exception):
    """The bytes are not a valid event-stream frame (a CRC mismatch, an impossible length)."""


class EventStreamDecoder:
    """Feed it the body's chunks as they come; it returns the messages each chunk completes."""

    __slots__ = ("_buffer", "_held")

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()
        self._held = 0  # bytes fed and not yet part of a whole message

    def feed(self, data: bytes) -> list[EventMessage]:
        self._buffer.add_data(data)
        self._held += len(data)
        messages: list[EventMessage] = []
        try:
            for message in self._buffer:
                self._held -= message.prelude.total_length
                messages.append(_message(message.headers, message.payload))
        except (ParserError, struct.error, ValueError, IndexError) as exc:
            # A frame whose CRCs match but whose lengths do not add up fails in struct or slicing.
            raise CorruptFrame(str(exc) or type(exc).__name__) from None
        return messages

    @property
    def pending(self) -> bool:
        """Whether part of a frame is buffered (a stream that ends here was cut mid-frame)."""
        return self._held > 0


def _message(headers: dict[str, object], payload: bytes) -> EventMessage:
    kind = str(headers.get(":message-type", "event"))
    if kind == "event":
        return EventMessage(kind, str(headers.get(":event-type", "")), payload)
    if kind == "exception":
        return EventMessage(kind, str(headers.get(":exception-type", "")), payload)
    # The protocol's ``error`` messages carry their code and message in headers, not in the payload.
    message = str(headers.get(":error-message", "")).encode()
    return EventMessage(kind, str(headers.get(":error-code", "")), payload or message)
