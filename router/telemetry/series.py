"""Each model's last hour in this process, minute by minute, for the dashboard's charts: upstream
attempts and how many failed, the answers the model gave, and their latency p50/p95.

What is counted, per concrete model and wall-clock minute:

- ``attempts``: calls made to the model (every ``model:outcome`` of the request record's attempts,
  except the candidates passed over without a call: breaker open, the router's own rate limit, no
  key, no adapter). A request that fell back counts an attempt on each model it called.
- ``errors``: the attempts that failed, whatever the cause (an upstream 5xx, a timeout, a refusal),
  and the answers that broke after their commit point (a stream cut mid-way: its attempt was ``ok``
  when the stream began). ``errors / attempts`` is the model's error rate.
- ``requests``: the answers the model gave (the record's ``model``), complete or broken.
- latency: the model's own time for each complete answer (``RequestRecord.model_ms``: its successful
  attempt, from the call to the end of the answer), kept in a sparse histogram of buckets 2^(1/8)
  apart (about 9 % wide); a percentile is its bucket's geometric middle, so within about 4.5 % of the
  exact value. Memory stays bounded whatever the traffic.

Minutes live in a ring of 60 slots per model; a slot is reused when its minute comes round again, so
nothing has to expire. Recording does a few dictionary operations and additions (no lock: one event
loop per process). The series are this process's: with several workers each keeps its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import msgspec

from router.clock import Clock
from router.telemetry.record import RequestRecord

MINUTES = 60
BUCKET_S = 60
STEPS_PER_DOUBLING = 8  # latency buckets: 2^(1/8) apart
MIN_LATENCY_MS = 0.01  # shorter times (or zero) count in the bucket of 10 µs
# Attempt outcomes that mean the model was passed over without a call.
NOT_CALLED = frozenset({"breaker_open", "rate_limited", "provider_not_configured", "not_implemented"})
RESOLUTION = (
    "latency: each complete answer's own time at the model (its successful attempt, from the call to "
    "the end of the answer), in buckets 2^(1/8) apart; percentiles within about 4.5 %"
)


class SeriesTotals(msgspec.Struct, frozen=True, kw_only=True):
    """One model's figures over the whole window."""

    requests: int
    attempts: int
    errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class ModelSeries(msgspec.Struct, frozen=True, kw_only=True):
    """One model's minutes, oldest first; the last is the current minute, still filling."""

    id: str
    requests: list[int]
    attempts: list[int]
    errors: list[int]
    latency_p50_ms: list[float | None]  # None: no complete answer that minute
    latency_p95_ms: list[float | None]
    totals: SeriesTotals


class SeriesView(msgspec.Struct, frozen=True, kw_only=True):
    bucket_s: int
    minutes: int
    start: float  # wall time (epoch seconds) at which the first minute begins
    since: float  # wall time at which this process began counting
    models: list[ModelSeries]


class _Minute:
    __slots__ = ("attempts", "errors", "latency", "minute", "requests")

    def __init__(self, minute: int) -> None:
        self.minute = minute
        self.requests = 0
        self.attempts = 0
        self.errors = 0
        self.latency: dict[int, int] = {}  # bucket index -> answers


class Series:
    """The per-model minute series of this process; a sink of the request record."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._since = clock.wall()
        self._models: dict[str, list[_Minute | None]] = {}

    def record(self, record: RequestRecord) -> None:
        minute = int(self._clock.wall() // BUCKET_S)
        for attempt in record.attempts:
            model, _, outcome = attempt.rpartition(":")  # a model id may hold ":", an outcome never
            if outcome in NOT_CALLED:
                continue
            slot = self._slot(model, minute)
            slot.attempts += 1
            if outcome != "ok":
                slot.errors += 1
        served = record.model
        if served is None:
            return
        slot = self._slot(served, minute)
        slot.requests += 1
        if record.status >= 400:
            slot.errors += 1  # broken after the commit point
            return
        elapsed = record.model_ms
        if elapsed is not None:
            bucket = math.floor(math.log2(max(elapsed, MIN_LATENCY_MS)) * STEPS_PER_DOUBLING)
            latency = slot.latency
            latency[bucket] = latency.get(bucket, 0) + 1

    def _slot(self, model: str, minute: int) -> _Minute:
        ring = self._models.get(model)
        if ring is None:
            ring = self._models[model] = [None] * MINUTES
        index = minute % MINUTES
        slot = ring[index]
        if slot is None or slot.minute != minute:
            slot = ring[index] = _Minute(minute)
        return slot

    def view(self, models: Iterable[str], minutes: int = MINUTES) -> SeriesView:
        """The last ``minutes`` (1 to 60) of each of ``models``, in the order given."""
        minutes = min(max(minutes, 1), MINUTES)
        now = int(self._clock.wall() // BUCKET_S)
        first = now - minutes + 1
        return SeriesView(
            bucket_s=BUCKET_S,
            minutes=minutes,
            start=float(first * BUCKET_S),
            since=self._since,
            models=[self._model(model, first, minutes) for model in models],
        )

    def _model(self, model: str, first: int, minutes: int) -> ModelSeries:
        ring = self._models.get(model) or [None] * MINUTES
        slots = []
        for minute in range(first, first + minutes):
            slot = ring[minute % MINUTES]
            slots.append(slot if slot is not None and slot.minute == minute else None)
        merged: dict[int, int] = {}
        for slot in slots:
            if slot is not None:
                for bucket, count in slot.latency.items():
                    merged[bucket] = merged.get(bucket, 0) + count
        requests = [s.requests if s else 0 for s in slots]
        attempts = [s.attempts if s else 0 for s in slots]
        errors = [s.errors if s else 0 for s in slots]
        return ModelSeries(
            id=model,
            requests=requests,
            attempts=attempts,
            errors=errors,
            latency_p50_ms=[_percentile(s.latency, 0.5) if s else None for s in slots],
            latency_p95_ms=[_percentile(s.latency, 0.95) if s else None for s in slots],
            totals=SeriesTotals(
                requests=sum(requests),
                attempts=sum(attempts),
                errors=sum(errors),
                latency_p50_ms=_percentile(merged, 0.5),
                latency_p95_ms=_percentile(merged, 0.95),
            ),
        )


def _percentile(histogram: dict[int, int], q: float) -> float | None:
    """The nearest-rank ``q`` quantile: the middle of the bucket holding it, in milliseconds."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(math.ceil(q * total), 1)
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            break
    return _round(2.0 ** ((bucket + 0.5) / STEPS_PER_DOUBLING))


def _round(value: float) -> float:
    """Three significant figures: the buckets are no finer than that."""
    return float(f"{value:.3g}")
