"""Token buckets for rate limits: the one interface every backend implements, and the memory backend.

A bucket holds at most ``capacity`` units and refills at ``per_s`` units a second. ``take`` checks
several buckets at once and charges all of them or none, so a request refused by one limit costs
nothing against the others. ``adjust`` corrects a charge afterwards (actual tokens against the
estimate); it may leave a bucket below zero, which later requests then wait out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from router.clock import Clock


class Bucket(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # unique across limits: "<scope>:<name>:<requests|tokens>"
    capacity: float
    per_s: float
    cost: float


class TakeResult(msgspec.Struct, frozen=True, kw_only=True):
    """``failed`` is the index of the first bucket that refused (``None`` when all admitted);
    ``levels`` are the buckets' contents after the decision, ``retry_after`` how long the refusing
    bucket needs (``None`` when it can never hold the cost)."""

    failed: int | None
    retry_after: float | None
    levels: tuple[float, ...]


class LimitStore(Protocol):
    async def take(self, buckets: Sequence[Bucket]) -> TakeResult: ...

    def adjust(self, bucket: Bucket, delta: float) -> None:
        """Charge ``delta`` more units (negative refunds), without waiting for the backend."""
        ...


def refill(level: float, stamp: float, now: float, bucket: Bucket) -> float:
    return min(bucket.capacity, level + max(now - stamp, 0.0) * bucket.per_s)


def decide(levels: list[float], buckets: Sequence[Bucket]) -> tuple[int | None, float | None]:
    """The first bucket that cannot pay its cost, and how long until it could (``None``: never).
    A cost no bucket could ever hold is reported before any wait, since waiting would not help."""
    for i, bucket in enumerate(buckets):
        if bucket.cost > bucket.capacity:
            return i, None
    for i, (level, bucket) in enumerate(zip(levels, buckets, strict=True)):
        if level < bucket.cost:
            return i, (bucket.cost - level) / bucket.per_s
    return None, None


class MemoryLimitStore:
    """This process's buckets. Idle buckets are dropped once they would be full again."""

    def __init__(self, clock: Clock, max_buckets: int = 100_000) -> None:
        self._clock = clock
        self._state: dict[str, list[float]] = {}  # key -> [level, stamp]
        self._max = max_buckets

    async def take(self, buckets: Sequence[Bucket]) -> TakeResult:
        return self.take_now(buckets)

    def take_now(self, buckets: Sequence[Bucket]) -> TakeResult:
        now = self._clock.monotonic()
        state = self._state
        levels = []
        for bucket in buckets:
            entry = state.get(bucket.key)
            levels.append(bucket.capacity if entry is None else refill(entry[0], entry[1], now, bucket))
        failed, wait = decide(levels, buckets)
        if failed is None:
            if len(state) >= self._max:
                self._sweep(now)
            for i, bucket in enumerate(buckets):
                levels[i] -= bucket.cost
                state[bucket.key] = [levels[i], now]
        return TakeResult(failed=failed, retry_after=wait, levels=tuple(levels))

    def adjust(self, bucket: Bucket, delta: float) -> None:
        now = self._clock.monotonic()
        entry = self._state.get(bucket.key)
        level = bucket.capacity if entry is None else refill(entry[0], entry[1], now, bucket)
        self._state[bucket.key] = [min(level - delta, bucket.capacity), now]

    def _sweep(self, now: float) -> None:
        # Without the buckets' rates at hand, keep the most recently used half.
        ordered = sorted(self._state.items(), key=lambda item: item[1][1])
        self._state = dict(ordered[len(ordered) // 2 :])
