"""The connection to Redis: one pool, whether Redis is reachable now, and the watcher that notices
it fail and come back.

Nothing on the request path waits for a Redis that is down: the first failed call marks the link
down, callers use their local state from then on, and the watcher pings every half second until
Redis answers again; then each ``on_up`` callback resynchronises (breakers, stored responses) and
the ``subscriber`` (breaker propagation) runs again until the next failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from router.settings import redact_url

# What a call raises when Redis is unreachable or too slow: the caller falls back to local state.
UNREACHABLE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeout, OSError, TimeoutError)
CALL_TIMEOUT_S = 0.5
PROBE_INTERVAL_S = 0.5

_log = logging.getLogger("router.store")
Subscriber = Callable[["aioredis.Redis"], Awaitable[None]]


class RedisLink:
    def __init__(self, url: str, prefix: str = "router:") -> None:
        self.url = url
        self.prefix = prefix
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=CALL_TIMEOUT_S,
            socket_connect_timeout=CALL_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
            max_connections=512,
        )
        self.up = False
        self.last_error: str | None = None
        self.outages = 0
        self._on_up: list[Callable[[], Awaitable[None]]] = []
        self._subscriber: Subscriber | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._wake = asyncio.Event()

    def on_up(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._on_up.append(callback)

    def subscribe_with(self, subscriber: Subscriber) -> None:
        self._subscriber = subscriber

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    async def start(self) -> None:
        """Connect now if Redis answers; the watcher keeps trying if not."""
        if not await self._probe():
            _log.warning(
                "redis unreachable at start; serving from this process's state until it answers",
                extra={"fields": {"event": "store", "store": "redis", "up": False, "error": self.last_error}},
            )
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def aclose(self) -> None:
        # The subscriber loops while the link is up, and redis-py can swallow a cancellation that
        # lands inside a read with a timeout: marking the link closed is what surely ends it.
        self._closed = True
        self.up = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.aclose()

    def lost(self, exc: BaseException) -> None:
        """A call failed because Redis is unreachable: serve from local state until it returns."""
        if self.up:
            self.up = False
            self.outages += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            _log.warning(
                "redis unreachable; serving from this process's state until it returns",
                extra={"fields": {"event": "store", "store": "redis", "up": False, "error": self.last_error}},
            )
            self._wake.set()

    async def _probe(self) -> bool:
        try:
            await self.client.ping()
        except RedisError as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            return False
        except UNREACHABLE as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            return False
        was_down = not self.up
        self.up = True
        for callback in self._on_up:
            try:
                await callback()
            except UNREACHABLE as exc:
                self.lost(exc)
                return False
        if was_down:
            _log.info(
                "redis reachable; state is shared again",
                extra={"fields": {"event": "store", "store": "redis", "up": True}},
            )
        return True

    async def _watch(self) -> None:
        while not self._closed:
            if not self.up and not await self._probe():
                await asyncio.sleep(PROBE_INTERVAL_S)
                continue
            self._wake.clear()
            if self._subscriber is None:
                await self._wait_for_loss()
                continue
            try:
                await self._subscriber(self.client)
            except UNREACHABLE as exc:
                self.lost(exc)
            except RedisError as exc:
                _log.warning("redis subscriber failed: %s", exc)
                self.lost(exc)
            await asyncio.sleep(PROBE_INTERVAL_S)

    async def _wait_for_loss(self) -> None:
        """With no subscriber, check the link every few seconds while it is up."""
        while self.up:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=2.0)
            if not self.up:
                return
            try:
                await self.client.ping()
            except UNREACHABLE as exc:
                self.lost(exc)
