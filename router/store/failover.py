"""Shared state that survives losing Redis: calls go to Redis while it is reachable and to this
process's memory while it is not; when Redis returns, what was kept locally is written back.

Rate limits during an outage are enforced per process (reported as ``degraded`` in ``/health``);
responses stored during an outage are copied to Redis when it returns, with their remaining TTL.
"""

from __future__ import annotations

from collections.abc import Sequence

from router.clock import Clock
from router.store.buckets import Bucket, MemoryLimitStore, TakeResult
from router.store.redis_limits import RedisLimitStore
from router.store.redis_link import UNREACHABLE, RedisLink
from router.store.redis_responses import RedisResponseStore
from router.store.responses import MemoryResponseStore, StoredResponse


class FailoverLimitStore:
    def __init__(self, link: RedisLink, shared: RedisLimitStore, local: MemoryLimitStore) -> None:
        self._link = link
        self._shared = shared
        self._local = local

    async def take(self, buckets: Sequence[Bucket]) -> TakeResult:
        if self._link.up:
            try:
                return await self._shared.take(buckets)
            except UNREACHABLE as exc:
                self._link.lost(exc)
        return self._local.take_now(buckets)

    def adjust(self, bucket: Bucket, delta: float) -> None:
        if self._link.up:
            self._shared.adjust(bucket, delta)
        else:
            self._local.adjust(bucket, delta)

    async def aclose(self) -> None:
        await self._shared.aclose()


class FailoverResponseStore:
    def __init__(
        self, link: RedisLink, shared: RedisResponseStore, local: MemoryResponseStore, clock: Clock
    ) -> None:
        self._link = link
        self._shared = shared
        self._local = local  # what was stored while Redis was away, until it is written back
        self._clock = clock
        link.on_up(self.write_back)

    @property
    def describe(self) -> str:
        return self._shared.describe

    async def get(self, response_id: str) -> StoredResponse | None:
        local = await self._local.get(response_id)
        if local is not None:
            return local
        if self._link.up:
            try:
                return await self._shared.get(response_id)
            except UNREACHABLE as exc:
                self._link.lost(exc)
        return None

    async def put(self, response_id: str, stored: StoredResponse) -> None:
        if self._link.up:
            try:
                await self._shared.put(response_id, stored)
                return
            except UNREACHABLE as exc:
                self._link.lost(exc)
        await self._local.put(response_id, stored)

    async def delete(self, response_id: str) -> bool:
        deleted = await self._local.delete(response_id)
        if self._link.up:
            try:
                deleted = await self._shared.delete(response_id) or deleted
            except UNREACHABLE as exc:
                self._link.lost(exc)
        return deleted

    async def write_back(self) -> None:
        """Copy responses stored during an outage to Redis (raises ``UNREACHABLE`` if it goes again)."""
        now = self._clock.wall()
        for response_id, stored in self._local.items():
            remaining = self._shared.ttl_s - (now - stored.stored_at)
            if remaining > 0:
                await self._shared.put(response_id, stored, ttl_s=remaining)
            await self._local.delete(response_id)
