"""Prometheus metrics in a registry the app owns; correct with several workers.

With one worker the registry is exposed as it is. With several, each worker writes its samples to
files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, which the CLI sets up
before the workers start) and ``/metrics`` sums every worker's files, so a scrape that reaches any
worker sees the whole router. Label values come only from catalog names, key names and fixed enums.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

# From sub-millisecond answers to minutes of generation.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
ROUTES = frozenset({"chat", "responses", "completions", "embeddings", "edge"})


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
        self._request_children: dict[tuple[Any, ...], Counter] = {}
        self._duration_children: dict[str, Histogram] = {}
        self.in_flight = Gauge(
            "router_in_flight_requests",
            "Requests being served now.",
            registry=registry,
            multiprocess_mode="livesum",
        )

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
        # The children are cached: ``labels()`` validates and locks on every call.
        counter = self._request_children.get(labels)
        if counter is None:
            counter = self._request_children[labels] = self.requests.labels(*labels[:4], str(labels[4]))
        counter.inc()
        duration = fields.get("duration_ms")
        if isinstance(duration, (int, float)):
            histogram = self._duration_children.get(route)
            if histogram is None:
                histogram = self._duration_children[route] = self.duration.labels(route)
            histogram.observe(duration / 1000.0)

    def rejected(self, key: str | None, limit: str) -> None:
        self.rate_limited.labels(key or "", limit).inc()

    def transition(self, model: str, new: str) -> None:
        self.breaker_transitions.labels(model, new).inc()

    def exposition(self) -> bytes:
        if self.multiprocess_dir:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)

    def close(self) -> None:
        """A worker that stops takes its live gauges with it."""
        if self.multiprocess_dir:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


def prepare_multiprocess_dir(path: str) -> None:
    """Empty the samples directory before the workers start: old files would count again."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
