"""The response cache's kept answers in a real Redis: shared by two instances, gone after their TTL,
and a miss (never an error) while Redis is away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from router.cli import free_port
from router.store import StateBackend, build_backend
from tests.redis_server import RedisServer
from tests.store.test_redis import CLOCK, backend, eventually


@pytest.fixture()
async def pair(
    shared_redis: RedisServer, request: pytest.FixtureRequest
) -> AsyncIterator[list[StateBackend]]:
    prefix = f"c-{request.node.name[:40]}:"
    backends = [backend(shared_redis, "one", prefix), backend(shared_redis, "two", prefix)]
    for b in backends:
        await b.start()
    await eventually(lambda: all(b.link is not None and b.link.up for b in backends), within=5)
    try:
        yield backends
    finally:
        for b in backends:
            await b.aclose()


async def test_an_answer_kept_by_one_instance_is_found_by_the_other_until_its_ttl(
    pair: list[StateBackend],
) -> None:
    one, two = pair
    await one.cache.put("k1", b"kept answer", 0.3)
    assert await two.cache.get("k1") == b"kept answer"
    assert await two.cache.get("k2") is None
    await asyncio.sleep(0.4)
    assert await two.cache.get("k1") is None  # Redis dropped it (PX)
    assert "redis" in one.cache.describe


async def test_a_redis_outage_is_a_miss_and_nothing_kept_never_an_error(
    pair: list[StateBackend], shared_redis: RedisServer
) -> None:
    one, _ = pair
    await one.cache.put("before", b"v", 60)
    shared_redis.stop()
    try:
        assert await one.cache.get("before") is None  # the failed call marks the link down
        assert one.link is not None and not one.link.up
        await one.cache.put("during", b"v", 60)  # nothing raised, nothing kept
        assert await one.cache.get("during") is None
    finally:
        shared_redis.start()
    await eventually(lambda: one.link is not None and one.link.up, within=5)
    assert await one.cache.get("during") is None


async def test_a_redis_down_at_start_answers_every_lookup_with_a_miss() -> None:
    down = build_backend(
        CLOCK,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        prefix="down:",
        instance="x",
        responses_max=10,
        responses_ttl_s=60,
        workers=1,
    )
    await down.start()
    try:
        await down.cache.put("k", b"v", 60)
        assert await down.cache.get("k") is None
    finally:
        await down.aclose()
