"""Spend ledger, budgets and spend reports end to end: two router processes sharing one Redis, called
through the official OpenAI SDK. A key with a tiny daily budget is refused (429 ``budget_exceeded``,
``x-should-retry: false``) once its spend would pass it, on both routers; the ledger equals the sum of
the ``x-router-cost-usd`` headers to the last of their eight decimals; ``downgrade_at_pct`` switches
strategy keywords to ``cost``; streams are counted; ``/v1/usage`` and ``/admin/spend`` (JSON and CSV)
agree with the ledger; bad report queries get 400s."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router
from tests.redis_server import RedisServer

TINY_KEY = "rk-tiny-0123456789abcdef0123"
SAVER_KEY = "rk-saver-0123456789abcdef012"
ROOMY_KEY = "rk-roomy-0123456789abcdef012"
TINY_BUDGET = Decimal("0.0004")
ACCESS = f"""
access:
  keys:
    - {{name: tiny, key_env: TEST_KEY_TINY, budget: {{daily_usd: {TINY_BUDGET}}}}}
    - {{name: saver, key_env: TEST_KEY_SAVER, budget: {{daily_usd: 0.1}}, downgrade_at_pct: 0.001}}
    - {{name: roomy, key_env: TEST_KEY_ROOMY}}
"""
USER: list[Any] = [{"role": "user", "content": "hi"}]
EIGHT = Decimal("0.00000001")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spend") / "catalog.yaml"
    path.write_text(TEST_CATALOG.read_text() + ACCESS)
    return path


@pytest.fixture(scope="module")
def routers(
    mock_process: Mock, artifacts: Path, shared_redis: RedisServer, catalog: Path
) -> Iterator[list[Router]]:
    env = {
        "ROUTER_REDIS_URL": shared_redis.url,
        "ROUTER_REDIS_PREFIX": f"spend-{time.time_ns()}:",
        "TEST_KEY_TINY": TINY_KEY,
        "TEST_KEY_SAVER": SAVER_KEY,
        "TEST_KEY_ROOMY": ROOMY_KEY,
    }
    started: list[Router] = []
    try:
        for name in ("router-spend-a", "router-spend-b"):
            started.append(start_router(mock_process, artifacts, catalog, name, env=env))
        for router in started:
            deadline = time.monotonic() + 5
            while not router.http.get("/health").json()["components"]["store"]["connected"]:
                assert time.monotonic() < deadline, "the router did not connect to Redis"
                time.sleep(0.05)
        yield started
    finally:
        for router in started:
            router.process.stop()


def sdk(router: Router, key: str) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key=key, max_retries=0, timeout=20)


def usage(router: Router, key: str) -> dict[str, Any]:
    answer = httpx.get(router.url + "/v1/usage", headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def spend(router: Router, group_by: str, csv_too: bool = False) -> dict[str, Decimal]:
    """``/admin/spend`` for today by ``group_by``: each row's amount (checked equal in the CSV)."""
    answer = router.http.get("/admin/spend", params={"group_by": group_by})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    rows = {row["name"]: Decimal(str(row["spend_usd"])) for row in report["rows"]}
    assert Decimal(str(report["total_usd"])) == sum(rows.values(), Decimal(0)) or group_by != "key"
    if csv_too:
        text = router.http.get("/admin/spend", params={"group_by": group_by}, headers={"accept": "text/csv"})
        assert text.headers["content-type"] == "text/csv; charset=utf-8"
        lines = list(csv.reader(io.StringIO(text.text)))
        assert lines[0] == [group_by, "spend_usd", "requests"]
        assert {name: Decimal(amount) for name, amount, _ in lines[1:]} == rows
        assert all(len(amount.split(".")[1]) == 8 for _, amount, _ in lines[1:])
    return rows


def test_a_tiny_daily_budget_is_refused_across_two_routers_and_the_ledger_is_exact(
    routers: list[Router], mock: Mock
) -> None:
    headers_total = Decimal(0)
    answered = 0
    with pytest.raises(openai.RateLimitError) as refused:
        for i in range(100):
            raw = sdk(routers[i % 2], TINY_KEY).chat.completions.with_raw_response.create(
                model="gpt-5-mini", messages=USER, max_tokens=20
            )
            headers_total += Decimal(raw.headers["x-router-cost-usd"])
            answered += 1
    assert answered >= 3  # each answer costs a fraction of the budget
    error = refused.value
    assert error.status_code == 429
    assert error.code == "budget_exceeded" and error.type == "insufficient_quota"
    assert error.response.headers["x-should-retry"] == "false"
    message = error.message
    assert "daily budget of key 'tiny' is $0.0004" in message
    assert "T00:00:00Z" in message and "resets at" in message
    assert int(error.response.headers["retry-after"]) <= 86_400
    # Refused by both routers: the spend is shared.
    for router in routers:
        with pytest.raises(openai.RateLimitError) as again:
            sdk(router, TINY_KEY).chat.completions.create(model="gpt-5-mini", messages=USER, max_tokens=20)
        assert again.value.code == "budget_exceeded"
    # Nothing was spent beyond what the last admitted request was estimated at.
    assert headers_total <= TINY_BUDGET
    # The ledger is exact to the headers' eighth decimal, whichever router is asked.
    for router in routers:
        report = usage(router, TINY_KEY)
        assert Decimal(str(report["spend_usd"]["today"])) == headers_total
        assert Decimal(str(report["spend_usd"]["month"])) == headers_total
        assert report["requests"]["today"] == answered
        assert Decimal(str(report["budget_usd"]["daily"])) == TINY_BUDGET
        assert Decimal(str(report["remaining_usd"]["daily"])) == TINY_BUDGET - headers_total
        assert report["budget_usd"]["monthly"] is None and report["remaining_usd"]["monthly"] is None
        assert [m["model"] for m in report["by_model"]] == ["gpt-5-mini"]
        assert spend(router, "key", csv_too=True)["tiny"] == headers_total
    metrics = routers[0].http.get("/metrics").text
    assert 'router_budget_rejections_total{budget="key_daily",key="tiny"}' in metrics


def test_downgrade_at_pct_serves_strategy_keywords_with_cost(routers: list[Router], mock: Mock) -> None:
    client = sdk(routers[0], SAVER_KEY)
    before = client.chat.completions.with_raw_response.create(model="quality", messages=USER)
    assert before.headers["x-router-strategy"] == "quality"
    assert Decimal(before.headers["x-router-cost-usd"]) > Decimal("0.000001")  # 0.001% of $0.10: passed
    after = sdk(routers[1], SAVER_KEY).chat.completions.with_raw_response.create(
        model="quality", messages=USER
    )
    assert after.headers["x-router-strategy"] == "cost"
    assert after.headers["x-router-model"] == "local-llama"  # the cheapest model of the catalog
    # A model named outright is served as asked.
    named = client.chat.completions.with_raw_response.create(model="gpt-5-mini", messages=USER)
    assert named.headers["x-router-model"] == "gpt-5-mini" and "x-router-strategy" not in named.headers


def test_every_api_and_streams_are_counted_and_the_reports_agree(routers: list[Router], mock: Mock) -> None:
    first, second = routers
    keys_before = spend(first, "key")
    models_before = spend(first, "model")
    providers_before = spend(second, "provider")
    usage_before = usage(second, ROOMY_KEY)
    client = sdk(first, ROOMY_KEY)
    by_model: dict[str, Decimal] = {}

    def paid(model: str, cost: str) -> None:
        by_model[model] = by_model.get(model, Decimal(0)) + Decimal(cost)

    chat = client.chat.completions.with_raw_response.create(model="gpt-5-mini", messages=USER)
    paid("gpt-5-mini", chat.headers["x-router-cost-usd"])
    claude = sdk(second, ROOMY_KEY).chat.completions.with_raw_response.create(model="claude", messages=USER)
    paid("claude", claude.headers["x-router-cost-usd"])
    response = client.responses.with_raw_response.create(model="gpt-5-mini", input="hello there")
    paid("gpt-5-mini", response.headers["x-router-cost-usd"])
    embedded = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input="hello")
    paid("text-embedding-3-small", embedded.headers["x-router-cost-usd"])
    # A stream has no cost header (it is sent before the cost is known); its usage prices it.
    stream = client.chat.completions.create(
        model="gpt-5-mini", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    counted = chunks[-1].usage
    assert counted is not None
    cached = (counted.prompt_tokens_details.cached_tokens or 0) if counted.prompt_tokens_details else 0
    stream_cost = (
        (counted.prompt_tokens - cached) * Decimal("0.25")
        + cached * Decimal("0.025")
        + counted.completion_tokens * Decimal("2.0")
    ) / 1_000_000
    paid("gpt-5-mini", str(stream_cost.quantize(EIGHT)))
    total = sum(by_model.values(), Decimal(0))

    usage_after = usage(second, ROOMY_KEY)
    spent = Decimal(str(usage_after["spend_usd"]["today"])) - Decimal(str(usage_before["spend_usd"]["today"]))
    assert spent == total
    assert usage_after["requests"]["today"] - usage_before["requests"]["today"] == 5
    assert usage_after["budget_usd"] == {"daily": None, "monthly": None}
    models_now = {m["model"]: Decimal(str(m["today"])) for m in usage_after["by_model"]}
    models_then = {m["model"]: Decimal(str(m["today"])) for m in usage_before["by_model"]}
    assert {m: models_now[m] - models_then.get(m, Decimal(0)) for m in models_now} == by_model

    keys_after = spend(second, "key", csv_too=True)
    assert keys_after["roomy"] - keys_before.get("roomy", Decimal(0)) == total
    models_after = spend(second, "model", csv_too=True)
    for model, cost in by_model.items():
        assert models_after[model] - models_before.get(model, Decimal(0)) == cost
    providers_after = spend(first, "provider", csv_too=True)
    openai_spent = total - by_model["claude"]
    assert providers_after["openai"] - providers_before.get("openai", Decimal(0)) == openai_spent
    assert providers_after["anthropic"] - providers_before.get("anthropic", Decimal(0)) == by_model["claude"]
    metrics = first.http.get("/metrics").text
    assert 'router_spend_usd_total{key="roomy"}' in metrics


def test_the_dashboards_spend_overview_agrees_with_each_keys_usage(routers: list[Router], mock: Mock) -> None:
    first, second = routers
    sdk(first, ROOMY_KEY).chat.completions.create(model="gpt-5-mini", messages=USER)
    overview = second.http.get("/model-health/spend").json()
    assert overview["object"] == "spend_overview" and overview["scope"] == "shared"
    keys = {row["name"]: row for row in overview["keys"]}
    assert {"tiny", "saver", "roomy"} <= set(keys) and all(keys[k]["declared"] for k in ("tiny", "roomy"))
    for name, key in (("tiny", TINY_KEY), ("saver", SAVER_KEY), ("roomy", ROOMY_KEY)):
        own = usage(first, key)
        row = keys[name]
        assert (row["today"], row["month"]) == (own["spend_usd"]["today"], own["spend_usd"]["month"])
        assert (row["budget_daily"], row["budget_monthly"]) == (
            own["budget_usd"]["daily"],
            own["budget_usd"]["monthly"],
        )
        assert row["requests_today"] == own["requests"]["today"]
    assert keys["tiny"]["budget_daily"] == float(TINY_BUDGET) and keys["roomy"]["budget_daily"] is None
    assert keys["saver"]["downgrade_at_pct"] == 0.001 and keys["roomy"]["downgrade_at_pct"] is None
    by_key = spend(second, "key")
    assert {name: Decimal(str(row["today"])) for name, row in keys.items() if row["today"]} == by_key
    models = {row["name"]: Decimal(str(row["today"])) for row in overview["models"] if row["today"]}
    assert models == spend(second, "model")
    assert Decimal(str(overview["total"]["today"])) == sum(by_key.values(), Decimal(0))


def test_a_catalog_reload_keeps_the_ledger_and_brings_the_new_budgets(
    routers: list[Router], catalog: Path, mock: Mock
) -> None:
    first = routers[0]
    spent = Decimal(str(usage(first, TINY_KEY)["spend_usd"]["today"]))
    assert spent > 0  # the tiny key's spend, from the first test
    catalog.write_text(catalog.read_text().replace(f"daily_usd: {TINY_BUDGET}", "daily_usd: 1"))
    try:
        assert first.http.post("/admin/reload").status_code == 200
        report = usage(first, TINY_KEY)
        assert Decimal(str(report["spend_usd"]["today"])) == spent
        assert report["budget_usd"]["daily"] == 1
        raw = sdk(first, TINY_KEY).chat.completions.with_raw_response.create(
            model="gpt-5-mini", messages=USER, max_tokens=20
        )
        after = Decimal(str(usage(first, TINY_KEY)["spend_usd"]["today"]))
        assert after == spent + Decimal(raw.headers["x-router-cost-usd"])
    finally:
        catalog.write_text(TEST_CATALOG.read_text() + ACCESS)
        assert first.http.post("/admin/reload").status_code == 200


def test_an_open_router_records_its_spend_as_anonymous(router: Router, mock: Mock) -> None:
    before = router.http.get("/v1/usage").json()
    assert before["key"] == "anonymous" and before["budget_usd"] == {"daily": None, "monthly": None}
    raw = router.http.post("/v1/chat/completions", json={"model": "gpt-5-mini", "messages": USER})
    after = router.http.get("/v1/usage").json()
    added = Decimal(str(after["spend_usd"]["today"])) - Decimal(str(before["spend_usd"]["today"]))
    assert added == Decimal(raw.headers["x-router-cost-usd"]) > 0
    assert 'router_spend_usd_total{key="anonymous"}' in router.http.get("/metrics").text


def test_a_cache_hit_costs_nothing_and_needs_no_room_in_the_budget(
    mock_process: Mock, artifacts: Path, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        TEST_CATALOG.read_text()
        + "cache: {enabled: true, ttl_s: 600}\n"
        + "access:\n  keys:\n    - {name: tiny, key_env: TEST_KEY_TINY, budget: {daily_usd: 0.0001}}\n"
    )
    router = start_router(
        mock_process, artifacts, catalog, "router-spend-cache", env={"TEST_KEY_TINY": TINY_KEY}
    )
    try:
        client = sdk(router, TINY_KEY)
        first = client.chat.completions.with_raw_response.create(
            model="gpt-5-mini", messages=USER, max_tokens=10
        )
        assert first.headers["x-router-cache"] == "miss"
        cost = Decimal(first.headers["x-router-cost-usd"])
        with pytest.raises(openai.RateLimitError) as spent:  # 1000 tokens at $2/1M: more than is left
            client.chat.completions.create(model="gpt-5-mini", messages=USER, max_tokens=1000)
        assert spent.value.code == "budget_exceeded"
        again = client.chat.completions.with_raw_response.create(
            model="gpt-5-mini", messages=USER, max_tokens=10
        )
        assert again.headers["x-router-cache"] == "hit"
        assert Decimal(again.headers["x-router-cost-usd"]) == 0
        report = usage(router, TINY_KEY)
        assert Decimal(str(report["spend_usd"]["today"])) == cost and report["requests"]["today"] == 1
    finally:
        router.process.stop()


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"group_by": "team"}, "group_by"),
        ({"from": "2025-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2025-02-01", "to": "2025-01-01"}, "from"),
        ({"from": "2023-01-01", "to": "2025-01-01"}, "from"),
        ({"format": "csv"}, "format"),
    ],
)
def test_bad_report_queries_are_400_naming_the_parameter(
    routers: list[Router], query: dict[str, str], param: str
) -> None:
    answer = routers[0].http.get("/admin/spend", params=query)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_reports_need_the_right_keys(routers: list[Router]) -> None:
    # /v1/usage (and /usage, for base URLs without /v1) is a client route: it takes a client key.
    assert httpx.get(routers[0].url + "/v1/usage").status_code == 401
    bare = httpx.get(routers[0].url + "/usage", headers={"x-api-key": ROOMY_KEY})
    assert bare.status_code == 200 and bare.json()["key"] == "roomy"
    past = routers[0].http.get("/admin/spend", params={"from": "2020-01-01", "to": "2020-01-31"}).json()
    assert past["rows"] == [] and past["total_usd"] == 0
