"""The spend ledger and budget reservations on a real Redis: one ledger for every instance, exact
reservations across instances, a batch counted once even when sent again, leases given back, the
day and month of an injected clock, and spend kept through an outage and added back when Redis
returns."""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from router.clock import FakeClock, SystemClock
from router.store import Cap, Charge, StateBackend, build_backend
from router.store.failover import LOCAL_LEASE
from router.store.redis_link import RedisLink
from router.store.redis_spend import RedisSpendStore, _Batch
from router.store.spend import day_of, month_of
from tests.redis_server import RedisServer
from tests.store.test_redis import eventually

CLOCK = SystemClock()


def backend(redis: RedisServer, instance: str, prefix: str, clock: object = CLOCK) -> StateBackend:
    return build_backend(
        clock,  # type: ignore[arg-type]
        redis_url=redis.url,
        prefix=prefix,
        instance=instance,
        responses_max=10,
        responses_ttl_s=60,
        workers=1,
    )


@pytest.fixture()
async def pair(
    shared_redis: RedisServer, request: pytest.FixtureRequest
) -> AsyncIterator[list[StateBackend]]:
    prefix = f"spend-{request.node.name[:40]}:"
    backends = [backend(shared_redis, "one", prefix), backend(shared_redis, "two", prefix)]
    for b in backends:
        await b.start()
    try:
        await eventually(lambda: all(b.link is not None and b.link.up for b in backends))
        yield backends
    finally:
        for b in backends:
            await b.aclose()


def today() -> tuple[str, str]:
    now = CLOCK.wall()
    return day_of(now), month_of(now)


async def test_two_instances_write_one_ledger(pair: list[StateBackend]) -> None:
    one, two = pair
    one.spend.settle([], Charge("team", "gpt-5", "openai", 123_456))
    two.spend.settle([], Charge("team", "claude", "anthropic", 1))
    two.spend.settle([], Charge("anonymous", "claude", "anthropic", 10))
    day, month = today()
    await two.spend.totals([day])  # two's own settled charges are written before it reads
    await asyncio.sleep(0.05)  # one's are written by its own task, within a round trip
    for b in pair:
        totals = await b.spend.totals([day, month])
        assert totals[day] == totals[month]
        table = totals[day]
        assert table["g"] == 123_467 and table["#g"] == 3
        assert table["k:team"] == 123_457 and table["k:anonymous"] == 10
        assert table["p:openai"] == 123_456 and table["km:team:claude"] == 1


async def test_two_instances_reserve_exactly_the_budget_together(pair: list[StateBackend]) -> None:
    day, _ = today()
    for attempt in range(3):
        cap = Cap(f"k:joint{attempt}", day, limit=1_000, amount=30)
        results = await asyncio.gather(*(pair[i % 2].spend.reserve([cap]) for i in range(80)))
        if not any(r.lease and r.lease.startswith(LOCAL_LEASE) for r in results):
            break
        # A call ran past the link's timeout (a loaded machine opening 80 connections at once): the
        # instances held budgets locally, as in an outage. What is checked here is the shared script.
        await eventually(lambda: all(b.link is not None and b.link.up for b in pair))
    else:
        pytest.fail("Redis calls kept timing out")
    admitted = [r for r in results if r.failed is None]
    assert len(admitted) == 33  # 33 x 30 = 990 <= 1000
    # Settling with the actual cost replaces each reservation.
    for i, result in enumerate(admitted):
        assert result.lease is not None
        pair[i % 2].spend.settle([result.lease], Charge(f"joint{attempt}", "m", "p", 10))
    for b in pair:
        await b.spend.totals([day])
    fresh = await pair[0].spend.reserve([Cap(f"k:joint{attempt}", day, limit=1_000, amount=0)])
    assert fresh.levels == (330,)  # 33 x 10 spent, nothing held


async def test_a_batch_sent_twice_is_counted_once(shared_redis: RedisServer) -> None:
    link = RedisLink(shared_redis.url, "spend-once:")
    await link.start()
    store = RedisSpendStore(link, CLOCK, "x")
    day, _ = today()
    try:
        store.settle([], Charge("team", "m", "p", 500))
        await store.flush()
        # Its answer was lost (say), so the same batch is sent again when Redis is back.
        store._unsent.append(_copy_of_batch(1, day, 500))
        store.settle([], Charge("team", "m", "p", 7))  # the next batch still counts
        await store.flush()
        assert (await store.totals([day]))[day]["g"] == 507
    finally:
        await store.aclose()
        await link.aclose()


async def test_a_reservation_never_settled_is_given_back_after_its_lease(shared_redis: RedisServer) -> None:
    link = RedisLink(shared_redis.url, "spend-lease:")
    await link.start()
    store = RedisSpendStore(link, CLOCK, "x", lease_s=0.2)
    try:
        cap = Cap("g", "d:lease", limit=100, amount=100)
        assert (await store.reserve([cap])).failed is None  # its process dies: never settled
        assert (await store.reserve([cap])).failed == 0
        await asyncio.sleep(0.3)
        assert (await store.reserve([cap])).failed is None
    finally:
        await store.aclose()
        await link.aclose()


async def test_charges_fall_in_the_day_and_month_of_the_injected_clock(shared_redis: RedisServer) -> None:
    clock = FakeClock(float(calendar.timegm((2024, 12, 31, 23, 59, 30))))
    link = RedisLink(shared_redis.url, "spend-clock:")
    await link.start()
    store = RedisSpendStore(link, clock, "x")
    try:
        store.settle([], Charge("team", "m", "p", 7))
        clock.advance(60)
        store.settle([], Charge("team", "m", "p", 5))
        totals = await store.totals(["d:2024-12-31", "m:2024-12", "d:2025-01-01", "m:2025-01"])
        assert totals["d:2024-12-31"]["g"] == totals["m:2024-12"]["g"] == 7
        assert totals["d:2025-01-01"]["g"] == totals["m:2025-01"]["g"] == 5
    finally:
        await store.aclose()
        await link.aclose()


async def test_spend_during_an_outage_is_kept_and_added_back(shared_redis: RedisServer) -> None:
    pair = [backend(shared_redis, "one", "spend-outage:"), backend(shared_redis, "two", "spend-outage:")]
    for b in pair:
        await b.start()
    try:
        await eventually(lambda: all(b.link is not None and b.link.up for b in pair))
        one, two = pair
        day, month = today()
        # What Redis last said: 900 of 1000 held by another instance's request.
        busy = await two.spend.reserve([Cap("k:team", day, limit=1_000, amount=900)])
        assert busy.failed is None
        assert (await one.spend.reserve([Cap("k:team", day, limit=1_000, amount=0)])).levels == (900,)
        shared_redis.stop()
        for _ in range(3):
            one.spend.settle([], Charge("team", "m", "p", 40))
        await asyncio.sleep(0.1)
        # Budgets go on from what Redis last reported plus what this process spent since.
        during = await one.spend.reserve([Cap("k:team", day, limit=1_100, amount=0)])
        assert during.failed is None and during.levels == (1_020,)
        assert (await one.spend.reserve([Cap("k:team", day, limit=1_100, amount=81)])).failed == 0
        held = await one.spend.reserve([Cap("k:team", day, limit=1_100, amount=80)])
        assert held.failed is None and held.lease is not None
        one.spend.settle([held.lease], Charge("team", "m", "p", 50))  # settled while Redis is away
        one.spend.settle([], Charge("team", "m", "p", 5))
        after = await one.spend.reserve([Cap("k:team", day, limit=1_100, amount=0)])
        assert after.levels == (1_075,)
        assert (await one.spend.reserve([Cap("k:team", day, limit=1_100, amount=0)])).levels == (1_075,)
        with pytest.raises(Exception, match="cannot reach") as error:
            await one.spend.totals([day])
        assert getattr(error.value, "status", None) == 503
        shared_redis.start()  # empty: Redis kept nothing on disk
        await eventually(lambda: all(b.link is not None and b.link.up for b in pair), within=5)
        for b in pair:
            totals = await b.spend.totals([day, month])
            assert totals[day]["k:team"] == totals[month]["k:team"] == 175  # the outage's spend, once
        assert (await one.spend.reserve([Cap("k:team", day, limit=1_000, amount=0)])).levels == (175,)
    finally:
        for b in pair:
            await b.aclose()


async def test_a_paused_redis_that_applies_a_late_write_counts_it_once(shared_redis: RedisServer) -> None:
    pair = [backend(shared_redis, "one", "spend-pause:")]
    await pair[0].start()
    admin = aioredis.Redis.from_url(shared_redis.url)
    try:
        await eventually(lambda: pair[0].link is not None and pair[0].link.up)
        spend = pair[0].spend
        day, _ = today()
        spend.settle([], Charge("team", "m", "p", 1_000))
        await spend.totals([day])
        await admin.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
        spend.settle([], Charge("team", "m", "p", 1))  # its write times out; Redis may apply it later
        await eventually(lambda: pair[0].link is not None and not pair[0].link.up, within=2)
        spend.settle([], Charge("team", "m", "p", 10))
        await eventually(lambda: pair[0].link is not None and pair[0].link.up, within=5)
        assert (await spend.totals([day]))[day]["g"] == 1_011
    finally:
        await admin.aclose()
        await pair[0].aclose()


async def test_a_batch_redis_refuses_is_logged_and_does_not_hold_up_the_next(
    shared_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    link = RedisLink(shared_redis.url, "spend-refused:")
    await link.start()
    store = RedisSpendStore(link, CLOCK, "x")
    day, _ = today()
    try:
        await link.client.set(store.ledger_key(day), "not a hash")
        store.settle([], Charge("team", "m", "p", 300))
        await store.flush()  # refused with WRONGTYPE: logged, not raised, not retried forever
        assert "redis refused a spend batch" in caplog.text
        await link.client.delete(store.ledger_key(day))
        store.settle([], Charge("team", "m", "p", 20))
        assert (await store.totals([day]))[day]["g"] == 20
        assert link.up
    finally:
        await store.aclose()
        await link.aclose()


def _copy_of_batch(number: int, day: str, units: int) -> _Batch:
    batch = _Batch()
    batch.seal(number)
    batch.table.add(day, [("g", units)])
    return batch
