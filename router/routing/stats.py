"""Live latency statistics per model: decaying averages seeded by the catalog's speed priors.

Time to first token comes from streams (the commit point); output speed from streams that report
usage; a non-streamed answer's latency updates the time-to-first-token estimate after taking out
the expected generation time. Percentiles come from a bounded window of recent samples.
"""

from __future__ import annotations

from collections import deque

import msgspec

from router.catalog import Model
from router.catalog.schema import Speed
from router.clock import Clock

ALPHA = 0.2  # weight of a new sample in the decaying averages
WINDOW_S = 300.0
MAX_SAMPLES = 512


class LatencyView(msgspec.Struct, frozen=True, kw_only=True):
    ttft_ms: float
    tokens_per_s: float
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    requests_in_window: int


class ModelStats:
    def __init__(self, prior: Speed, clock: Clock) -> None:
        self._clock = clock
        self.ttft_ms = prior.ttft_ms
        self.tokens_per_s = prior.tokens_per_s
        self._ttfts: deque[tuple[float, float]] = deque(maxlen=MAX_SAMPLES)
        self._latencies: deque[tuple[float, float]] = deque(maxlen=MAX_SAMPLES)

    def speed(self) -> Speed:
        return Speed(ttft_ms=self.ttft_ms, tokens_per_s=self.tokens_per_s)

    def first_token(self, ttft_ms: float) -> None:
        self.ttft_ms += ALPHA * (ttft_ms - self.ttft_ms)
        self._ttfts.append((self._clock.monotonic(), ttft_ms))

    def generation(self, tokens: int, seconds: float) -> None:
        if tokens >= 8 and seconds > 0:  # too few tokens say nothing about speed
            self.tokens_per_s += ALPHA * (tokens / seconds - self.tokens_per_s)

    def answer(self, latency_ms: float, output_tokens: int) -> None:
        self._latencies.append((self._clock.monotonic(), latency_ms))
        generation_ms = output_tokens / self.tokens_per_s * 1000.0
        self.ttft_ms += ALPHA * (max(latency_ms - generation_ms, 1.0) - self.ttft_ms)

    def view(self) -> LatencyView:
        horizon = self._clock.monotonic() - WINDOW_S
        ttfts = sorted(v for t, v in self._ttfts if t > horizon)
        latencies = sorted(v for t, v in self._latencies if t > horizon)
        return LatencyView(
            ttft_ms=round(self.ttft_ms, 1),
            tokens_per_s=round(self.tokens_per_s, 1),
            ttft_p50_ms=_percentile(ttfts, 0.5),
            ttft_p95_ms=_percentile(ttfts, 0.95),
            latency_p50_ms=_percentile(latencies, 0.5),
            latency_p95_ms=_percentile(latencies, 0.95),
            requests_in_window=len(latencies) + len(ttfts),
        )


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(int(q * len(values)), len(values) - 1)], 2)


class StatsBoard:
    """Every model's statistics, created on first use from the model's catalog priors."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._stats: dict[str, ModelStats] = {}

    def get(self, model: Model) -> ModelStats:
        """A model's statistics, or a deployment's (``model.key``)."""
        stats = self._stats.get(model.key)
        if stats is None:
            stats = self._stats[model.key] = ModelStats(model.speed, self._clock)
        return stats

    def speed(self, model: Model) -> Speed:
        """The measured speed (the priors until measured); a model with several deployments is as
        fast as its fastest."""
        if model.deployments:
            return min((self.speed(view) for view in model.deployments), key=lambda s: s.ttft_ms)
        stats = self._stats.get(model.key)
        return stats.speed() if stats is not None else model.speed
