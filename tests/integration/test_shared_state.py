"""Two router processes sharing one Redis: one rate limit enforced jointly, breaker trips seen by the
other within a second, stored responses continued anywhere, and serving on through a Redis outage.
And the honest warning when several workers run without Redis."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router
from tests.redis_server import RedisServer

JOINT_KEY = "rk-joint-0123456789abcdef012"
POLICY = "  breaker: {consecutive_failures: 2, min_volume: 100, cooldown_s: 30, max_cooldown_s: 60}"
ACCESS = """
access:
  keys:
    - {name: joint, key_env: TEST_KEY_JOINT, requests_per_minute: 1, burst: 10}
    - {name: roomy, key_env: TEST_KEY_ROOMY, requests_per_minute: 60000, burst: 10000}
"""
ROOMY_KEY = "rk-roomy-0123456789abcdef012"
USER: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def routers(
    mock_process: Mock, artifacts: Path, shared_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Router]]:
    text = TEST_CATALOG.read_text()
    text = text.replace(text[text.index("  breaker:") :].splitlines()[0], POLICY)
    catalog = tmp_path_factory.mktemp("shared") / "catalog.yaml"
    catalog.write_text(text + ACCESS)
    env = {
        "ROUTER_REDIS_URL": shared_redis.url,
        "ROUTER_REDIS_PREFIX": f"it-{time.time_ns()}:",
        "TEST_KEY_JOINT": JOINT_KEY,
        "TEST_KEY_ROOMY": ROOMY_KEY,
    }
    started: list[Router] = []
    try:
        for name in ("router-shared-a", "router-shared-b"):
            started.append(start_router(mock_process, artifacts, catalog, name, env=env))
        for router in started:
            wait_for(lambda r=router: health(r)["components"]["store"]["connected"] is True, within=5)
        yield started
    finally:
        for router in started:
            router.process.stop()


def sdk(router: Router, key: str = ROOMY_KEY) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key=key, max_retries=0, timeout=20)


def health(router: Router) -> dict[str, Any]:
    answer: dict[str, Any] = router.http.get("/health").json()
    return answer


def breaker_state(router: Router, model: str) -> str:
    models = router.http.get("/model-health").json()["models"]
    state: str = next(m for m in models if m["id"] == model)["breaker"]["state"]
    return state


def wait_for(check: Callable[[], bool], within: float) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not true within {within}s")
        time.sleep(0.02)
    return time.monotonic() - started


def chat(router: Router, key: str) -> int:
    answer = httpx.post(
        router.url + "/v1/chat/completions",
        json={"model": "gpt-5-mini", "messages": USER},
        headers={"authorization": f"Bearer {key}"},
        timeout=20,
    )
    return answer.status_code


def test_two_routers_enforce_one_rate_limit_jointly(routers: list[Router], mock: Mock) -> None:
    # Burst 10 and one request a minute: over these few seconds exactly 10 are admitted, not 10 each.
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda i: chat(routers[i % 2], JOINT_KEY), range(30)))
    assert statuses.count(200) == 10
    assert statuses.count(429) == 20


def test_a_breaker_opened_through_one_router_is_open_on_the_other(routers: list[Router], mock: Mock) -> None:
    first, second = routers
    mock.fault("primary-upstream", {"kind": "status", "status": 500}, times=-1)
    for _ in range(2):
        raw = sdk(first).chat.completions.with_raw_response.create(model="primary", messages=USER)
        assert raw.headers["x-router-model"] == "backup"
    opened_at = time.monotonic()
    assert breaker_state(first, "primary") == "open"
    wait_for(lambda: breaker_state(second, "primary") == "open", within=1.0)
    assert time.monotonic() - opened_at < 1.0
    # The second router skips the model without calling it.
    before = len(mock.requests())
    raw = sdk(second).chat.completions.with_raw_response.create(model="primary", messages=USER)
    assert raw.headers["x-router-model"] == "backup" and raw.headers["x-router-attempts"] == "1"
    assert [r["body"]["model"] for r in mock.requests()[before:]] == ["backup-upstream"]
    assert "peer" in second.logs()


def test_a_stored_response_is_continued_through_the_other_router(routers: list[Router], mock: Mock) -> None:
    first, second = routers
    created = sdk(first).responses.create(model="gpt-5-mini", input="remember the word walnut")
    fetched = sdk(second).responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == created.output_text
    follow = sdk(second).responses.create(
        model="gpt-5-mini", input="and now?", previous_response_id=created.id
    )
    assert follow.previous_response_id == created.id
    upstream = mock.requests()[-1]["body"]
    assert "walnut" in str(upstream)
    sdk(first).responses.delete(created.id)
    assert second.http.get(f"/v1/responses/{created.id}", headers={"x-api-key": ROOMY_KEY}).status_code == 404


def test_redis_stopped_mid_test_keeps_serving_and_shares_again_after_restart(
    routers: list[Router], mock: Mock, shared_redis: RedisServer
) -> None:
    first, second = routers
    shared_redis.stop()
    try:
        started = time.monotonic()
        answers = [sdk(first).chat.completions.create(model="gpt-5-mini", messages=USER) for _ in range(5)]
        assert all(a.choices[0].message.content for a in answers)
        assert time.monotonic() - started < 10
        report = health(first)
        assert report["status"] == "degraded"
        assert (
            report["components"]["store"]["connected"] is False
            and report["components"]["store"]["scope"] == "process"
        )
        assert any("unreachable" in w for w in report["warnings"])
        # A response stored during the outage is kept locally ...
        kept = sdk(first).responses.create(model="gpt-5-mini", input="stored while redis is away")
        assert sdk(first).responses.retrieve(kept.id).id == kept.id
    finally:
        shared_redis.start()
    for router in routers:
        wait_for(lambda r=router: health(r)["components"]["store"]["connected"] is True, within=5)
    assert health(first)["components"]["store"]["outages"] >= 1
    # ... and written back to Redis, so the other router finds it.
    assert sdk(second).responses.retrieve(kept.id).id == kept.id
    # Breakers are shared again.
    mock.fault("backup-upstream", {"kind": "status", "status": 500}, times=-1)
    for _ in range(2):
        sdk(first).chat.completions.with_raw_response.create(
            model="backup", messages=USER, extra_body={"models": ["gpt-5-mini"]}
        )
    assert breaker_state(first, "backup") == "open"
    wait_for(lambda: breaker_state(second, "backup") == "open", within=1.0)


def test_several_workers_without_redis_say_limits_are_per_worker(mock_process: Mock, artifacts: Path) -> None:
    router = start_router(mock_process, artifacts, TEST_CATALOG, "router-workers", flags=["--workers", "2"])
    try:
        assert "are per worker" in router.logs()
        report = health(router)
        assert report["workers"] == 2 and report["components"]["store"]["scope"] == "per_worker"
        assert any("multiplied by 2" in w for w in report["warnings"])
        state = router.http.get("/help").json()["state"]
        assert state["scope"] == "per_worker" and "ROUTER_REDIS_URL" in state["note"]
        # Metrics count every worker's requests, whichever worker answers the scrape.
        for _ in range(6):
            assert chat(router, "no-key-needed") == 200
        time.sleep(1.3)  # each worker moves its tallies into the shared files every second
        for _ in range(4):
            text = httpx.get(router.url + "/metrics").text  # a new connection each time
            assert chat_requests(text) == 6, text
    finally:
        router.process.stop()


def chat_requests(exposition: str) -> float:
    """The sum of router_requests_total over its label sets for the chat route and status 200."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith("router_requests_total{") and 'route="chat"' in line and 'status="200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
