"""Breaker trips and closes shared through Redis, so every instance stops calling a failing model
within milliseconds of the first one noticing, and resumes when one of them sees it healthy.

Nothing is read from Redis on the request path. Each failure is also counted in Redis (one round trip,
off the request path: a failure already cost one), so that ``consecutive_failures`` failures across all
instances trip the breaker as they would in one; a success resets the count only when its instance had
counted failures since its last success. An open or close is published on a channel and recorded in a
hash; instances apply what they hear from the others, and on every (re)connection share their open
breakers and read the hash, so a trip made while Redis was away reaches the rest when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, Literal, Protocol

import msgspec
import redis.asyncio as aioredis

from router.clock import Clock
from router.store.redis_link import UNREACHABLE, RedisLink

_log = logging.getLogger("router.store")


class BreakerPeer(Protocol):
    """What the sync needs of this instance's breakers."""

    def peer_opened(self, model: str, until_wall: float, reason: str) -> None: ...

    def peer_closed(self, model: str, reason: str) -> None: ...

    def shared_trip(self, model: str, failures: int, retry_after: float | None) -> None: ...

    def open_until_wall(self, model: str) -> float | None: ...

    def open_models(self) -> list[tuple[str, float]]: ...


class BreakerNews(msgspec.Struct, frozen=True):
    origin: str
    model: str
    state: Literal["open", "closed"]
    until: float = 0.0  # wall clock, for "open"
    reason: str = ""


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(BreakerNews).decode

# KEYS[1]: a model's shared failure count. ARGV: the threshold, the window in ms. The count lives as
# long as failures keep coming within the window; reaching the threshold hands it to a trip.
COUNT_FAILURE = """
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if n >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return n
"""


class BreakerSync:
    def __init__(self, link: RedisLink, instance: str, clock: Clock) -> None:
        self._link = link
        self.instance = instance
        self._clock = clock
        self._peer: BreakerPeer | None = None
        self._applying = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.channel = link.prefix + "breakers"
        self.hash = link.prefix + "breakers:open"
        self.failures = link.prefix + "breakers:failures:"
        self._count_failure = link.client.register_script(COUNT_FAILURE)
        link.on_up(self.resync)
        link.subscribe_with(self.listen)

    def attach(self, peer: BreakerPeer) -> None:
        self._peer = peer

    # --- failures counted across instances (router.routing.breaker.SharedFailures) -----------------

    def failed(self, model: str, threshold: int, window_s: float, retry_after: float | None) -> None:
        if self._link.up and self._peer is not None:
            self._spawn(self._failed(model, threshold, window_s, retry_after))

    async def _failed(self, model: str, threshold: int, window_s: float, retry_after: float | None) -> None:
        try:
            count = int(
                await self._count_failure(
                    keys=[self.failures + model], args=[threshold, int(window_s * 1000)]
                )
            )
        except UNREACHABLE as exc:
            self._link.lost(exc)
            return
        if count >= threshold and self._peer is not None:
            self._peer.shared_trip(model, count, retry_after)

    def recovered(self, model: str) -> None:
        if self._link.up:
            self._spawn(self._recovered(model))

    async def _recovered(self, model: str) -> None:
        try:
            await self._link.client.delete(self.failures + model)
        except UNREACHABLE as exc:
            self._link.lost(exc)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:  # no running loop (a synchronous caller): nothing to share it with
            work.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- opens and closes ------------------------------------------------------------------------

    def transition(self, model: str, old: str, new: str, reason: str) -> None:
        """The breaker board's transition callback: share this instance's own opens and closes."""
        if self._applying or self._peer is None or new == "half_open":
            return
        if new == "open":
            until = self._peer.open_until_wall(model) or self._clock.wall()
            news = BreakerNews(self.instance, model, "open", until, reason)
        else:
            news = BreakerNews(self.instance, model, "closed", reason=reason)
        self._spawn(self._publish(news))  # without a running loop, resync shares it later

    async def _publish(self, news: BreakerNews) -> None:
        if not self._link.up:
            return  # shared by resync when Redis returns
        try:
            async with self._link.client.pipeline(transaction=False) as pipe:
                if news.state == "open":
                    pipe.hset(self.hash, news.model, _encode(news))
                else:
                    pipe.hdel(self.hash, news.model)
                pipe.delete(self.failures + news.model)  # a new streak starts from zero
                pipe.publish(self.channel, _encode(news))
                await pipe.execute()
        except UNREACHABLE as exc:
            self._link.lost(exc)

    def apply(self, news: BreakerNews) -> None:
        if news.origin == self.instance or self._peer is None:
            return
        self._applying = True
        try:
            if news.state == "open":
                self._peer.peer_opened(news.model, news.until, news.reason)
            else:
                self._peer.peer_closed(news.model, news.reason)
        finally:
            self._applying = False

    async def resync(self) -> None:
        """Share this instance's open breakers, then take on the others' (runs on every connection)."""
        if self._peer is None:
            return
        now = self._clock.wall()
        client = self._link.client
        async with client.pipeline(transaction=False) as pipe:
            for model, until in self._peer.open_models():
                news = BreakerNews(self.instance, model, "open", until, "shared after reconnecting")
                pipe.hset(self.hash, model, _encode(news))
                pipe.publish(self.channel, _encode(news))
            await pipe.execute()
        await self._take_shared(now)

    async def _take_shared(self, now: float) -> None:
        for raw in (await self._link.client.hgetall(self.hash)).values():
            with contextlib.suppress(msgspec.DecodeError):
                news = _decode(raw)
                if news.until > now:
                    self.apply(news)

    async def listen(self, client: aioredis.Redis) -> None:
        """Apply other instances' news until the link goes down (raises ``UNREACHABLE`` then)."""
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            # Anything opened between the connection's resync and this subscription is in the hash.
            await self._take_shared(self._clock.wall())
            while self._link.up:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is not None and message.get("type") == "message":
                    try:
                        self.apply(_decode(message["data"]))
                    except msgspec.DecodeError:
                        _log.warning("ignored a malformed breaker message on %s", self.channel)
        finally:
            with contextlib.suppress(*UNREACHABLE, Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]

    async def aclose(self) -> None:
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
