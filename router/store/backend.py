"""Which shared-state backend serves this process: ``memory`` (one process) or ``redis`` (several
workers or instances), and what ``/health`` and ``/help`` say about its scope."""

from __future__ import annotations

from typing import Literal

import msgspec

from router.clock import Clock
from router.store.breaker_sync import BreakerSync
from router.store.buckets import LimitStore, MemoryLimitStore
from router.store.cache import CacheStore, MemoryCacheStore
from router.store.failover import FailoverLimitStore, FailoverResponseStore, FailoverSpendStore
from router.store.redis_cache import FailoverCacheStore, RedisCacheStore
from router.store.redis_limits import RedisLimitStore
from router.store.redis_link import RedisLink
from router.store.redis_responses import RedisResponseStore
from router.store.redis_spend import RedisSpendStore
from router.store.responses import MemoryResponseStore, ResponseStore
from router.store.spend import MemorySpendStore, SpendStore


class StoreReport(msgspec.Struct, frozen=True, kw_only=True):
    backend: Literal["memory", "redis"]
    # "shared": every worker and instance on one Redis; "process": this process only;
    # "per_worker": several workers, each with its own limits and breakers.
    scope: Literal["shared", "process", "per_worker"]
    connected: bool | None = None
    degraded: bool = False
    url: str | None = None
    outages: int = 0
    last_error: str | None = None
    note: str


PER_WORKER_NOTE = (
    "{n} workers without Redis: rate limits, breakers, stored responses, the response cache and the "
    "spend ledger are per worker, so each limit and budget is in effect multiplied by {n} and spend "
    "reports show one worker's share. Set ROUTER_REDIS_URL to share them."
)


class StateBackend:
    def __init__(
        self,
        limits: LimitStore,
        responses: ResponseStore,
        cache: CacheStore,
        spend: SpendStore,
        *,
        link: RedisLink | None = None,
        sync: BreakerSync | None = None,
        workers: int = 1,
    ) -> None:
        self.limits = limits
        self.responses = responses
        self.cache = cache  # the response cache's kept answers (used only when the cache is on)
        self.spend = spend  # the ledger and budget reservations: outlives catalog reloads
        self.link = link
        self.sync = sync
        self.workers = workers

    async def start(self) -> None:
        if self.link is not None:
            await self.link.start()

    async def aclose(self) -> None:
        if self.sync is not None:
            await self.sync.aclose()
        if isinstance(self.limits, FailoverLimitStore):
            await self.limits.aclose()
        await self.spend.aclose()
        if self.link is not None:
            await self.link.aclose()

    def report(self) -> StoreReport:
        link = self.link
        if link is None:
            if self.workers > 1:
                note = PER_WORKER_NOTE.format(n=self.workers)
                return StoreReport(backend="memory", scope="per_worker", note=note)
            return StoreReport(backend="memory", scope="process", note="one process: state is in its memory")
        note = (
            "shared by every worker and instance using this Redis"
            if link.up
            else "Redis is unreachable: limits, budgets and breakers are enforced by each process until "
            "it returns (spend is kept and added back then)"
        )
        return StoreReport(
            backend="redis",
            scope="shared" if link.up else "process",
            connected=link.up,
            degraded=not link.up,
            url=link.redacted_url,
            outages=link.outages,
            last_error=link.last_error,
            note=note,
        )


def build_backend(
    clock: Clock,
    *,
    redis_url: str | None,
    prefix: str,
    instance: str,
    responses_max: int,
    responses_ttl_s: float,
    workers: int,
    cache_max_entries: int = 1000,
) -> StateBackend:
    local_responses = MemoryResponseStore(clock, responses_max, responses_ttl_s)
    local_limits = MemoryLimitStore(clock)
    local_spend = MemorySpendStore(clock)
    if not redis_url:
        cache: CacheStore = MemoryCacheStore(clock, cache_max_entries)
        return StateBackend(local_limits, local_responses, cache, local_spend, workers=workers)
    link = RedisLink(redis_url, prefix)
    limits = FailoverLimitStore(link, RedisLimitStore(link), local_limits)
    responses = FailoverResponseStore(
        link, RedisResponseStore(link, clock, responses_ttl_s), local_responses, clock
    )
    spend = FailoverSpendStore(link, RedisSpendStore(link, clock, instance), local_spend)
    sync = BreakerSync(link, instance, clock)
    cache = FailoverCacheStore(link, RedisCacheStore(link))
    return StateBackend(limits, responses, cache, spend, link=link, sync=sync, workers=workers)
