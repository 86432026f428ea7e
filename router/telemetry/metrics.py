"""Prometheus metrics in a registry the app owns; correct with several workers.

With one worker the registry is exposed as it is. With several, each worker writes its samples to
files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, which the CLI sets up
before the workers start) and ``/metrics`` sums every worker's files, so a scrape that reaches any
worker sees the whole router. Label values come only from catalog names, key names and fixed enums:
a model name a client sent that the catalog does not know is counted as ``other``.

The request path only adds to plain dictionaries; ``flush`` moves the tallies into the
prometheus-client metrics every second and before every scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from bisect import bisect_left
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from router.catalog import Catalog
from router.telemetry.record import RequestRecord

# From sub-millisecond answers to minutes of generation.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# The router's own time: tens of microseconds to a second.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
DURATION_BOUNDS = (*DURATION_BUCKETS, float("inf"))
OVERHEAD_BOUNDS = (*OVERHEAD_BUCKETS, float("inf"))
TOKEN_KINDS = ("input", "output", "cached", "reasoning")
ROUTES = frozenset({"chat", "responses", "completions", "embeddings", "edge", "other"})
CACHE_RESULTS = frozenset({"hit", "miss", "bypass"})
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
# Attempt outcomes with a fixed name; an upstream's own error type is counted as "upstream_error".
OUTCOMES = frozenset(
    {
        "ok",
        "breaker_open",
        "rate_limited",
        "budget_exceeded",
        "flex_capacity",
        "upstream_error",
        "upstream_unreachable",
        "upstream_timeout",
        "upstream_bad_response",
        "upstream_stream_interrupted",
        "upstream_auth_error",
        "overloaded_error",
        "server_error",
        "invalid_request_error",
        "provider_not_configured",
        "not_implemented",
        "requests",
        "tokens",
    }
)
NOT_UPSTREAM = frozenset(
    {"ok", "breaker_open", "rate_limited", "budget_exceeded", "provider_not_configured", "not_implemented"}
)
# The spend counter's key label for requests without a key (the ledger's name for them).
ANONYMOUS = "anonymous"
FLUSH_INTERVAL_S = 1.0


# A request's attempts (``model:outcome``), candidates skipped, and each attempt's deployment.
Sequence = tuple[tuple[str, ...], int, tuple[str, ...]]


class Sources(Protocol):
    """What a flush samples besides the request tallies: the catalog in force (label values are
    checked against it), the requests in flight, the routable models, and a once-a-second hook."""

    def catalog(self) -> Catalog | None: ...

    def in_flight(self) -> int: ...

    def routable(self) -> int: ...

    def tick(self) -> None: ...


class Metrics:
    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = registry = CollectorRegistry(auto_describe=True)

        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def histogram(name: str, doc: str, labels: list[str], buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=registry)

        self.requests = counter(
            "router_requests",
            "Requests answered, by route, model asked, model served, provider, strategy, status and key.",
            ["route", "model_asked", "model", "provider", "strategy", "status", "key"],
        )
        self.duration = histogram(
            "router_request_duration_seconds",
            "Time from a request's arrival to the end of its answer (a stream's last event).",
            ["route"],
            DURATION_BUCKETS,
        )
        self.upstream = histogram(
            "router_upstream_duration_seconds",
            "Time spent in upstream calls for one request, failed attempts included.",
            ["provider", "model"],
            DURATION_BUCKETS,
        )
        self.ttft = histogram(
            "router_time_to_first_token_seconds",
            "Streams: time from the request's arrival to its first output sent to the client.",
            ["model"],
            DURATION_BUCKETS,
        )
        self.overhead = histogram(
            "router_overhead_seconds",
            "The router's own time before an answer began, outside upstream calls.",
            ["route"],
            OVERHEAD_BUCKETS,
        )
        self.tokens = counter(
            "router_tokens",
            "Tokens by model served and kind (input, output; cached and reasoning are also counted apart).",
            ["model", "kind"],
        )
        self.cost = counter("router_cost_usd", "Cost in USD at the provider's prices.", ["model", "key"])
        self.spend = counter(
            "router_spend_usd",
            "Spend in USD per key, as the spend ledger records it (requests without a key: anonymous).",
            ["key"],
        )
        self.attempts = counter(
            "router_attempts", "Upstream attempts by model and outcome.", ["model", "outcome"]
        )
        self.retries = counter("router_retries", "Attempts that retried the same model.", ["model"])
        self.fallbacks = counter(
            "router_fallbacks", "Moves to the next candidate model, by the reason.", ["reason"]
        )
        self.upstream_errors = counter(
            "router_upstream_errors", "Failed upstream attempts by provider and kind.", ["provider", "kind"]
        )
        self.rate_limited = counter(
            "router_rate_limit_rejections",
            "Requests refused by the router's own rate limits, by key and limit.",
            ["key", "limit"],
        )
        self.budget_rejections = counter(
            "router_budget_rejections",
            "Requests refused (or candidates passed over) for a spent budget, by key and budget.",
            ["key", "budget"],
        )
        self.breaker_transitions = counter(
            "router_breaker_transitions",
            "Circuit-breaker state changes, by model and new state.",
            ["model", "to"],
        )
        self.cache_requests = counter(
            "router_cache_requests",
            "Model-route requests by what the response cache did (hit, miss or bypass), when it is on.",
            ["route", "result"],
        )
        self.catalog_reloads = counter(
            "router_catalog_reloads", "Catalog reloads, by result (ok or refused).", ["result"]
        )
        self.breaker_state = Gauge(
            "router_breaker_state",
            "Circuit-breaker state per model: 0 closed, 1 half-open, 2 open (the worst of the workers).",
            ["model"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.in_flight = Gauge(
            "router_in_flight_requests",
            "Requests being served now (sampled every second and at each scrape).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.models_routable = Gauge(
            "router_models_routable",
            "Catalog models whose provider is configured and whose breaker admits calls.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self._catalog: Catalog | None = None  # what label values are checked against at flush
        self._requests: dict[tuple[Any, ...], _RequestTally] = {}
        self._sequences: dict[Sequence, int] = {}
        self._cache: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None

    # --- the request path: one tally per label set, taken apart at flush -----------------------

    def record_request(self, record: RequestRecord) -> None:
        """Count one request from its record (ids and names only, never content).

        The request path does one dictionary lookup and a few additions; which metric each number
        feeds, and the attempt sequences' retries and fallbacks, are worked out at flush."""
        route = record.route
        if route not in ROUTES:
            return
        labels = (
            route,
            record.model_asked,
            record.model or "",
            record.provider or "",
            record.strategy or "",
            record.status,
            record.key or "",
        )
        tally = self._requests.get(labels)
        if tally is None:
            tally = self._requests[labels] = _RequestTally()
        tally.count += 1
        # Histogram tallies inlined (this runs once a request): bucket count, then the sum.
        seconds = record.duration_ms / 1000.0
        bins = tally.duration
        bins[bisect_left(DURATION_BOUNDS, seconds)] += 1
        bins[-1] += seconds
        overhead = record.overhead_ms
        if overhead is not None:
            seconds = overhead / 1000.0
            bins = tally.overhead
            bins[bisect_left(OVERHEAD_BOUNDS, seconds)] += 1
            bins[-1] += seconds
            upstream = record.upstream_ms
            if upstream is not None:  # None: a cache hit, which called no upstream
                seconds = upstream / 1000.0
                bins = tally.upstream
                bins[bisect_left(DURATION_BOUNDS, seconds)] += 1
                bins[-1] += seconds
            ttft = record.ttft_ms
            if ttft is not None:
                seconds = ttft / 1000.0
                bins = tally.ttft
                bins[bisect_left(DURATION_BOUNDS, seconds)] += 1
                bins[-1] += seconds
            tokens = tally.tokens
            tokens[0] += record.tokens_in or 0
            tokens[1] += record.tokens_out or 0
            tokens[2] += record.tokens_cached or 0
            tokens[3] += record.tokens_reasoning or 0
            tally.cost += record.cost_usd or 0.0
        attempts = record.attempts
        if attempts:
            sequence = (attempts, len(record.skipped), record.attempt_deployments)
            self._sequences[sequence] = self._sequences.get(sequence, 0) + 1
        cached = record.cache
        if cached is not None and cached in CACHE_RESULTS:
            pair = (route, cached)
            self._cache[pair] = self._cache.get(pair, 0) + 1

    def _flush_requests(self, requests: dict[tuple[Any, ...], _RequestTally]) -> None:
        for (route, asked, model, provider, strategy, status, key), tally in requests.items():
            self.requests.labels(route, self._asked(asked), model, provider, strategy, str(status), key).inc(
                tally.count
            )
            _add_observations(self.duration, (route,), tally.duration)
            if not model:
                continue
            _add_observations(self.overhead, (route,), tally.overhead)
            _add_observations(self.upstream, (provider, model), tally.upstream)
            _add_observations(self.ttft, (model,), tally.ttft)
            for kind, count in zip(TOKEN_KINDS, tally.tokens, strict=True):
                if count:
                    self.tokens.labels(model, kind).inc(count)
            if tally.cost:
                self.cost.labels(model, key).inc(tally.cost)
                self.spend.labels(key or ANONYMOUS).inc(tally.cost)

    def _flush_sequences(self, sequences: dict[Sequence, int]) -> None:
        catalog = self._catalog
        for (attempts, skipped, deployments), times in sequences.items():
            if skipped:  # candidates passed over for an open breaker: fallbacks without an attempt
                self.fallbacks.labels("breaker_open").inc(skipped * times)
            previous: str | None = None
            previous_outcome = ""
            for index, attempt in enumerate(attempts):
                model, _, outcome = attempt.rpartition(":")
                if catalog is not None and model not in catalog.models:
                    continue
                outcome = outcome if outcome in OUTCOMES else "upstream_error"
                self.attempts.labels(model, outcome).inc(times)
                if previous == model and outcome != "breaker_open":
                    self.retries.labels(model).inc(times)
                elif previous is not None and previous != model:
                    self.fallbacks.labels(previous_outcome).inc(times)
                if outcome not in NOT_UPSTREAM and catalog is not None:
                    # A deployment (``provider/model``) names its own provider.
                    way = deployments[index] if index < len(deployments) else ""
                    provider = way.split("/", 1)[0] if way else catalog.models[model].provider
                    self.upstream_errors.labels(provider, outcome).inc(times)
                previous, previous_outcome = model, outcome

    def _asked(self, name: object) -> str:
        catalog = self._catalog
        if not isinstance(name, str) or catalog is None:
            return ""
        if name in catalog.models or name in catalog.aliases or catalog.is_strategy(name):
            return name
        return "other"

    # --- rare events: straight to prometheus-client ------------------------------------------

    def rejected(self, key: str | None, limit: str) -> None:
        self.rate_limited.labels(key or "", limit).inc()

    def budget_refused(self, key: str | None, budget: str) -> None:
        """``budget``: key_daily, key_monthly, global_daily, global_monthly, model_daily, model_monthly."""
        self.budget_rejections.labels(key or ANONYMOUS, budget).inc()

    def transition(self, model: str, new: str) -> None:
        self.breaker_transitions.labels(model, new).inc()
        self.breaker_state.labels(model).set(BREAKER_STATES.get(new, 0))

    def models(self, catalog: Catalog) -> None:
        """Every catalog model (and each deployment of a model with several: ``provider/model``)
        starts with a closed breaker, so 'all open' can be told from 'unknown'."""
        for model in catalog.models.values():
            for view in model.views():
                self.breaker_state.labels(view.key).set(0)

    def reloaded(self, ok: bool) -> None:
        self.catalog_reloads.labels("ok" if ok else "refused").inc()

    # --- flushing and exposition ---------------------------------------------------------------

    def flush(self, sources: Sources) -> None:
        """Move the tallies into the metrics, and sample the gauges from ``sources``."""
        self._catalog = sources.catalog()
        requests, self._requests = self._requests, {}
        self._flush_requests(requests)
        sequences, self._sequences = self._sequences, {}
        self._flush_sequences(sequences)
        cache, self._cache = self._cache, {}
        for (route, result), count in cache.items():
            self.cache_requests.labels(route, result).inc(count)
        self.in_flight.set(sources.in_flight())
        self.models_routable.set(sources.routable())
        sources.tick()

    def exposition(self, sources: Sources) -> bytes:
        self.flush(sources)
        if self.multiprocess_dir:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)

    async def start(self, sources: Sources) -> None:
        """Flush every second, sampling ``sources``, until ``aclose``."""
        self._task = asyncio.get_running_loop().create_task(self._run(sources))

    async def _run(self, sources: Sources) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            self.flush(sources)

    async def aclose(self, sources: Sources) -> None:
        """Flush what is left; a worker that stops takes its live gauges with it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.flush(sources)
        if self.multiprocess_dir:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


class _RequestTally:
    """What the requests of one label set added up to since the last flush. Each histogram tally is
    the count per bucket (the last is +Inf), then the sum."""

    __slots__ = ("cost", "count", "duration", "overhead", "tokens", "ttft", "upstream")

    def __init__(self) -> None:
        self.count = 0
        self.duration = [0.0] * (len(DURATION_BOUNDS) + 1)
        self.overhead = [0.0] * (len(OVERHEAD_BOUNDS) + 1)
        self.upstream = [0.0] * (len(DURATION_BOUNDS) + 1)
        self.ttft = [0.0] * (len(DURATION_BOUNDS) + 1)
        self.tokens = [0, 0, 0, 0]  # input, output, cached, reasoning
        self.cost = 0.0


def _add_observations(histogram: Histogram, labels: tuple[str, ...], tally: list[float]) -> None:
    """What ``observe`` does for each value, for a tally of values at once (bucket counts, then the
    sum). It uses the histogram's bucket values, stable across the pinned prometheus-client range;
    a unit test checks the result against ``observe``. An empty tally creates no series."""
    if not any(tally[:-1]):
        return
    child = histogram.labels(*labels)
    child._sum.inc(tally[-1])
    buckets = child._buckets
    for i, count in enumerate(tally[:-1]):
        if count:
            buckets[i].inc(count)


def prepare_multiprocess_dir(path: str) -> None:
    """Empty the samples directory before the workers start: old files would count again."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))


__all__ = ["BREAKER_STATES", "DURATION_BUCKETS", "Metrics", "prepare_multiprocess_dir"]
