"""Rate-limit arithmetic on the memory store with a fake clock: bursts, refill, all-or-nothing
charges, token corrections, the headers and the refusals."""

from __future__ import annotations

import math

import pytest

from router.access.limits import Limiter, LimitRule, duration, rule_of
from router.catalog.schema import LimitSpec
from router.clock import FakeClock
from router.errors import RateLimited
from router.store import Bucket, MemoryLimitStore


def limiter(clock: FakeClock, global_rule: LimitRule | None = None, **models: LimitRule) -> Limiter:
    return Limiter(MemoryLimitStore(clock), global_rule or LimitRule(), models)


async def test_a_burst_is_admitted_then_the_sustained_rate() -> None:
    clock = FakeClock()
    rule = LimitRule(requests_per_minute=60, burst=3)
    lim = limiter(clock)
    for _ in range(3):
        await lim.admit("k", rule, 10)
    with pytest.raises(RateLimited) as refused:
        await lim.admit("k", rule, 10)
    assert refused.value.retry_after == pytest.approx(1.0)
    assert refused.value.headers["x-ratelimit-remaining-requests"] == "0"
    clock.advance(1.0)  # one request a second
    await lim.admit("k", rule, 10)
    with pytest.raises(RateLimited):
        await lim.admit("k", rule, 10)


async def test_keys_have_separate_buckets() -> None:
    clock = FakeClock()
    rule = LimitRule(requests_per_minute=60, burst=1)
    lim = limiter(clock)
    await lim.admit("a", rule, 1)
    await lim.admit("b", rule, 1)
    with pytest.raises(RateLimited):
        await lim.admit("a", rule, 1)


async def test_a_refusal_charges_no_other_limit() -> None:
    clock = FakeClock()
    key_rule = LimitRule(requests_per_minute=60, burst=10, tokens_per_minute=100)
    lim = limiter(clock)
    with pytest.raises(RateLimited) as refused:
        await lim.admit("k", key_rule, 150)  # more tokens than the budget holds
    assert refused.value.client_should_retry is False
    assert refused.value.error_type == "tokens"
    grant = await lim.admit("k", key_rule, 50)
    # The refused request took no request from the bucket: 10 - 1.
    assert grant.headers["x-ratelimit-remaining-requests"] == "9"
    assert grant.headers["x-ratelimit-remaining-tokens"] == "50"


async def test_the_global_limit_holds_across_keys_and_the_headers_show_the_key() -> None:
    clock = FakeClock()
    lim = limiter(clock, LimitRule(requests_per_minute=60, burst=2))
    key_rule = LimitRule(requests_per_minute=600, burst=100)
    grant = await lim.admit("a", key_rule, 1)
    assert grant.headers["x-ratelimit-limit-requests"] == "600"
    await lim.admit("b", key_rule, 1)
    with pytest.raises(RateLimited) as refused:
        await lim.admit("c", key_rule, 1)
    assert "the router" in refused.value.message
    # Without a key, the headers describe the router's limit.
    clock.advance(5)
    assert (await lim.admit(None, None, 1)).headers["x-ratelimit-limit-requests"] == "60"


async def test_actual_usage_corrects_the_estimate_both_ways() -> None:
    clock = FakeClock()
    rule = LimitRule(tokens_per_minute=1000)
    lim = limiter(clock)
    grant = await lim.admit("k", rule, 100)
    lim.settle(grant, 400)  # used more than estimated: 300 more are charged
    grant = await lim.admit("k", rule, 100)
    assert grant.headers["x-ratelimit-remaining-tokens"] == "500"
    lim.settle(grant, 20)  # used less: 80 come back
    grant = await lim.admit("k", rule, 0)
    assert grant.headers["x-ratelimit-remaining-tokens"] == "580"


async def test_an_overrun_leaves_the_budget_negative_until_it_refills() -> None:
    clock = FakeClock()
    rule = LimitRule(tokens_per_minute=600)  # 10 tokens a second
    lim = limiter(clock)
    grant = await lim.admit("k", rule, 100)
    lim.settle(grant, 1100)  # 500 under zero
    with pytest.raises(RateLimited) as refused:
        await lim.admit("k", rule, 100)
    assert refused.value.retry_after == pytest.approx(60.0)
    clock.advance(60)
    await lim.admit("k", rule, 100)


async def test_model_limits_answer_with_the_wait() -> None:
    clock = FakeClock()
    lim = limiter(clock, primary=LimitRule(requests_per_minute=30, burst=1, tokens_per_minute=100))
    assert await lim.admit_model("primary", 10) is None
    assert await lim.admit_model("primary", 10) == pytest.approx(2.0)
    assert await lim.admit_model("other", 10) is None
    assert await lim.admit_model("primary", 1000) == math.inf


def test_defaults_fill_what_a_key_leaves_out() -> None:
    defaults = LimitSpec(requests_per_minute=120, tokens_per_minute=10_000)
    assert rule_of(defaults) == LimitRule(requests_per_minute=120, burst=12, tokens_per_minute=10_000)
    assert rule_of(defaults, rpm=10) == LimitRule(requests_per_minute=10, burst=1, tokens_per_minute=10_000)
    assert rule_of(LimitSpec()).empty


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.0, "0ms"), (0.0123, "13ms"), (1.25, "1.3s"), (59.99, "60s"), (150, "2m30s")]
)
def test_reset_durations_read_like_openai(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_idle_buckets_are_swept_when_the_store_is_full() -> None:
    clock = FakeClock()
    store = MemoryLimitStore(clock, max_buckets=10)
    for i in range(25):
        store.take_now([Bucket(key=f"k{i}", capacity=1, per_s=1, cost=1)])
        clock.advance(0.01)
    assert len(store._state) <= 10


async def test_a_model_limit_on_an_open_router_is_corrected_by_the_difference_only() -> None:
    clock = FakeClock()
    lim = limiter(clock, primary=LimitRule(tokens_per_minute=1000))
    grant = await lim.admit(None, None, 100)  # no key, no global limit: nothing charged here
    assert await lim.admit_model("primary", 100) is None  # the engine charges the estimate
    lim.settle(grant, 150, "primary")  # 50 more than estimated, not 150
    seen = lim.store
    assert isinstance(seen, MemoryLimitStore)
    level = seen.take_now(
        [Bucket(key="model:primary:tokens", capacity=1000, per_s=1000 / 60, cost=0)]
    ).levels[0]
    assert level == pytest.approx(850)
