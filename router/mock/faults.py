"""What tests script on the fake providers: faults (one-off, counted or timed brownouts), speed, required
keys and the request log.

One ``MockState`` is shared by every fake provider of an app; each provider reads it by its own name
(``"openai"``, ``"anthropic"``, ``"gemini"``). All methods are cheap when nothing is scripted. The socket
tricks that act faults out are in ``connection``, the log in ``requestlog``, what a fault is in ``faultspec``.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Mapping
from typing import Annotated, Any, Final

import msgspec
from aiohttp import web

from router.mock.faultspec import BODY_ONLY_KINDS, STREAM_ONLY_KINDS, Fault, NonNegative
from router.mock.prefixcache import PromptCache
from router.mock.requestlog import HISTORY, RecordedRequest, RequestLog
from router.mock.textgen import IdSource

ANY_MODEL: Final = "*"

_Ratio = Annotated[float, msgspec.Meta(ge=0, le=1)]


class PendingFault(msgspec.Struct, frozen=True, omit_defaults=True):
    """A queued fault as reported by ``FaultStore.pending`` (``remaining == -1``: until cleared or expired).

    ``expires_in_s``: seconds left of a timed entry (``None``: untimed); ``ratio``: the share of matching
    requests it fails (``None``: all)."""

    provider: str
    model: str
    fault: Fault
    remaining: int
    expires_in_s: float | None = None
    ratio: float | None = None


class _Entry:
    """A queued fault with its count, its end (``expires``, monotonic) and its failure ratio: without a
    ``seed`` the failures are spread evenly (the n-th match fails when ``floor(n * ratio)`` steps up),
    with one they are drawn from a generator seeded with it; both are reproducible."""

    __slots__ = ("_matches", "_rng", "expires", "fault", "ratio", "remaining")

    def __init__(
        self, fault: Fault, remaining: int, expires: float | None, ratio: float, seed: int | None
    ) -> None:
        self.fault = fault
        self.remaining = remaining
        self.expires = expires
        self.ratio = ratio
        self._matches = 0
        self._rng = random.Random(seed) if seed is not None else None  # noqa: S311 - not for secrets

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires

    def fires(self) -> bool:
        """Whether this matching request gets the fault (always, at ratio 1)."""
        if self.ratio >= 1.0:
            return True
        if self._rng is not None:
            return self._rng.random() < self.ratio
        self._matches += 1
        return math.floor(self._matches * self.ratio) > math.floor((self._matches - 1) * self.ratio)


class FaultStore:
    """Queues of scripted faults per (provider, model or ``"*"``); a request consumes the first match."""

    __slots__ = ("_lock", "_queues")

    def __init__(self) -> None:
        self._queues: dict[tuple[str, str], list[_Entry]] = {}
        # Tests may script faults from another thread than the server's loop.
        self._lock = threading.Lock()

    def add(
        self,
        provider: str,
        model: str,
        fault: Fault | Mapping[str, Any],
        times: int | None = None,
        *,
        for_s: float | None = None,
        ratio: float = 1.0,
        seed: int | None = None,
    ) -> Fault:
        """Queue ``fault`` for the next ``times`` matching requests (-1: every one until cleared; default 1,
        or -1 when timed). ``for_s`` makes a brownout: the entry lasts that many seconds from now, then
        disappears; ``ratio`` (0..1) is the share of matching requests it fails (the others pass it by),
        evenly spread or, with ``seed``, drawn at random reproducibly.

        Raises ``ValueError`` for an invalid fault, count, duration or ratio.
        """
        if times is None:
            times = -1 if for_s is not None else 1
        if times == 0 or times < -1:
            raise ValueError(f"times must be a positive count or -1 (forever), got {times}")
        if for_s is not None and not for_s > 0:
            raise ValueError(f"for_s must be a positive number of seconds, got {for_s}")
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be between 0 and 1, got {ratio}")
        try:
            parsed = msgspec.convert(msgspec.to_builtins(fault), Fault)
        except msgspec.ValidationError as exc:
            raise ValueError(f"invalid fault: {exc}") from None
        expires = time.monotonic() + for_s if for_s is not None else None
        with self._lock:
            self._queues.setdefault((provider, model), []).append(_Entry(parsed, times, expires, ratio, seed))
        return parsed

    def take(self, provider: str, model: str, *, streaming: bool) -> Fault | None:
        """Consume and return the fault for this request: exact model first, then ``"*"``.

        Stream-only faults are skipped (and kept) for non-streaming requests, body-only ones for streaming
        requests; expired entries are dropped; an entry whose ratio spares this request is passed by.
        """
        if not self._queues:
            return None
        now = time.monotonic()
        with self._lock:
            for key in ((provider, model), (provider, ANY_MODEL)):
                queue = self._queues.get(key)
                if not queue:
                    continue
                queue[:] = [entry for entry in queue if not entry.expired(now)]
                found = self._first_firing(queue, streaming)
                if not queue:
                    del self._queues[key]
                if found is not None:
                    return found
        return None

    @staticmethod
    def _first_firing(queue: list[_Entry], streaming: bool) -> Fault | None:
        for position, entry in enumerate(queue):
            kind = entry.fault.kind
            if (kind in STREAM_ONLY_KINDS and not streaming) or (kind in BODY_ONLY_KINDS and streaming):
                continue
            if not entry.fires():
                continue
            if entry.remaining > 0:
                entry.remaining -= 1
                if entry.remaining == 0:
                    del queue[position]
            return entry.fault
        return None

    def pending(self, provider: str | None = None) -> list[PendingFault]:
        """Faults still queued (expired ones left out), in match order per key."""
        now = time.monotonic()
        with self._lock:
            return [
                PendingFault(
                    provider=p,
                    model=m,
                    fault=entry.fault,
                    remaining=entry.remaining,
                    expires_in_s=round(entry.expires - now, 3) if entry.expires is not None else None,
                    ratio=entry.ratio if entry.ratio < 1.0 else None,
                )
                for (p, m), queue in self._queues.items()
                if provider is None or p == provider
                for entry in queue
                if not entry.expired(now)
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

    ttft_ms: NonNegative = 0.0
    tokens_per_s: NonNegative | None = None
    latency_ms: NonNegative = 0.0
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


class MockState:
    """Everything scriptable about one mock app; create one per app (or per test)."""

    __slots__ = ("_behaviours", "_keys", "_log", "faults", "ids", "prompts")

    def __init__(self, *, history: int = HISTORY) -> None:
        self.faults = FaultStore()
        self.ids = IdSource()
        self.prompts = PromptCache()  # the prompt prefixes the fakes have cached
        self._behaviours: dict[tuple[str, str], Behaviour] = {}
        self._keys: dict[str, str] = {}
        self._log = RequestLog(history)

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

    def record(self, request: web.BaseRequest, provider: str, body: bytes) -> None:
        """Remember a received request (parsed only when someone reads the log)."""
        self._log.record(request, provider, body)

    def requests(self, provider: str | None = None) -> list[RecordedRequest]:
        """Received requests, oldest first (the last ``history``), optionally of one provider."""
        return self._log.entries(provider)

    def clear_requests(self) -> None:
        self._log.clear()

    def reset(self) -> None:
        """Back to a fresh state: no faults, default speed, no required keys, empty log and caches."""
        self.faults.clear()
        self.prompts.clear()
        self._behaviours.clear()
        self._keys.clear()
        self._log.clear()
