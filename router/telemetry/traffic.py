"""This process's recent traffic for ``/health`` and the dashboard: requests and errors a second
over the last minute, and the router's overhead percentiles over its latest answers.

A request only adds to two counters and a bounded sample; the counters are sampled once a second
(``tick``), and the rates come from the samples a minute apart.
"""

from __future__ import annotations

from collections import deque

import msgspec

from router.clock import Clock
from router.telemetry.record import RequestRecord

WINDOW_S = 60
OVERHEAD_SAMPLES = 1024
MODEL_ROUTES = frozenset({"chat", "responses", "completions", "embeddings"})


class TrafficView(msgspec.Struct, frozen=True, kw_only=True):
    requests: int  # since start
    requests_per_s: float  # over the last minute (or since start, if sooner)
    errors_per_s: float  # answers with a status of 500 or more
    overhead_ms_p50: float | None
    overhead_ms_p95: float | None
    in_flight: int


class Traffic:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.total = 0
        self.errors = 0
        # (monotonic time, total, errors), one a second, a minute's worth.
        self._samples: deque[tuple[float, int, int]] = deque([(clock.monotonic(), 0, 0)], maxlen=WINDOW_S + 1)
        self._overheads: deque[float] = deque(maxlen=OVERHEAD_SAMPLES)

    def record(self, record: RequestRecord) -> None:
        if record.route not in MODEL_ROUTES:
            return
        self.total += 1
        if record.status >= 500:
            self.errors += 1
        if record.overhead_ms is not None:
            self._overheads.append(record.overhead_ms)

    def tick(self) -> None:
        self._samples.append((self._clock.monotonic(), self.total, self.errors))

    def view(self, in_flight: int) -> TrafficView:
        now = self._clock.monotonic()
        then, total, errors = self._samples[0]
        span = max(now - then, 1.0)
        ordered = sorted(self._overheads)
        return TrafficView(
            requests=self.total,
            requests_per_s=round((self.total - total) / span, 3),
            errors_per_s=round((self.errors - errors) / span, 3),
            overhead_ms_p50=_percentile(ordered, 0.5),
            overhead_ms_p95=_percentile(ordered, 0.95),
            in_flight=in_flight,
        )


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)], 3)


class InFlight:
    """Requests being served now: counted by the edge, read by ``/health`` and the metrics."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0
