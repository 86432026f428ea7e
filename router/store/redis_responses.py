"""Stored Responses in Redis, each under its own key with the store's TTL, so any instance can
continue (``previous_response_id``), fetch or delete a response another one created."""

from __future__ import annotations

import msgspec

from router.clock import Clock
from router.store.redis_link import RedisLink
from router.store.responses import StoredResponse

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(StoredResponse).decode


class RedisResponseStore:
    """Raises one of ``UNREACHABLE`` when Redis cannot be asked; ``FailoverResponseStore`` decides."""

    def __init__(self, link: RedisLink, clock: Clock, ttl_s: float) -> None:
        self._link = link
        self._clock = clock
        self._prefix = link.prefix + "resp:"
        self.ttl_s = ttl_s

    @property
    def describe(self) -> str:
        return f"redis ({self._link.redacted_url}; responses kept {self.ttl_s:g}s)"

    async def get(self, response_id: str) -> StoredResponse | None:
        raw = await self._link.client.get(self._prefix + response_id)
        if raw is None:
            return None
        return _decode(raw.encode() if isinstance(raw, str) else raw)

    async def put(self, response_id: str, stored: StoredResponse, ttl_s: float | None = None) -> None:
        if not stored.stored_at:
            stored.stored_at = self._clock.wall()
        ttl = self.ttl_s if ttl_s is None else ttl_s
        await self._link.client.set(self._prefix + response_id, _encode(stored), px=max(int(ttl * 1000), 1))

    async def delete(self, response_id: str) -> bool:
        return bool(await self._link.client.delete(self._prefix + response_id))
