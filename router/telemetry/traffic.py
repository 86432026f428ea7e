"""This process's recent traffic for ``/health`` and the dashboard: requests and errors a second
over the last minute, and the router's overhead percentiles over its latest answers."""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec

from router.clock import Clock

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
        self._started = clock.monotonic()
        self.total = 0
        self._seconds: deque[list[int]] = deque()  # [second, requests, errors]
        self._overheads: deque[float] = deque(maxlen=OVERHEAD_SAMPLES)

    def record(self, fields: dict[str, Any]) -> None:
        if fields.get("route") not in MODEL_ROUTES:
            return
        self.total += 1
        second = int(self._clock.monotonic())
        seconds = self._seconds
        if not seconds or seconds[-1][0] != second:
            seconds.append([second, 0, 0])
            while seconds[0][0] <= second - WINDOW_S:
                seconds.popleft()
        bucket = seconds[-1]
        bucket[1] += 1
        if int(fields.get("status", 0)) >= 500:
            bucket[2] += 1
        overhead = fields.get("overhead_ms")
        if isinstance(overhead, (int, float)):
            self._overheads.append(float(overhead))

    def view(self, in_flight: int) -> TrafficView:
        now = self._clock.monotonic()
        horizon = int(now) - WINDOW_S
        recent = [b for b in self._seconds if b[0] > horizon]
        span = max(min(now - self._started, WINDOW_S), 1.0)
        ordered = sorted(self._overheads)
        return TrafficView(
            requests=self.total,
            requests_per_s=round(sum(b[1] for b in recent) / span, 3),
            errors_per_s=round(sum(b[2] for b in recent) / span, 3),
            overhead_ms_p50=_percentile(ordered, 0.5),
            overhead_ms_p95=_percentile(ordered, 0.95),
            in_flight=in_flight,
        )


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)], 3)
