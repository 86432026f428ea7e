"""The spend ledger and budget reservations in Redis, shared by every worker and instance.

A reservation is one Lua script (one round trip, made only for requests a budget applies to): it
gives back the leases of requests that never settled, checks every cap against the spend and the
reservations in flight, and reserves on all of them or none. Settling waits for nothing: the
increments (``HINCRBY`` on one hash per period) and the releases are gathered and written by one
task, a batch per round trip, so that under load one call carries many answers. Each process numbers
its batches and Redis remembers the last one it applied from it (in the same script), so a batch
sent again after a failure that left its fate unknown is not counted twice (and Redis keeps one key
a process, not one a batch); batches that could not be written are kept in this process, in order,
and written when Redis returns. Reports call ``flush`` before reading, so they include everything
this process settled; another process's last answers follow within a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence

from redis.exceptions import RedisError

from router.clock import Clock
from router.store.redis_link import UNREACHABLE, RedisLink
from router.store.spend import (
    KEEP_DAYS,
    LEASE_S,
    TOTAL,
    Cap,
    Charge,
    Reservation,
    SpendTable,
    Tally,
    Totals,
)

_log = logging.getLogger("router.store")

# Gives back what a lease holds; used by both scripts. ``held`` is "name\namount\nname\namount...".
_RELEASE = """
local function release(reserved, held)
  local parts = {}
  for part in string.gmatch(held, '[^\\n]+') do parts[#parts + 1] = part end
  for j = 1, #parts - 1, 2 do
    if redis.call('HINCRBY', reserved, parts[j], -tonumber(parts[j + 1])) <= 0 then
      redis.call('HDEL', reserved, parts[j])
    end
  end
end
"""

# KEYS: leases (zset: id -> expiry ms), lease hash (id -> what it holds), reserved hash, then the
# ledger hash of each cap. ARGV: lease id, lease ms, then per cap: ledger field, reserved field,
# limit, amount. Returns {failed index (0: none), level...}.
RESERVE = (
    _RELEASE
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)) do
  local held = redis.call('HGET', KEYS[2], id)
  if held then release(KEYS[3], held) end
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
end
local n = (#ARGV - 2) / 4
local failed = 0
local out = {0}
for i = 1, n do
  local a = 2 + (i - 1) * 4
  local level = tonumber(redis.call('HGET', KEYS[3 + i], ARGV[a + 1]) or '0')
    + tonumber(redis.call('HGET', KEYS[3], ARGV[a + 2]) or '0')
  out[i + 1] = level
  if failed == 0 and level + tonumber(ARGV[a + 4]) > tonumber(ARGV[a + 3]) then failed = i end
end
out[1] = failed
if failed == 0 then
  local parts = {}
  for i = 1, n do
    local a = 2 + (i - 1) * 4
    if tonumber(ARGV[a + 4]) > 0 then
      redis.call('HINCRBY', KEYS[3], ARGV[a + 2], ARGV[a + 4])
      parts[#parts + 1] = ARGV[a + 2]
      parts[#parts + 1] = ARGV[a + 4]
    end
  end
  if #parts > 0 then
    redis.call('HSET', KEYS[2], ARGV[1], table.concat(parts, '\\n'))
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  end
end
return out
"""
)

# KEYS: the sending process's last applied batch, leases, lease hash, reserved hash, then the ledger
# hashes the batch adds to. ARGV: the batch's number, seconds to remember it, number of ledger hashes
# h, then each one's seconds to live, the number of increments m, then (hash index, field, amount)
# each, then the lease ids to release. A process sends its batches one at a time, in the order of
# their numbers, so a number not above the last applied one is a batch sent again: it is skipped.
# Returns 1 when applied, 0 when skipped.
COMMIT = (
    _RELEASE
    + """
if tonumber(ARGV[1]) <= tonumber(redis.call('GET', KEYS[1]) or '0') then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local h = tonumber(ARGV[3])
local m = tonumber(ARGV[4 + h])
local a = 4 + h
for i = 1, m do
  redis.call('HINCRBY', KEYS[4 + tonumber(ARGV[a + 1])], ARGV[a + 2], ARGV[a + 3])
  a = a + 3
end
for i = 1, h do redis.call('EXPIRE', KEYS[4 + i], ARGV[3 + i]) end
for i = a + 1, #ARGV do
  local held = redis.call('HGET', KEYS[3], ARGV[i])
  if held then release(KEYS[4], held) end
  redis.call('HDEL', KEYS[3], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
return 1
"""
)

APPLIED_S = 7 * 86_400  # how long a process's last applied batch is remembered (one key a process)
DAY_TTL_S = KEEP_DAYS * 86_400
MONTH_TTL_S = 2 * KEEP_DAYS * 86_400


class _Batch:
    """Charges and releases gathered since the last write; sealed (numbered, the charges turned into
    ledger fields) when its write begins."""

    __slots__ = ("leases", "number", "table", "tally")

    def __init__(self) -> None:
        self.tally = Tally()
        self.table = SpendTable()
        self.leases: list[str] = []
        self.number = 0

    def empty(self) -> bool:
        return not self.tally and not self.table.periods and not self.leases

    def seal(self, number: int) -> None:
        self.number = number
        self.tally.fold(self.table)


class RedisSpendStore:
    """Raises one of ``UNREACHABLE`` from ``reserve`` and ``totals`` when Redis cannot be asked."""

    def __init__(self, link: RedisLink, clock: Clock, instance: str, lease_s: float = LEASE_S) -> None:
        self._link = link
        self._clock = clock
        self._prefix = link.prefix + "spend:"
        self._leases_key = self._prefix + "leases"
        self._lease_key = self._prefix + "lease"
        self._reserved_key = self._prefix + "reserved"
        self._lease_ms = int(lease_s * 1000)
        self._reserve = link.client.register_script(RESERVE)
        self._commit = link.client.register_script(COMMIT)
        self._id = f"{instance}:{os.urandom(4).hex()}"
        self._serial = 0  # leases
        self._batches = 0  # batches sealed, in the order they are sent
        self._pending = _Batch()
        self._unsent: list[_Batch] = []  # sealed batches, oldest first
        self._lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None

    def ledger_key(self, period: str) -> str:
        return self._prefix + period

    async def reserve(self, caps: Sequence[Cap]) -> Reservation:
        self._serial += 1
        lease = f"{self._id}:{self._serial}"
        keys = [self._leases_key, self._lease_key, self._reserved_key]
        args: list[str | int] = [lease, self._lease_ms]
        for cap in caps:
            keys.append(self.ledger_key(cap.period))
            args.extend((cap.scope, cap.held, cap.limit, cap.amount))
        raw = await self._reserve(keys=keys, args=args)
        failed = int(raw[0])
        levels = tuple(int(level) for level in raw[1:])
        if failed:
            return Reservation(failed=failed - 1, levels=levels, lease=None)
        reserved = any(cap.amount > 0 for cap in caps)
        return Reservation(failed=None, levels=levels, lease=lease if reserved else None)

    def settle(self, leases: Sequence[str], charge: Charge | None) -> None:
        pending = self._pending
        pending.leases.extend(leases)
        if charge is not None and charge.units:
            pending.tally.add(charge, self._clock.wall())
        if pending.empty() or not self._link.up:
            return  # kept until Redis returns (``write_back``)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    def unsent(self) -> list[SpendTable]:
        """What this process settled that Redis does not hold yet."""
        self._pending.tally.fold(self._pending.table)
        return [batch.table for batch in (*self._unsent, self._pending)]

    async def _write(self) -> None:
        """Write until nothing is pending; a batch that fails waits for Redis to return."""
        while not self._pending.empty() and self._link.up:
            try:
                await self.flush()
            except UNREACHABLE as exc:
                self._link.lost(exc)
                return

    async def flush(self) -> None:
        """Write everything settled so far, in order; raises ``UNREACHABLE`` (and keeps it) if
        Redis cannot take it."""
        async with self._lock:
            if not self._pending.empty():
                batch, self._pending = self._pending, _Batch()
                self._batches += 1
                batch.seal(self._batches)
                self._unsent.append(batch)
            while self._unsent:
                batch = self._unsent[0]
                try:
                    await self._send(batch)
                except UNREACHABLE:
                    raise
                except RedisError as exc:
                    # Redis refused the batch itself (a key of the wrong type, say): sending it again
                    # would fail the same way and hold up every later one.
                    _log.error(
                        "redis refused a spend batch; its amounts are missing from the ledger: %s",
                        exc,
                        extra={
                            "fields": {"event": "store", "store": "redis", "dropped_units": _units(batch)}
                        },
                    )
                self._unsent.pop(0)

    async def write_back(self) -> None:
        """On reconnection: write what was settled while Redis was away."""
        await self.flush()

    async def _send(self, batch: _Batch) -> None:
        periods = list(batch.table.periods)
        keys = [self._prefix + "applied:" + self._id, self._leases_key, self._lease_key, self._reserved_key]
        keys.extend(self.ledger_key(period) for period in periods)
        args: list[str | int] = [batch.number, APPLIED_S, len(periods)]
        args.extend(DAY_TTL_S if period.startswith("d:") else MONTH_TTL_S for period in periods)
        increments: list[str | int] = []
        for index, period in enumerate(periods, start=1):
            for name, value in batch.table.periods[period].items():
                increments.extend((index, name, value))
        args.append(len(increments) // 3)
        args.extend(increments)
        args.extend(batch.leases)
        await self._commit(keys=keys, args=args)

    async def totals(self, periods: Sequence[str]) -> Totals:
        await self.flush()
        async with self._link.client.pipeline(transaction=False) as pipe:
            for period in periods:
                pipe.hgetall(self.ledger_key(period))
            tables = await pipe.execute()
        return {
            period: {_text(name): int(value) for name, value in table.items()}
            for period, table in zip(periods, tables, strict=True)
        }

    async def aclose(self) -> None:
        if self._writer is not None and not self._writer.done():
            with contextlib.suppress(*UNREACHABLE):
                await self._writer
        with contextlib.suppress(*UNREACHABLE):
            if self._link.up:
                await self.flush()
        self.unsent()  # the pending charges as ledger fields
        lost = sum(_units(batch) for batch in (*self._unsent, self._pending))
        if lost:
            _log.error(
                "stopping with spend Redis never received: %.8f USD is missing from the shared ledger",
                lost / 1e8,
                extra={"fields": {"event": "store", "store": "redis", "unsent_units": lost}},
            )


def _units(batch: _Batch) -> int:
    return sum(batch.table.get(period, TOTAL) for period in batch.table.periods if period.startswith("d:"))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
