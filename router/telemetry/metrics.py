"""Prometheus metrics in a registry the app owns; correct with several workers.

With one worker the registry is exposed as it is. With several, each worker writes its samples to
files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, which the CLI sets up
before the workers start) and ``/metrics`` sums every worker's files, so a scrape that reaches any
worker sees the whole router. Label values come only from catalog names, key names and fixed enums.

The request path only adds to plain dictionaries (a fraction of a microsecond); ``flush`` moves the
tallies into the prometheus-client metrics every second and before every scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

# From sub-millisecond answers to minutes of generation.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_BOUNDS = (*DURATION_BUCKETS, math.inf)
ROUTES = frozenset({"chat", "responses", "completions", "embeddings", "edge"})
FLUSH_INTERVAL_S = 1.0

RequestLabels = tuple[str, str, str, str, int]


class Metrics:
    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "router_requests",
            "Requests answered, by route, model served, provider, key and status.",
            ["route", "model", "provider", "key", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "router_request_duration_seconds",
            "Time from the request's arrival to its answer (a stream's end).",
            ["route"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.rate_limited = Counter(
            "router_rate_limit_rejections",
            "Requests refused by the router's own rate limits, by key and limit.",
            ["key", "limit"],
            registry=registry,
        )
        self.breaker_transitions = Counter(
            "router_breaker_transitions",
            "Circuit-breaker state changes, by model and new state.",
            ["model", "to"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "router_in_flight_requests",
            "Requests being served now (sampled every second and at each scrape).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.in_flight_of: Callable[[], int] = lambda: 0
        self._requests: dict[RequestLabels, int] = {}
        self._durations: dict[str, list[int]] = {}
        self._duration_sums: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    # --- the request path: plain tallies -------------------------------------------------------

    def record_request(self, fields: dict[str, Any]) -> None:
        """Count one request from its request-log fields (ids and names only, never content)."""
        route = fields.get("route")
        if route not in ROUTES:
            return
        labels = (
            route,
            fields.get("model") or "",
            fields.get("provider") or "",
            fields.get("key") or "",
            fields.get("status", 0),
        )
        requests = self._requests
        requests[labels] = requests.get(labels, 0) + 1
        duration = fields.get("duration_ms")
        if isinstance(duration, (int, float)):
            seconds = duration / 1000.0
            counts = self._durations.get(route)
            if counts is None:
                counts = self._durations[route] = [0] * len(_BOUNDS)
                self._duration_sums[route] = 0.0
            counts[bisect_left(_BOUNDS, seconds)] += 1
            self._duration_sums[route] += seconds

    # --- rare events: straight to prometheus-client ------------------------------------------

    def rejected(self, key: str | None, limit: str) -> None:
        self.rate_limited.labels(key or "", limit).inc()

    def transition(self, model: str, new: str) -> None:
        self.breaker_transitions.labels(model, new).inc()

    # --- flushing and exposition ---------------------------------------------------------------

    def flush(self) -> None:
        requests, self._requests = self._requests, {}
        for (route, model, provider, key, status), count in requests.items():
            self.requests.labels(route, model, provider, key, str(status)).inc(count)
        durations, self._durations = self._durations, {}
        sums, self._duration_sums = self._duration_sums, {}
        for route, counts in durations.items():
            _add_observations(self.duration.labels(route), counts, sums[route])
        self.in_flight.set(self.in_flight_of())

    def exposition(self) -> bytes:
        self.flush()
        if self.multiprocess_dir:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            self.flush()

    async def aclose(self) -> None:
        """Flush what is left; a worker that stops takes its live gauges with it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.flush()
        if self.multiprocess_dir:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


def _add_observations(child: Histogram, counts: list[int], total: float) -> None:
    """What ``observe`` does for each value, for a tally of values at once. It uses the histogram's
    bucket values (stable across the pinned prometheus-client range; a unit test checks it)."""
    child._sum.inc(total)
    buckets = child._buckets
    for i, count in enumerate(counts):
        if count:
            buckets[i].inc(count)


def prepare_multiprocess_dir(path: str) -> None:
    """Empty the samples directory before the workers start: old files would count again."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
