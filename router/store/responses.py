"""Stored Responses: what ``previous_response_id`` continues and ``GET /v1/responses/{id}`` returns.

The memory store keeps at most ``max_items`` responses for at most ``ttl_s`` seconds, evicting the
oldest first, so a busy router's memory stays bounded however long it runs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

import msgspec

from router.clock import Clock


class StoredResponse(msgspec.Struct, kw_only=True):
    response: dict[str, Any]
    # The conversation's input that produced ``response`` (earlier turns included), as input items.
    items: list[dict[str, Any]]
    stored_at: float = 0.0
    # The name of the API key that created it: another key cannot read, continue or delete it.
    owner: str | None = None

    def continuation(self) -> list[dict[str, Any]]:
        """The input items that continue this conversation: its input, then its output."""
        return [*self.items, *self.response.get("output", ())]


class ResponseStore(Protocol):
    async def get(self, response_id: str) -> StoredResponse | None: ...

    async def put(self, response_id: str, stored: StoredResponse) -> None: ...

    async def delete(self, response_id: str) -> bool: ...

    @property
    def describe(self) -> str: ...


class MemoryResponseStore:
    """One process's stored responses, bounded by count and age."""

    def __init__(self, clock: Clock, max_items: int = 10_000, ttl_s: float = 86_400.0) -> None:
        self._clock = clock
        self._items: OrderedDict[str, StoredResponse] = OrderedDict()
        self.max_items = max_items
        self.ttl_s = ttl_s

    @property
    def describe(self) -> str:
        return f"memory (this process; at most {self.max_items} responses for {self.ttl_s:g}s)"

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, StoredResponse]]:
        return list(self._items.items())

    async def get(self, response_id: str) -> StoredResponse | None:
        stored = self._items.get(response_id)
        if stored is None:
            return None
        if self._clock.wall() - stored.stored_at > self.ttl_s:
            del self._items[response_id]
            return None
        return stored

    async def put(self, response_id: str, stored: StoredResponse) -> None:
        stored.stored_at = self._clock.wall()
        self._items[response_id] = stored
        self._items.move_to_end(response_id)
        self._evict()

    async def delete(self, response_id: str) -> bool:
        return self._items.pop(response_id, None) is not None

    def _evict(self) -> None:
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        horizon = self._clock.wall() - self.ttl_s
        while self._items:
            oldest = next(iter(self._items.values()))
            if oldest.stored_at >= horizon:
                break
            self._items.popitem(last=False)
