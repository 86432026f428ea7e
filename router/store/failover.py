"""Shared state that survives losing Redis: calls go to Redis while it is reachable and to this
process's memory while it is not; when Redis returns, what was kept locally is written back.

Rate limits during an outage are enforced per process (reported as ``degraded`` in ``/health``);
responses stored during an outage are copied to Redis when it returns, with their remaining TTL.
Spend settled during an outage is kept in order and added to Redis when it returns; meanwhile
budgets are checked from the levels Redis last reported plus what this process spent and reserved
since, and spend reports answer 503 (the ledger of record is in Redis).
"""

from __future__ import annotations

from collections.abc import Sequence

from router.clock import Clock
from router.errors import LedgerUnavailable
from router.store.buckets import Bucket, MemoryLimitStore, TakeResult
from router.store.redis_limits import RedisLimitStore
from router.store.redis_link import UNREACHABLE, RedisLink
from router.store.redis_responses import RedisResponseStore
from router.store.redis_spend import RedisSpendStore
from router.store.responses import MemoryResponseStore, StoredResponse
from router.store.spend import Cap, Charge, MemorySpendStore, Reservation, Totals

LOCAL_LEASE = "local:"  # a reservation made in this process's memory during an outage


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


class FailoverSpendStore:
    def __init__(self, link: RedisLink, shared: RedisSpendStore, local: MemorySpendStore) -> None:
        self._link = link
        self._shared = shared
        self._local = local  # budgets during an outage only
        link.on_up(self.write_back)

    async def reserve(self, caps: Sequence[Cap]) -> Reservation:
        if self._link.up:
            try:
                reservation = await self._shared.reserve(caps)
            except UNREACHABLE as exc:
                self._link.lost(exc)
            else:
                self._local.remember(caps, reservation.levels)
                return reservation
        # What this process settled that Redis does not hold yet counts against its budgets.
        self._local.spent_meanwhile(self._shared.unsent())
        reservation = self._local.reserve_now(caps)
        if reservation.lease is None:
            return reservation
        return Reservation(failed=None, levels=reservation.levels, lease=LOCAL_LEASE + reservation.lease)

    def settle(self, leases: Sequence[str], charge: Charge | None) -> None:
        shared = [lease for lease in leases if not lease.startswith(LOCAL_LEASE)]
        for lease in leases:
            if lease.startswith(LOCAL_LEASE):
                self._local.release(lease.removeprefix(LOCAL_LEASE))
        self._shared.settle(shared, charge)  # kept until Redis has it, however long that takes

    async def totals(self, periods: Sequence[str]) -> Totals:
        if self._link.up:
            try:
                return await self._shared.totals(periods)
            except UNREACHABLE as exc:
                self._link.lost(exc)
        raise LedgerUnavailable(
            "The spend ledger is in Redis, which this router cannot reach now; what it records "
            "meanwhile is kept and added when Redis returns. Try again shortly."
        )

    async def write_back(self) -> None:
        """Add the spend kept during an outage to Redis (raises ``UNREACHABLE`` if it goes again)."""
        await self._shared.write_back()
        self._local.forget()

    async def aclose(self) -> None:
        await self._shared.aclose()
