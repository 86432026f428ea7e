"""The spend ledger and budgets on the memory store with a fake clock: exact units, what is recorded
and under which day and month, the rollover at UTC midnight and on the first of the month, admission
(reserve, settle, what a refusal says), concurrent requests that cannot overspend, the estimate rule
for strategies and fallbacks, the engine passing over a candidate a budget cannot take, downgrade."""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import AsyncGenerator

import pytest

from router.access import Ask, BudgetRule, Budgets
from router.access.budgets import usd
from router.catalog import Catalog, parse_catalog
from router.clock import FakeClock
from router.errors import BudgetExceeded, ModelBudgetExceeded
from router.providers import UpstreamCall
from router.routing import ChatAnswer, Engine
from router.store import Cap, Charge, MemorySpendStore
from router.store.spend import LEASE_S, to_units, usd_text
from router.types import AssistantMessage, ChatChunk, ChatCompletion, ChatRequest, Choice, Message, Usage

CATALOG = """
providers:
  p:
    kind: openai
    base_url: http://127.0.0.1:1/v1
models:
  dear:
    provider: p
    context_window: 100000
    max_output: 4000
    price: {input: 10.0, output: 40.0}
    quality: 90
    speed: {ttft_ms: 100, tokens_per_s: 100}
  cheap:
    provider: p
    context_window: 100000
    max_output: 4000
    price: {input: 0.1, output: 0.4}
    flex_price: {input: 0.05, output: 0.2}
    quality: 50
    speed: {ttft_ms: 100, tokens_per_s: 100}
    fallbacks: [dear]
  vectors:
    provider: p
    context_window: 8000
    max_output: 1
    price: {input: 0.02, output: 0}
    capabilities: [embeddings]
    quality: 50
    speed: {ttft_ms: 100, tokens_per_s: 100}
routing:
  expected_output_tokens: 100
  retry: {attempts_per_model: 1}
"""
JAN_31_2359 = float(calendar.timegm((2025, 1, 31, 23, 59, 0)))


def catalog(access: str = "") -> Catalog:
    return parse_catalog(CATALOG + access, {})


def charge(units: int, key: str = "team", model: str = "cheap") -> Charge:
    return Charge(key, model, "p", units)


def ask(model: str, prompt: int = 1000, output: int | None = None, **extra: object) -> Ask:
    return Ask(names=[model], prompt_tokens=prompt, output_tokens=output, **extra)  # type: ignore[arg-type]


# --- units ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cost", [0.000218525, 0.000676225, 0.001043275, 0.0, 1.5, 123.456789125, 1e-9])
def test_units_are_the_header_digits_even_where_rounding_the_product_is_not(cost: float) -> None:
    header = f"{cost:.8f}"  # what x-router-cost-usd shows
    assert usd_text(to_units(cost)) == header
    assert to_units(cost) == int(header.replace(".", ""))


def test_amounts_read_like_money() -> None:
    assert usd(1_000_000) == "0.01" and usd(12_345) == "0.00012345" and usd(150_000_000) == "1.50"


# --- the ledger ----------------------------------------------------------------------------------


async def test_the_ledger_adds_per_key_model_and_provider_by_utc_day_and_month() -> None:
    clock = FakeClock(JAN_31_2359)
    store = MemorySpendStore(clock)
    store.settle([], charge(100))
    store.settle([], charge(250, model="dear"))
    store.settle([], Charge("anonymous", "cheap", "q", 7))
    totals = await store.totals(["d:2025-01-31", "m:2025-01"])
    day = totals["d:2025-01-31"]
    assert totals["m:2025-01"] == day
    assert day["g"] == 357 and day["#g"] == 3
    assert day["k:team"] == 350 and day["#k:team"] == 2 and day["k:anonymous"] == 7
    assert day["m:cheap"] == 107 and day["m:dear"] == 250
    assert day["p:p"] == 350 and day["p:q"] == 7
    assert day["km:team:dear"] == 250 and day["km:team:cheap"] == 100


async def test_days_and_months_roll_over_at_utc_midnight() -> None:
    clock = FakeClock(JAN_31_2359)
    store = MemorySpendStore(clock)
    store.settle([], charge(100))
    clock.advance(120)  # 2025-02-01 00:01 UTC: a new day and a new month
    store.settle([], charge(30))
    totals = await store.totals(["d:2025-01-31", "d:2025-02-01", "m:2025-01", "m:2025-02"])
    assert totals["d:2025-01-31"]["g"] == 100 and totals["m:2025-01"]["g"] == 100
    assert totals["d:2025-02-01"]["g"] == 30 and totals["m:2025-02"]["g"] == 30
    clock.advance(86_400)  # the next day, the same month
    store.settle([], charge(5))
    later = await store.totals(["d:2025-02-02", "m:2025-02"])
    assert later["d:2025-02-02"]["g"] == 5 and later["m:2025-02"]["g"] == 35


async def test_a_daily_budget_spent_today_admits_again_after_midnight() -> None:
    clock = FakeClock(JAN_31_2359)
    budgets = Budgets(MemorySpendStore(clock), clock, catalog())
    rule = BudgetRule(daily=to_units(0.01), monthly=to_units(1.0))
    budgets.settle(None, "team", budgets.catalog.models["cheap"], 0.0099)
    with pytest.raises(BudgetExceeded) as refused:
        await budgets.admit("team", rule, None, ask("cheap"))
    assert "resets at 2025-02-01T00:00:00Z (in 1m)" in refused.value.message
    assert refused.value.retry_after == pytest.approx(60)
    clock.advance(61)
    assert await budgets.admit("team", rule, None, ask("cheap")) is not None


async def test_a_monthly_budget_holds_across_days_until_the_first_of_the_month() -> None:
    clock = FakeClock(float(calendar.timegm((2025, 3, 30, 12, 0, 0))))
    budgets = Budgets(MemorySpendStore(clock), clock, catalog())
    rule = BudgetRule(monthly=to_units(0.02))
    budgets.settle(None, "team", budgets.catalog.models["cheap"], 0.0199)
    clock.advance(86_400)  # the 31st: a new day, still March
    with pytest.raises(BudgetExceeded) as refused:
        await budgets.admit("team", rule, None, ask("cheap"))
    assert "monthly budget of key 'team' is $0.02" in refused.value.message
    assert "resets at 2025-04-01T00:00:00Z" in refused.value.message
    clock.advance(12 * 3600)
    assert await budgets.admit("team", rule, None, ask("cheap")) is not None


async def test_a_cost_of_none_or_zero_adds_nothing() -> None:
    clock = FakeClock()
    store = MemorySpendStore(clock)
    budgets = Budgets(store, clock, catalog())
    model = budgets.catalog.models["cheap"]
    budgets.settle(None, "team", model, None)  # no usage reported
    budgets.settle(None, "team", model, 0.0)  # an answer from the response cache
    day = clock.wall()
    assert await store.totals([f"d:{_day(day)}"]) == {f"d:{_day(day)}": {}}


# --- reservations --------------------------------------------------------------------------------


async def test_a_reservation_holds_until_settled_with_the_actual_cost() -> None:
    clock = FakeClock()
    store = MemorySpendStore(clock)
    cap = Cap("k:team", "d:x", limit=100, amount=60)
    first = await store.reserve([cap])
    assert first.failed is None and first.levels == (0,) and first.lease is not None
    second = await store.reserve([cap])
    assert second.failed == 0 and second.levels == (60,)  # 60 held + 60 asked > 100
    store.settle([first.lease], None)  # the first request failed: its reservation is given back
    third = await store.reserve([cap])
    assert third.failed is None and third.levels == (0,)


async def test_a_reservation_never_settled_is_given_back_after_its_lease() -> None:
    clock = FakeClock()
    store = MemorySpendStore(clock)
    cap = Cap("g", "d:x", limit=100, amount=100)
    assert (await store.reserve([cap])).failed is None
    assert (await store.reserve([cap])).failed == 0
    clock.advance(LEASE_S + 1)
    assert (await store.reserve([cap])).failed is None


async def test_one_full_budget_refuses_and_reserves_on_none_of_the_others() -> None:
    store = MemorySpendStore(FakeClock())
    roomy = Cap("g", "d:x", limit=1000, amount=10)
    full = Cap("k:team", "d:x", limit=5, amount=10)
    refused = await store.reserve([roomy, full])
    assert refused.failed == 1 and refused.lease is None
    assert (await store.reserve([roomy])).levels == (0,)


async def test_concurrent_requests_cannot_spend_beyond_the_budget() -> None:
    clock = FakeClock()
    budgets = Budgets(MemorySpendStore(clock), clock, catalog())
    rule = BudgetRule(daily=to_units(0.01))
    cheap = budgets.catalog.models["cheap"]
    one = ask("cheap", prompt=10_000, output=1000)  # $0.0014 estimated
    assert budgets.estimate(budgets.candidates(["cheap"])[0], one) == to_units(0.0014)

    async def request() -> bool:
        try:
            hold = await budgets.admit("team", rule, None, one)
        except BudgetExceeded:
            return False
        await asyncio.sleep(0)  # in flight together
        budgets.settle(hold, "team", cheap, 0.0014)
        return True

    admitted = await asyncio.gather(*(request() for _ in range(50)))
    assert sum(admitted) == 7  # 7 x 0.0014 = 0.0098 fits in 0.01; an eighth would not
    spent = await budgets.store.totals([f"d:{_day(clock.wall())}"])
    assert spent[f"d:{_day(clock.wall())}"]["k:team"] == to_units(0.0098)


# --- budgets ----------------------------------------------------------------------------------------


async def test_the_global_budget_holds_across_keys_and_names_the_router() -> None:
    clock = FakeClock()
    budgets = Budgets(
        MemorySpendStore(clock), clock, catalog("access:\n  global: {budget: {daily_usd: 0.001}}\n")
    )
    assert budgets.active
    budgets.settle(None, "a", budgets.catalog.models["cheap"], 0.0009)
    with pytest.raises(BudgetExceeded) as refused:
        await budgets.admit("b", None, None, ask("cheap"))  # key b has no budget of its own
    assert "daily budget of the router is $0.001" in refused.value.message
    assert "$0.0009 of it is spent or reserved today (UTC)" in refused.value.message
    assert refused.value.code == "budget_exceeded" and not refused.value.client_should_retry


async def test_without_any_budget_nothing_is_reserved() -> None:
    clock = FakeClock()
    budgets = Budgets(MemorySpendStore(clock), clock, catalog())
    assert not budgets.active
    assert await budgets.admit("team", None, None, ask("cheap")) is None


async def test_a_request_is_estimated_on_its_output_limit_or_else_the_expected_output() -> None:
    clock = FakeClock()
    budgets = Budgets(MemorySpendStore(clock), clock, catalog())
    [dear] = budgets.candidates(["dear"])
    # 1000 prompt tokens at $10/1M, then 2 x 50 output tokens at $40/1M.
    assert budgets.estimate(dear, ask("dear", output=50, copies=2)) == to_units(0.014)
    assert budgets.estimate(dear, ask("dear")) == to_units(0.014)  # expected_output_tokens: 100
    [vectors] = budgets.candidates(["vectors"])
    assert budgets.estimate(vectors, ask("vectors", writes=False)) == to_units(0.00002)


def test_a_strategy_is_estimated_on_the_cheapest_model_at_its_tier() -> None:
    clock = FakeClock()
    budgets = Budgets(MemorySpendStore(clock), clock, catalog())
    targets = budgets.candidates(["balanced-flex"])
    assert {t.model.id for t in targets} == {"dear", "cheap"}  # models that write text
    cheapest = min(budgets.estimate(t, ask("balanced-flex")) for t in targets)
    assert cheapest == to_units((1000 * 0.05 + 100 * 0.2) / 1e6)  # cheap, at its flex price
    # A model with fallbacks may be served by any of them.
    assert [t.model.id for t in budgets.candidates(["cheap", "vectors"])] == ["cheap", "dear", "vectors"]


async def test_a_model_budget_is_checked_when_the_engine_picks_the_model() -> None:
    clock = FakeClock()
    access = "access:\n  model_limits:\n    dear: {budget: {monthly_usd: 0.001}}\n"
    budgets = Budgets(MemorySpendStore(clock), clock, catalog(access))
    hold = await budgets.admit("team", None, None, ask("quality"))
    assert hold is not None and hold.leases == []  # nothing to reserve until a model is picked
    with pytest.raises(ModelBudgetExceeded) as refused:
        await hold.admit_model(budgets.candidates(["dear"])[0])
    assert refused.value.may_fall_back
    assert "monthly budget of model 'dear' is $0.001" in refused.value.message
    await hold.admit_model(budgets.candidates(["cheap"])[0])  # no budget of its own


class Answering:
    """An adapter whose every model answers, with 1000 prompt and 100 completion tokens."""

    def __init__(self) -> None:
        self.called: list[str] = []

    async def complete(self, call: UpstreamCall) -> ChatCompletion:
        self.called.append(call.model.key)  # the deployment, for a model with several
        return ChatCompletion(
            id="c", created=1, model=call.model.upstream,
            choices=[Choice(0, AssistantMessage(content="ok"), "stop")], usage=Usage(1000, 100, 1100),
        )  # fmt: skip

    async def stream(self, call: UpstreamCall) -> AsyncGenerator[ChatChunk, None]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def aclose(self) -> None:
        return None


async def test_a_strategy_falls_to_a_model_the_key_budget_still_allows() -> None:
    clock = FakeClock()
    budgets = Budgets(MemorySpendStore(clock), clock, catalog())
    adapter = Answering()
    engine = Engine(budgets.catalog, {"p": adapter}, clock)
    rule = BudgetRule(daily=to_units(0.01))  # dear needs $0.014, cheap $0.00014
    request = ChatRequest(model="quality", messages=[Message(role="user", content="hi")])
    hold = await budgets.admit("team", rule, None, ask("quality"))
    assert hold is not None
    _, outcome = await engine.run(request, engine.plan(request), "r1", ChatAnswer(), admission=hold)
    assert outcome.model.id == "cheap" and adapter.called == ["cheap"]
    assert [(a.model, a.outcome) for a in outcome.attempts] == [("dear", "budget_exceeded"), ("cheap", "ok")]
    # A key budget too small for even the cheapest candidate refuses on arrival, naming the key.
    with pytest.raises(BudgetExceeded) as refused:
        await budgets.admit("team", BudgetRule(daily=1), None, ask("quality"))
    assert refused.value.status == 429 and "key 'team'" in refused.value.message
    assert adapter.called == ["cheap"]


async def test_when_no_candidate_fits_its_budget_the_request_gets_the_budgets_429() -> None:
    clock = FakeClock()
    access = "access:\n  model_limits:\n" + "".join(
        f"    {name}: {{budget: {{daily_usd: 0.0001}}}}\n" for name in ("dear", "cheap")
    )
    budgets = Budgets(MemorySpendStore(clock), clock, catalog(access))
    adapter = Answering()
    engine = Engine(budgets.catalog, {"p": adapter}, clock)
    request = ChatRequest(model="cost", messages=[Message(role="user", content="hi")])
    hold = await budgets.admit(None, None, None, ask("cost"))
    assert hold is not None
    with pytest.raises(BudgetExceeded) as refused:
        await engine.run(request, engine.plan(request), "r1", ChatAnswer(), admission=hold)
    assert refused.value.status == 429 and refused.value.error_type == "insufficient_quota"
    assert refused.value.attempts == ("cheap:budget_exceeded", "dear:budget_exceeded")
    assert adapter.called == []


async def test_past_downgrade_at_pct_the_hold_says_to_serve_with_cost() -> None:
    clock = FakeClock()
    budgets = Budgets(MemorySpendStore(clock), clock, catalog())
    rule = BudgetRule(daily=to_units(1.0), monthly=to_units(100.0))
    first = await budgets.admit("team", rule, 0.5, ask("quality"))
    assert first is not None and not first.downgrade
    budgets.settle(first, "team", budgets.catalog.models["dear"], 0.5)  # half the daily budget
    second = await budgets.admit("team", rule, 0.5, ask("quality"))
    assert second is not None and second.downgrade
    assert not (await budgets.admit("other", rule, 0.5, ask("quality"))).downgrade  # type: ignore[union-attr]


def _day(wall: float) -> str:
    from router.store.spend import day_of

    return day_of(wall)[2:]


DEPLOYED = """
providers:
  east: {kind: openai, base_url: "http://127.0.0.1:1/v1"}
  west: {kind: openai, base_url: "http://127.0.0.1:2/v1"}
models:
  dual:
    context_window: 100000
    max_output: 4000
    price: {input: 10.0, output: 40.0}
    quality: 70
    speed: {ttft_ms: 100, tokens_per_s: 100}
    deployments:
      - {provider: east, weight: 100}
      - {provider: west, price: {input: 0.1, output: 0.4}}
routing:
  expected_output_tokens: 100
  retry: {attempts_per_model: 1}
"""


async def test_a_deployment_the_budget_cannot_take_gives_way_to_a_cheaper_one_of_the_same_model() -> None:
    clock = FakeClock()
    budgets = Budgets(MemorySpendStore(clock), clock, parse_catalog(DEPLOYED, {}))
    adapter = Answering()
    engine = Engine(budgets.catalog, {"east": adapter, "west": adapter}, clock)
    # The west deployment's estimate ($0.00014) fits the key's budget; the east one's ($0.014) not.
    rule = BudgetRule(daily=to_units(0.001))
    hold = await budgets.admit("team", rule, None, ask("dual"))
    assert hold is not None and hold.held == to_units(0.00014)  # the cheaper way in
    request = ChatRequest(model="dual", messages=[Message(role="user", content="hi")])
    _, outcome = await engine.run(request, engine.plan(request), "r1", ChatAnswer(), admission=hold)
    assert outcome.model.provider == "west" and adapter.called == ["west/dual"]  # east never called
    refused = [a for a in outcome.attempts if a.outcome == "budget_exceeded"]
    assert all(a.deployment == "east/dual" for a in refused)
    # It is charged at the prices of the deployment that served: 1000 x 0.1 + 100 x 0.4 per 1M.
    budgets.settle(hold, "team", outcome.model, 0.00014)
    day = f"d:{_day(clock.wall())}"
    table = (await budgets.store.totals([day]))[day]
    assert table["m:dual"] == table["p:west"] == to_units(0.00014) and "p:east" not in table
