"""What tests script on the fake providers: faults, speed, required keys, the request log — and the
socket tricks that act faults out.

One ``MockState`` is shared by every fake provider of an app; each provider reads it by its own name
(``"openai"``, later ``"anthropic"``, ``"gemini"``). All methods are cheap when nothing is scripted.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, NamedTuple

import msgspec
from aiohttp import web

from router.mock.textgen import IdSource

ANY_MODEL: Final = "*"
HISTORY: Final = 200

FaultKind = Literal["status", "timeout", "drop", "malformed", "cut", "stream_error", "stall"]
STREAM_ONLY_KINDS: Final = frozenset({"cut", "stream_error", "stall"})

_NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class Fault(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One scripted failure. Which fields matter depends on ``kind``:

    - ``status``: answer ``status`` with the provider's error envelope (``message``/``type``/``param``/
      ``code`` override the defaults); ``retry_after`` seconds adds ``retry-after`` and ``retry-after-ms``;
      ``should_retry`` adds ``x-should-retry``; ``headers`` are added verbatim.
    - ``timeout``: wait ``delay`` seconds, then answer normally.
    - ``drop``: close the connection without any response.
    - ``malformed``: 200 with a JSON content type and a body that is not JSON.
    - streams only — ``cut``: abort the connection after ``after_chunks`` events;
      ``stream_error``: after ``after_chunks`` events send an in-band error (``message``/``type``/``param``/
      ``code`` override its fields) and end without a terminator;
      ``stall``: send headers and the first event, then wait ``delay`` before the content.
    """

    kind: FaultKind
    status: Annotated[int, msgspec.Meta(ge=400, le=599)] = 500
    retry_after: _NonNegative | None = None
    should_retry: bool | None = None
    message: str | None = None
    type: str | None = None
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = {}
    delay: _NonNegative = 30.0
    after_chunks: Annotated[int, msgspec.Meta(ge=0)] = 2

    @property
    def stream_only(self) -> bool:
        return self.kind in STREAM_ONLY_KINDS


class PendingFault(msgspec.Struct, frozen=True):
    """A queued fault as reported by ``FaultStore.pending`` (``remaining == -1``: forever)."""

    provider: str
    model: str
    fault: Fault
    remaining: int


class _Entry:
    __slots__ = ("fault", "remaining")

    def __init__(self, fault: Fault, remaining: int) -> None:
        self.fault = fault
        self.remaining = remaining


class FaultStore:
    """Queues of scripted faults per (provider, model or ``"*"``); a request consumes the first match."""

    __slots__ = ("_lock", "_queues")

    def __init__(self) -> None:
        self._queues: dict[tuple[str, str], list[_Entry]] = {}
        # Tests may script faults from another thread than the server's loop.
        self._lock = threading.Lock()

    def add(self, provider: str, model: str, fault: Fault | Mapping[str, Any], times: int = 1) -> Fault:
        """Queue ``fault`` for the next ``times`` matching requests (-1: every request until cleared).

        Raises ``ValueError`` for an invalid fault or count.
        """
        if times == 0 or times < -1:
            raise ValueError(f"times must be a positive count or -1 (forever), got {times}")
        try:
            parsed = msgspec.convert(msgspec.to_builtins(fault), Fault)
        except msgspec.ValidationError as exc:
            raise ValueError(f"invalid fault: {exc}") from None
        with self._lock:
            self._queues.setdefault((provider, model), []).append(_Entry(parsed, times))
        return parsed

    def take(self, provider: str, model: str, *, streaming: bool) -> Fault | None:
        """Consume and return the fault for this request: exact model first, then ``"*"``.

        Stream-only faults are skipped (and kept) for non-streaming requests.
        """
        if not self._queues:
            return None
        with self._lock:
            for key in ((provider, model), (provider, ANY_MODEL)):
                queue = self._queues.get(key)
                if not queue:
                    continue
                for position, entry in enumerate(queue):
                    if entry.fault.stream_only and not streaming:
                        continue
                    if entry.remaining > 0:
                        entry.remaining -= 1
                        if entry.remaining == 0:
                            del queue[position]
                            if not queue:
                                del self._queues[key]
                    return entry.fault
        return None

    def pending(self, provider: str | None = None) -> list[PendingFault]:
        """Faults still queued, in match order per key."""
        with self._lock:
            return [
                PendingFault(provider=p, model=m, fault=entry.fault, remaining=entry.remaining)
                for (p, m), queue in self._queues.items()
                if provider is None or p == provider
                for entry in queue
            ]

    def clear(self, provider: str | None = None) -> None:
        """Forget queued faults (of one provider, or all)."""
        with self._lock:
            if provider is None:
                self._queues.clear()
            else:
                for key in [k for k in self._queues if k[0] == provider]:
                    del self._queues[key]


class Behaviour(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Speed of a fake model. Zero everywhere (the default) means as fast as possible.

    ``ttft_ms``: delay before the first content event of a stream, and before a non-stream answer.
    ``tokens_per_s``: pace of stream pieces (0/None: no pacing); non-stream answers also take
    ``pieces / tokens_per_s`` only when ``simulate_generation_time``.
    ``latency_ms``: extra delay before non-stream answers.
    """

    ttft_ms: _NonNegative = 0.0
    tokens_per_s: _NonNegative | None = None
    latency_ms: _NonNegative = 0.0
    simulate_generation_time: bool = False

    @property
    def piece_interval(self) -> float:
        """Seconds between stream pieces."""
        return 1.0 / self.tokens_per_s if self.tokens_per_s else 0.0

    def non_stream_delay(self, pieces: int) -> float:
        """Seconds to wait before a non-stream answer of ``pieces`` pieces."""
        delay = (self.ttft_ms + self.latency_ms) / 1000.0
        if self.simulate_generation_time and self.tokens_per_s:
            delay += pieces / self.tokens_per_s
        return delay


FAST: Final = Behaviour()


class RecordedRequest(msgspec.Struct, frozen=True):
    """A request a fake provider received; ``body`` is the parsed JSON (or the text when not JSON)."""

    provider: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    received_monotonic: float


class _Raw(NamedTuple):
    provider: str
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    received_monotonic: float


class MockState:
    """Everything scriptable about one mock app; create one per app (or per test)."""

    __slots__ = ("_behaviours", "_keys", "_log", "faults", "ids")

    def __init__(self, *, history: int = HISTORY) -> None:
        self.faults = FaultStore()
        self.ids = IdSource()
        self._behaviours: dict[tuple[str, str], Behaviour] = {}
        self._keys: dict[str, str] = {}
        self._log: deque[_Raw] = deque(maxlen=history)

    # --- speed -------------------------------------------------------------------------------------

    def set_behaviour(
        self,
        provider: str = "openai",
        model: str = ANY_MODEL,
        *,
        ttft_ms: float = 0.0,
        tokens_per_s: float | None = None,
        latency_ms: float = 0.0,
        simulate_generation_time: bool = False,
    ) -> Behaviour:
        """Set (replace) the speed of ``model`` (``"*"``: every model without its own entry)."""
        fields = {
            "ttft_ms": ttft_ms,
            "tokens_per_s": tokens_per_s,
            "latency_ms": latency_ms,
            "simulate_generation_time": simulate_generation_time,
        }
        try:
            behaviour = msgspec.convert(fields, Behaviour)
        except msgspec.ValidationError as exc:
            raise ValueError(f"invalid behaviour: {exc}") from None
        self._behaviours[(provider, model)] = behaviour
        return behaviour

    def behaviour(self, provider: str, model: str) -> Behaviour:
        """The speed for a request: the model's own entry, else the provider's ``"*"``, else fast."""
        if not self._behaviours:
            return FAST
        found = self._behaviours.get((provider, model)) or self._behaviours.get((provider, ANY_MODEL))
        return found or FAST

    def clear_behaviours(self) -> None:
        self._behaviours.clear()

    # --- keys --------------------------------------------------------------------------------------

    def set_required_key(self, provider: str, key: str | None) -> None:
        """Require ``key`` on ``provider``'s routes; ``None`` accepts any key or none."""
        if key is None:
            self._keys.pop(provider, None)
        else:
            self._keys[provider] = key

    def required_key(self, provider: str) -> str | None:
        return self._keys.get(provider)

    # --- request log -------------------------------------------------------------------------------

    def record(
        self, provider: str, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> None:
        """Remember a received request; parsing is deferred until someone reads the log."""
        self._log.append(_Raw(provider, method, path, query, headers, body, time.monotonic()))

    def requests(self, provider: str | None = None) -> list[RecordedRequest]:
        """Received requests, oldest first (the last ``history``), optionally of one provider."""
        return [_parse(raw) for raw in list(self._log) if provider is None or raw.provider == provider]

    def clear_requests(self) -> None:
        self._log.clear()

    def reset(self) -> None:
        """Back to a fresh state: no faults, default speed, no required keys, empty log."""
        self.faults.clear()
        self._behaviours.clear()
        self._keys.clear()
        self._log.clear()


def _parse(raw: _Raw) -> RecordedRequest:
    body: Any = None
    if raw.body:
        try:
            body = msgspec.json.decode(raw.body)
        except msgspec.DecodeError:
            body = raw.body.decode("utf-8", errors="replace")
    return RecordedRequest(
        provider=raw.provider,
        method=raw.method,
        path=raw.path,
        query=raw.query,
        headers={k.lower(): v for k, v in raw.headers.items()},
        body=body,
        received_monotonic=raw.received_monotonic,
    )


# --- acting faults out on the connection ---------------------------------------------------------


def drop_connection(request: web.BaseRequest) -> web.Response:
    """Close the connection with no response; return the handler's (never delivered) result.

    aiohttp then fails to write that response to the closed transport, which it treats as a client
    disconnect (no 500, no log line).
    """
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=499)


async def abort_connection(request: web.BaseRequest, *, flush_timeout: float = 1.0) -> None:
    """Abort the connection (no clean end of the body) once what was written has left the buffer."""
    transport = request.transport
    if transport is None:
        return
    deadline = time.monotonic() + flush_timeout
    # No event signals an empty write buffer; on loopback this loop almost never turns.
    while transport.get_write_buffer_size() > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    transport.abort()
