"""Kept answers of the response cache in Redis, shared by every worker and instance on it.

Each answer is one key (``SET`` with ``PX``, the TTL it was put with), so Redis drops it by itself;
how many there are is bounded by the TTL and by Redis's own ``maxmemory`` policy, not by the
catalog's ``max_entries``. A cache is an optimisation, never a dependency: while Redis cannot be
asked, every lookup is a miss and nothing is kept (no answer is kept in this process for later,
unlike stored responses), and no request fails for it.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from router.store.redis_link import UNREACHABLE, RedisLink

_log = logging.getLogger("router.store")


class RedisCacheStore:
    """Raises one of ``UNREACHABLE`` when Redis cannot be asked; ``FailoverCacheStore`` decides."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._prefix = link.prefix + "cache:"

    @property
    def describe(self) -> str:
        return f"redis ({self._link.redacted_url}; shared)"

    async def get(self, key: str) -> bytes | None:
        raw = await self._link.client.get(self._prefix + key)
        if raw is None:
            return None
        return raw.encode() if isinstance(raw, str) else bytes(raw)

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        await self._link.client.set(self._prefix + key, value, px=max(int(ttl_s * 1000), 1))

    def resize(self, max_entries: int) -> None:
        return None  # Redis bounds itself (TTL, maxmemory)


class FailoverCacheStore:
    """Redis while it answers; a miss and nothing kept while it does not."""

    def __init__(self, link: RedisLink, shared: RedisCacheStore) -> None:
        self._link = link
        self._shared = shared

    @property
    def describe(self) -> str:
        return self._shared.describe

    async def get(self, key: str) -> bytes | None:
        if not self._link.up:
            return None
        try:
            return await self._shared.get(key)
        except UNREACHABLE as exc:
            self._link.lost(exc)
        except RedisError as exc:  # e.g. a Redis refusing commands: the answer comes from a model
            _log.warning("response cache lookup failed: %s", exc, extra={"fields": {"event": "cache"}})
        return None

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        if not self._link.up:
            return
        try:
            await self._shared.put(key, value, ttl_s)
        except UNREACHABLE as exc:
            self._link.lost(exc)
        except RedisError as exc:  # e.g. out of memory under ``noeviction``: the answer is not kept
            _log.warning("response cache store failed: %s", exc, extra={"fields": {"event": "cache"}})

    def resize(self, max_entries: int) -> None:
        return None
