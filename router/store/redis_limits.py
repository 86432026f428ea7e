"""Rate-limit buckets in Redis: every bucket of a request checked and charged in one Lua script, so
any number of workers and instances enforce exactly the configured rate (one round trip a request).

Time comes from the Redis server (``TIME``), so instances with skewed clocks still agree. Corrections
(``adjust``) are queued and sent in one pipeline every few milliseconds, off the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from router.store.buckets import Bucket, TakeResult
from router.store.redis_link import UNREACHABLE, RedisLink

# Shared by both scripts: a bucket's level now (refilled since its last change), and storing one.
_BUCKETS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function level_of(key, cap, rate)
  local s = redis.call('HMGET', key, 'l', 't')
  local level = tonumber(s[1])
  if level == nil then return cap end
  return math.min(cap, level + math.max(0, now - tonumber(s[2])) * rate)
end
local function store(key, level, cap, rate)
  redis.call('HSET', key, 'l', tostring(level), 't', tostring(now))
  -- kept until it would be full again, so idle buckets cost no memory
  redis.call('PEXPIRE', key, math.ceil((cap - level) / rate * 1000) + 1000)
end
"""

# KEYS: the buckets. ARGV: capacity, per_s, cost for each. Returns {failed index (0: none), wait,
# level...} with numbers as strings (Lua numbers would be truncated to integers).
TAKE = (
    _BUCKETS
    + """
local levels = {}
local failed = 0
local wait = '0'
for i = 1, #KEYS do
  if failed == 0 and tonumber(ARGV[3 * i]) > tonumber(ARGV[3 * i - 2]) then
    failed = i
    wait = '-1'
  end
end
for i = 1, #KEYS do
  local cap, rate, cost = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  levels[i] = level_of(KEYS[i], cap, rate)
  if failed == 0 and levels[i] < cost then
    failed = i
    wait = tostring((cost - levels[i]) / rate)
  end
end
if failed == 0 then
  for i = 1, #KEYS do
    levels[i] = levels[i] - tonumber(ARGV[3 * i])
    store(KEYS[i], levels[i], tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]))
  end
end
local out = {tostring(failed), wait}
for i = 1, #KEYS do out[#out + 1] = tostring(levels[i]) end
return out
"""
)

# KEYS[1]: the bucket. ARGV: capacity, per_s, delta (charged; negative refunds).
ADJUST = (
    _BUCKETS
    + """
local cap, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local level = math.min(cap, level_of(KEYS[1], cap, rate) - tonumber(ARGV[3]))
store(KEYS[1], level, cap, rate)
return tostring(level)
"""
)

FLUSH_INTERVAL_S = 0.02


class RedisLimitStore:
    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._prefix = link.prefix + "rl:"
        self._take = link.client.register_script(TAKE)
        self._adjust = link.client.register_script(ADJUST)
        self._pending: list[tuple[Bucket, float]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def take(self, buckets: Sequence[Bucket]) -> TakeResult:
        """Raises one of ``UNREACHABLE`` when Redis cannot be asked; the caller decides locally."""
        keys = [self._prefix + b.key for b in buckets]
        args: list[float] = []
        for b in buckets:
            args.extend((b.capacity, b.per_s, b.cost))
        raw = await self._take(keys=keys, args=args)
        failed = int(raw[0])
        wait = float(raw[1])
        levels = tuple(float(x) for x in raw[2:])
        if failed == 0:
            return TakeResult(failed=None, retry_after=None, levels=levels)
        return TakeResult(failed=failed - 1, retry_after=None if wait < 0 else wait, levels=levels)

    def adjust(self, bucket: Bucket, delta: float) -> None:
        self._pending.append((bucket, delta))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_INTERVAL_S)
        await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending or not self._link.up:
            return  # corrections made while Redis is away are lost with the local buckets' state
        try:
            async with self._link.client.pipeline(transaction=False) as pipe:
                for bucket, delta in pending:
                    await self._adjust(
                        keys=[self._prefix + bucket.key],
                        args=[bucket.capacity, bucket.per_s, delta],
                        client=pipe,
                    )
                await pipe.execute()
        except UNREACHABLE as exc:
            self._link.lost(exc)

    async def aclose(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        with contextlib.suppress(*UNREACHABLE):
            await self.flush()
