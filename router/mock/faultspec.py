"""What one scripted fault is: the ``Fault`` struct and its kinds, which the fault store and the request log
both speak of (neither imports the other for it).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

FaultKind = Literal[
    "status",
    "timeout",
    "drop",
    "reset",
    "malformed",
    "truncated",
    "trickle",
    "cut",
    "stream_error",
    "stall",
    "stall_mid",
    "malformed_sse",
]
STREAM_ONLY_KINDS: Final = frozenset({"cut", "stream_error", "stall", "stall_mid", "malformed_sse"})
BODY_ONLY_KINDS: Final = frozenset({"truncated"})
"""Faults of a whole JSON body: skipped (and kept) for a streaming request."""
STREAM_SHAPING_KINDS: Final = STREAM_ONLY_KINDS | {"trickle"}
"""Faults a stream plays out event by event (``write_stream``)."""

NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class Fault(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One scripted failure. Which fields matter depends on ``kind``:

    - ``status``: answer ``status`` with the provider's error envelope (``message``/``type``/``param``/
      ``code`` override the defaults); ``retry_after`` seconds adds ``retry-after`` and ``retry-after-ms``;
      ``should_retry`` adds ``x-should-retry``; ``headers`` are added verbatim.
    - ``timeout``: wait ``delay`` seconds before any header (a stall before headers), then answer normally.
    - ``drop``: close the connection without any response.
    - ``reset``: accept the request, then abort the connection with a TCP RST and no response.
    - ``malformed``: 200 with a JSON content type and a body that is not JSON.
    - ``truncated`` (non-stream only): 200 with the first half of the real JSON body and a matching
      ``Content-Length``; with ``claims_more`` the ``Content-Length`` is the whole body's and the
      connection is aborted after the half.
    - ``trickle``: a success delivered slowly: ``interval`` seconds before each stream event (and the
      terminator), or before each of ``pieces`` slices of a non-stream body.
    - streams only — ``cut``: abort the connection after ``after_chunks`` events, or with
      ``after_finish`` after every event but the terminator (OpenAI ``[DONE]``, Anthropic
      ``message_stop``, Responses ``response.completed``; Gemini's last chunk, which carries the finish,
      is sent and the connection aborted instead of closed);
      ``stream_error``: after ``after_chunks`` events send an in-band error (``message``/``type``/``param``/
      ``code`` override its fields) and end without a terminator;
      ``stall``: send headers and the first event, then wait ``delay`` before the content;
      ``stall_mid``: after ``after_chunks`` events wait ``delay``, then go on (before the terminator when
      the stream is shorter);
      ``malformed_sse``: after ``after_chunks`` events send one ``data:`` line that is not JSON, then end
      the stream without its terminator, as a broken proxy cutting an answer would.
    """

    kind: FaultKind
    status: Annotated[int, msgspec.Meta(ge=400, le=599)] = 500
    retry_after: NonNegative | None = None
    should_retry: bool | None = None
    message: str | None = None
    type: str | None = None
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = {}
    delay: NonNegative = 30.0
    after_chunks: Annotated[int, msgspec.Meta(ge=0)] = 2
    after_finish: bool = False
    claims_more: bool = False
    interval: NonNegative = 0.05
    pieces: Annotated[int, msgspec.Meta(ge=1)] = 8

    @property
    def stream_only(self) -> bool:
        return self.kind in STREAM_ONLY_KINDS

    @property
    def shapes_stream(self) -> bool:
        """Whether a stream plays this fault out event by event."""
        return self.kind in STREAM_SHAPING_KINDS
