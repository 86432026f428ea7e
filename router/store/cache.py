"""Kept answers of the response cache by key: the store's Protocol and one process's store.

Values are opaque bytes (the API layer encodes what it keeps). The memory store holds at most
``max_entries`` values, dropping the least recently used first, each for the TTL it was put with; its
memory is therefore bounded by ``max_entries`` times the largest value the API layer lets in.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from router.clock import Clock


class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None:
        """The value kept under ``key``, unless it expired (a store that cannot be asked: ``None``)."""
        ...

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl_s`` seconds (a store that cannot be asked: nothing)."""
        ...

    def resize(self, max_entries: int) -> None:
        """Hold at most ``max_entries`` values from now on (a shared store keeps its own bound)."""
        ...

    @property
    def describe(self) -> str: ...


class MemoryCacheStore:
    """One process's kept answers: least recently used out first, each until its own expiry."""

    __slots__ = ("_clock", "_entries", "max_entries")

    def __init__(self, clock: Clock, max_entries: int) -> None:
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # (expires, value)
        self.max_entries = max_entries

    @property
    def describe(self) -> str:
        return f"memory (this process; at most {self.max_entries} answers)"

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock.monotonic() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        now = self._clock.monotonic()
        self._entries[key] = (now + ttl_s, value)
        self._entries.move_to_end(key)
        self._evict(now)

    def resize(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._evict(self._clock.monotonic())

    def _evict(self, now: float) -> None:
        entries = self._entries
        while len(entries) > self.max_entries:
            entries.popitem(last=False)
        # Expired entries at the cold end go now rather than when they are next asked for.
        while entries:
            expires, _ = next(iter(entries.values()))
            if expires > now:
                break
            entries.popitem(last=False)
