"""The response cache's policy: whether it is on, what a request's key is, what a request's
``Cache-Control`` asks of it, and how a kept answer is written and read.

The key is a BLAKE2b hash of the calling key's name (each API key has its own entries; an open
router has one scope), the route, and the request body as sent minus ``stream`` and
``stream_options``, re-encoded with sorted keys (so neither key order, whitespace nor streaming
splits entries). Every other field is part of it, ``user`` and ``metadata`` included: two end users
of one key never share an entry. What is kept is the whole answer as its route's JSON body (a
streamed answer assembled), with the model and provider that served it; a hit replays it as JSON or
as its route's stream. The routes decide which answers are complete enough to keep
(``exchange.RouteCache``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from router.catalog import CacheSpec
from router.clock import Clock
from router.settings import Settings
from router.store import CacheStore

CACHE_HEADER: Final = "x-router-cache"
HIT: Final = "hit"
MISS: Final = "miss"  # a refresh (``no-cache``) is a miss too: answered by a model, then kept
BYPASS: Final = "bypass"
# Fields that change how an answer is sent, not what it is.
NOT_IN_KEY: Final = frozenset({"stream", "stream_options"})
# Changing how entries are encoded changes this, so old entries are never misread.
KEY_VERSION: Final = b"router-cache/1"

_log = logging.getLogger("router.api")


class CachedAnswer(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """One kept answer: its JSON body and what the headers of a hit say about it."""

    body: bytes
    model: str
    provider: str
    strategy: str | None = None
    stored_at: float = 0.0  # wall time, for the ``age`` header of a hit


_encode_entry = msgspec.msgpack.Encoder().encode
_decode_entry = msgspec.msgpack.Decoder(CachedAnswer).decode
_canonical = msgspec.json.Encoder(order="sorted").encode


class Directives(msgspec.Struct, frozen=True):
    """What a request's ``Cache-Control`` asks: whether a kept answer may answer it, and whether its
    answer may be kept."""

    read: bool = True
    keep: bool = True


DEFAULT = Directives()
REFRESH = Directives(read=False)
NO_STORE = Directives(read=False, keep=False)


def directives(headers: Iterable[tuple[bytes, bytes]]) -> Directives:
    """``no-store`` bypasses the cache; ``no-cache`` (or ``max-age=0``) refreshes it: not read, kept."""
    found = DEFAULT
    for name, value in headers:
        if name != b"cache-control":
            continue
        for part in value.decode("latin-1").lower().split(","):
            said = part.strip().replace(" ", "")
            if said == "no-store":
                return NO_STORE
            if said in ("no-cache", "max-age=0"):
                found = REFRESH
    return found


def effective_spec(spec: CacheSpec, settings: Settings) -> CacheSpec:
    """The catalog's ``cache`` section, switched on with its TTL by ``ROUTER_CACHE_TTL_S`` > 0."""
    if settings.cache_ttl_s > 0:
        return msgspec.structs.replace(spec, enabled=True, ttl_s=settings.cache_ttl_s)
    return spec


class ResponseCache:
    """The cache as one catalog configures it, over the store the state backend keeps answers in."""

    __slots__ = ("_clock", "spec", "store")

    def __init__(self, spec: CacheSpec, store: CacheStore, clock: Clock) -> None:
        self.spec = spec
        self.store = store
        self._clock = clock

    @classmethod
    def configured(
        cls, spec: CacheSpec, settings: Settings, store: CacheStore, clock: Clock
    ) -> ResponseCache | None:
        """The cache, or ``None`` when it is off; the store holds the new bound from now on."""
        spec = effective_spec(spec, settings)
        if not spec.enabled:
            return None
        store.resize(spec.max_entries)
        return cls(spec, store, clock)

    def key(self, owner: str | None, route: str, raw: dict[str, Any]) -> str:
        """The entry's key for a request of ``owner`` (a key's name; ``None``: an open router)."""
        kept = {name: value for name, value in raw.items() if name not in NOT_IN_KEY}
        digest = hashlib.blake2b(KEY_VERSION, digest_size=32)
        digest.update(b"\0" + (owner or "").encode() + b"\0" + route.encode() + b"\0")
        digest.update(_canonical(kept))
        return digest.hexdigest()

    async def get(self, key: str) -> CachedAnswer | None:
        raw = await self.store.get(key)
        if raw is None:
            return None
        try:
            return _decode_entry(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            _log.warning("a kept answer could not be read; answering from a model", extra={"fields": {}})
            return None

    async def put(self, key: str, body: bytes, model: str, provider: str, strategy: str | None) -> bool:
        """Keep an answer, unless it is larger than ``max_entry_bytes``; whether it was kept."""
        entry = CachedAnswer(
            body=body, model=model, provider=provider, strategy=strategy, stored_at=self._clock.wall()
        )
        raw = _encode_entry(entry)
        if len(raw) > self.spec.max_entry_bytes:
            return False
        await self.store.put(key, raw, self.spec.ttl_s)
        return True

    def age(self, entry: CachedAnswer) -> int:
        """Whole seconds since ``entry`` was kept (the ``age`` header of a hit)."""
        return max(int(self._clock.wall() - entry.stored_at), 0)


__all__ = [
    "BYPASS",
    "CACHE_HEADER",
    "HIT",
    "MISS",
    "CachedAnswer",
    "Directives",
    "ResponseCache",
    "directives",
]
