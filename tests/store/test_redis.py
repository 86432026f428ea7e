"""The Redis backend against a real Redis server: exact limits across clients, stored responses with
their TTL, breaker news between instances, and serving on through an outage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from router.catalog.schema import BreakerSpec
from router.clock import SystemClock
from router.routing.breaker import BreakerBoard, LastError
from router.store import Bucket, StateBackend, StoredResponse, build_backend
from tests.redis_server import RedisServer

CLOCK = SystemClock()


def backend(redis: RedisServer, instance: str, prefix: str) -> StateBackend:
    return build_backend(
        CLOCK,
        redis_url=redis.url,
        prefix=prefix,
        instance=instance,
        responses_max=100,
        responses_ttl_s=60,
        workers=1,
    )


@pytest.fixture()
async def pair(
    shared_redis: RedisServer, request: pytest.FixtureRequest
) -> AsyncIterator[list[StateBackend]]:
    """Two backends on one Redis, as two router instances would have."""
    prefix = f"t-{request.node.name[:40]}:"
    backends = [backend(shared_redis, "one", prefix), backend(shared_redis, "two", prefix)]
    for b in backends:
        await b.start()
    try:
        yield backends
    finally:
        for b in backends:
            await b.aclose()


async def eventually(check: Callable[[], bool], within: float = 1.0) -> float:
    """Seconds until ``check`` holds; fails after ``within``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_two_instances_admit_exactly_the_burst_together(pair: list[StateBackend]) -> None:
    bucket = Bucket(key="key:team:requests", capacity=25, per_s=1 / 60, cost=1)
    results = await asyncio.gather(*(pair[i % 2].limits.take([bucket]) for i in range(120)))
    assert sum(1 for r in results if r.failed is None) == 25


async def test_a_request_is_charged_to_all_its_buckets_or_none(pair: list[StateBackend]) -> None:
    requests = Bucket(key="key:a:requests", capacity=10, per_s=0.01, cost=1)  # no refill to speak of
    tokens = Bucket(key="key:a:tokens", capacity=100, per_s=1, cost=80)
    first = await pair[0].limits.take([requests, tokens])
    assert first.failed is None and first.levels == pytest.approx((9, 20), abs=0.1)
    refused = await pair[1].limits.take([requests, tokens])
    assert refused.failed == 1 and refused.retry_after == pytest.approx(60, abs=1)
    # The refusal charged no request.
    again = await pair[1].limits.take([requests])
    assert again.levels[0] == pytest.approx(8, abs=0.1)
    huge = Bucket(key="key:a:tokens", capacity=100, per_s=1, cost=500)
    never = await pair[0].limits.take([requests, huge])
    assert never.failed == 1 and never.retry_after is None


async def test_corrections_reach_redis_off_the_request_path(pair: list[StateBackend]) -> None:
    tokens = Bucket(key="key:c:tokens", capacity=1000, per_s=0.001, cost=100)
    await pair[0].limits.take([tokens])
    pair[0].limits.adjust(tokens, 300)  # used 400 in all
    await asyncio.sleep(0.1)
    seen = await pair[1].limits.take([Bucket(key="key:c:tokens", capacity=1000, per_s=0.001, cost=0)])
    assert seen.levels[0] == pytest.approx(600, abs=1)


async def test_a_stored_response_is_read_and_deleted_through_the_other_instance(
    pair: list[StateBackend],
) -> None:
    stored = StoredResponse(
        response={"id": "resp_1", "output": [{"type": "message"}]}, items=[{"role": "user"}]
    )
    await pair[0].responses.put("resp_1", stored)
    got = await pair[1].responses.get("resp_1")
    assert got is not None and got.response["id"] == "resp_1" and got.items == [{"role": "user"}]
    assert got.continuation() == [{"role": "user"}, {"type": "message"}]
    assert await pair[1].responses.delete("resp_1")
    assert await pair[0].responses.get("resp_1") is None


async def test_stored_responses_expire_with_the_ttl(shared_redis: RedisServer) -> None:
    short = build_backend(
        CLOCK,
        redis_url=shared_redis.url,
        prefix="ttl:",
        instance="x",
        responses_max=10,
        responses_ttl_s=0.3,
        workers=1,
    )
    await short.start()
    try:
        await short.responses.put("resp_ttl", StoredResponse(response={"id": "resp_ttl"}, items=[]))
        assert await short.responses.get("resp_ttl") is not None
        await asyncio.sleep(0.5)
        assert await short.responses.get("resp_ttl") is None
    finally:
        await short.aclose()


def boards(pair: list[StateBackend], policy: BreakerSpec | None = None) -> list[BreakerBoard]:
    made = []
    for b in pair:
        sync = b.sync
        assert sync is not None
        policy = policy or BreakerSpec(consecutive_failures=1, cooldown_s=30)
        board = BreakerBoard(policy, CLOCK, sync.transition, shared=sync)
        sync.attach(board)
        made.append(board)
    return made


FAILURE = LastError(status=500, type="server_error", message="boom", at=0.0)


async def test_a_trip_and_a_close_reach_the_other_instance_within_a_second(pair: list[StateBackend]) -> None:
    one, two = boards(pair)
    await eventually(lambda: all(b.link is not None and b.link.up for b in pair))
    await asyncio.sleep(0.2)  # both subscribed
    one.get("gpt-5").failure(FAILURE)
    assert one.get("gpt-5").state == "open"
    took = await eventually(lambda: two.get("gpt-5").state == "open")
    assert took < 1.0
    assert two.get("gpt-5").reopens_in() == pytest.approx(30, abs=1)
    # The other instance's probe succeeds: the model is healthy for both.
    breaker = two.get("gpt-5")
    breaker.open_until = 0
    ticket = breaker.acquire()
    assert ticket == "probe"
    breaker.success(ticket)
    assert two.get("gpt-5").state == "closed"
    await eventually(lambda: one.get("gpt-5").state == "closed")


async def test_a_late_instance_takes_on_breakers_already_open(
    shared_redis: RedisServer, pair: list[StateBackend]
) -> None:
    one, _ = boards(pair)
    await eventually(lambda: all(b.link is not None and b.link.up for b in pair))
    one.get("claude").failure(FAILURE)
    await asyncio.sleep(0.2)
    prefix = pair[0].link.prefix if pair[0].link else ""
    late = backend(shared_redis, "late", prefix)
    sync = late.sync
    assert sync is not None
    board = BreakerBoard(BreakerSpec(), CLOCK, sync.transition)
    sync.attach(board)
    await late.start()
    try:
        await eventually(lambda: board.get("claude").state == "open")
    finally:
        await late.aclose()


async def test_redis_going_away_leaves_the_router_on_local_state_until_it_returns(
    shared_redis: RedisServer,
) -> None:
    pair = [backend(shared_redis, "one", "outage:"), backend(shared_redis, "two", "outage:")]
    for b in pair:
        await b.start()
    one, two = boards(pair)
    try:
        await eventually(lambda: all(b.link is not None and b.link.up for b in pair))
        shared_redis.stop()
        bucket = Bucket(key="key:o:requests", capacity=2, per_s=1 / 60, cost=1)
        started = time.monotonic()
        result = await pair[0].limits.take([bucket])
        assert result.failed is None  # answered from this process's buckets
        assert time.monotonic() - started < 1.0
        assert pair[0].report().degraded and pair[0].report().scope == "process"
        # Stored and tripped while Redis is away ...
        await pair[0].responses.put("resp_out", StoredResponse(response={"id": "resp_out"}, items=[]))
        assert await pair[0].responses.get("resp_out") is not None
        one.get("gemini").failure(FAILURE)
        await asyncio.sleep(0.3)
        shared_redis.start()
        await eventually(lambda: all(b.link is not None and b.link.up for b in pair), within=5)
        # ... and shared once it returns.
        await eventually(lambda: two.get("gemini").state == "open", within=2)
        got = await pair[1].responses.get("resp_out")
        assert got is not None and got.response["id"] == "resp_out"
        assert not pair[0].report().degraded and pair[0].report().outages == 1
        # Limits are shared again: the other instance sees this one's charges (Redis restarted empty).
        for _ in range(2):
            assert (await pair[0].limits.take([bucket])).failed is None
        assert (await pair[1].limits.take([bucket])).failed is not None
    finally:
        for b in pair:
            await b.aclose()


async def test_a_redis_down_at_start_serves_locally_and_says_so() -> None:
    from router.cli import free_port

    down = build_backend(
        CLOCK,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        prefix="down:",
        instance="x",
        responses_max=10,
        responses_ttl_s=60,
        workers=1,
    )
    started = time.monotonic()
    await down.start()
    try:
        assert time.monotonic() - started < 2.0
        report = down.report()
        assert report.degraded and report.connected is False and report.last_error
        bucket = Bucket(key="key:d:requests", capacity=1, per_s=1 / 60, cost=1)
        assert (await down.limits.take([bucket])).failed is None
        assert (await down.limits.take([bucket])).failed == 0
        await down.responses.put("resp_down", StoredResponse(response={"id": "resp_down"}, items=[]))
        assert await down.responses.get("resp_down") is not None
    finally:
        await down.aclose()


async def test_failures_on_two_instances_add_up_to_one_threshold(pair: list[StateBackend]) -> None:
    """Four workers seeing one failure each trip a breaker whose threshold is four, as one worker
    seeing four would: the configured count means the same at any scale."""
    one, two = boards(pair, BreakerSpec(consecutive_failures=4, min_volume=100, cooldown_s=30))
    await eventually(lambda: all(b.link is not None and b.link.up for b in pair))
    await asyncio.sleep(0.2)  # both subscribed
    for board in (one, two, one):
        board.get("gpt-5").failure(FAILURE)
        await asyncio.sleep(0.05)
    assert one.get("gpt-5").state == two.get("gpt-5").state == "closed"
    two.get("gpt-5").failure(FAILURE)  # the fourth, across both
    await eventually(lambda: two.get("gpt-5").state == "open")
    await eventually(lambda: one.get("gpt-5").state == "open")
    assert two.get("gpt-5").trips == 1


async def test_a_success_after_counted_failures_starts_the_count_again(pair: list[StateBackend]) -> None:
    one, two = boards(pair, BreakerSpec(consecutive_failures=3, min_volume=100, cooldown_s=30))
    await eventually(lambda: all(b.link is not None and b.link.up for b in pair))
    await asyncio.sleep(0.2)
    one.get("claude").failure(FAILURE)
    two.get("claude").failure(FAILURE)
    await asyncio.sleep(0.1)
    one.get("claude").success()  # it had counted a failure: the shared count goes back to zero
    await asyncio.sleep(0.1)
    two.get("claude").failure(FAILURE)
    one.get("claude").failure(FAILURE)
    await asyncio.sleep(0.3)
    assert one.get("claude").state == two.get("claude").state == "closed"
    two.get("claude").failure(FAILURE)  # now three in a row across both
    await eventually(lambda: one.get("claude").state == "open")


async def test_successes_alone_never_reach_redis(pair: list[StateBackend]) -> None:
    (one, _) = boards(pair, BreakerSpec(consecutive_failures=3))
    await eventually(lambda: all(b.link is not None and b.link.up for b in pair))
    sync = pair[0].sync
    assert sync is not None
    for _ in range(100):
        one.get("gpt-5").success()
    assert not sync._tasks  # nothing was sent


async def test_a_backend_closed_right_after_it_connects_shuts_down_at_once(shared_redis: RedisServer) -> None:
    for delay in (0.0, 0.01, 0.05):
        state = backend(shared_redis, "brief", "brief:")
        boards([state])
        await state.start()
        await asyncio.sleep(delay)
        started = time.monotonic()
        await asyncio.wait_for(state.aclose(), timeout=5)
        assert time.monotonic() - started < 2.0
