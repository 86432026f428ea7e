"""The response cache's state: shared through Redis by two router processes (switched on by
``ROUTER_CACHE_TTL_S``), its settings changed by a catalog reload, and its TTL and bounds on an
injected clock (the app in this process, its providers the simulated ones on a real port)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from router.app import create_app
from router.catalog import CacheSpec
from router.clock import FakeClock
from router.mock import MockServer
from router.settings import Settings
from tests.inprocess import serving, two_model_catalog
from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router
from tests.integration.test_cache import calls, marker
from tests.redis_server import RedisServer

OPS = {"authorization": "Bearer ops-cache-key-0123"}


def chat(mark: str) -> dict[str, Any]:
    return {"model": "gpt-5-mini", "messages": [{"role": "user", "content": f"Say hello words=3 {mark}"}]}


@pytest.fixture(scope="module")
def pair(mock_process: Mock, artifacts: Path, shared_redis: RedisServer) -> Iterator[list[Router]]:
    env = {
        "ROUTER_REDIS_URL": shared_redis.url,
        "ROUTER_REDIS_PREFIX": f"cache-{time.time_ns()}:",
        "ROUTER_CACHE_TTL_S": "120",
    }
    started: list[Router] = []
    try:
        for name in ("router-cache-a", "router-cache-b"):
            started.append(start_router(mock_process, artifacts, TEST_CATALOG, name, env=env))
        for router in started:
            deadline = time.monotonic() + 5
            while not router.http.get("/health").json()["components"]["store"]["connected"]:
                assert time.monotonic() < deadline, "the router did not reach Redis"
                time.sleep(0.05)
        yield started
    finally:
        for router in started:
            router.process.stop()


def test_an_answer_kept_by_one_router_is_a_hit_on_the_other(pair: list[Router], mock: Mock) -> None:
    one, two = pair
    mark = marker()
    assert one.http.post("/v1/chat/completions", json=chat(mark)).headers["x-router-cache"] == "miss"
    streamed = {**chat(mark), "stream": True}
    hit = two.http.post("/v1/chat/completions", json=streamed)
    assert hit.headers["x-router-cache"] == "hit" and "[DONE]" in hit.text
    assert two.http.post("/v1/chat/completions", json=chat(mark)).headers["x-router-cache"] == "hit"
    assert calls(mock, "openai", mark) == 1
    assert two.http.get("/help").json()["cache"]["store"].startswith("redis")


@pytest.fixture()
def reloading(mock_process: Mock, artifacts: Path, tmp_path: Path) -> Iterator[tuple[Router, Path]]:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(TEST_CATALOG.read_text() + "cache: {enabled: true, ttl_s: 60}\n")
    env = {"ROUTER_OPS_KEY": OPS["authorization"].split()[1]}
    router = start_router(mock_process, artifacts, catalog, "router-cache-reload", env=env)
    try:
        yield router, catalog
    finally:
        router.process.stop()


def test_a_catalog_reload_applies_new_cache_settings(reloading: tuple[Router, Path], mock: Mock) -> None:
    router, catalog = reloading
    mark = marker()
    router.http.post("/v1/chat/completions", json=chat(mark))
    assert router.http.post("/v1/chat/completions", json=chat(mark)).headers["x-router-cache"] == "hit"
    text = catalog.read_text()
    catalog.write_text(text.replace("cache: {enabled: true, ttl_s: 60}", "cache: {enabled: false}"))
    assert router.http.post("/admin/reload", headers=OPS).json()["status"] == "reloaded"
    off = router.http.post("/v1/chat/completions", json=chat(mark))
    assert off.status_code == 200 and "x-router-cache" not in off.headers  # off: no header at all
    assert router.http.get("/help").json()["cache"]["enabled"] is False
    catalog.write_text(text.replace("ttl_s: 60", "ttl_s: 30, max_entries: 10"))
    assert router.http.post("/admin/reload", headers=OPS).json()["status"] == "reloaded"
    on = router.http.post("/v1/chat/completions", json=chat(mark))
    assert on.headers["x-router-cache"] == "hit"  # the entries were kept through the reloads
    assert router.http.get("/help").json()["cache"]["ttl_s"] == 30
    catalog.write_text(text.replace("ttl_s: 60", "ttl_s: 0"))
    refused = router.http.post("/admin/reload", headers=OPS)
    assert refused.status_code == 400 and "cache.ttl_s" in refused.json()["error"]["message"]
    assert calls(mock, "openai", mark) == 2


# --- TTL and bounds on an injected clock --------------------------------------------------------


@pytest.fixture()
async def upstream() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


async def test_entries_expire_after_their_ttl_and_the_least_recently_used_go_first(
    upstream: MockServer,
) -> None:
    clock = FakeClock()
    catalog = msgspec.structs.replace(
        two_model_catalog(upstream.openai_url), cache=CacheSpec(enabled=True, ttl_s=30, max_entries=2)
    )
    app = create_app(Settings(), catalog=catalog, clock=clock)

    async def ask(client: httpx.AsyncClient, text: str) -> str:
        body = {"model": "first", "messages": [{"role": "user", "content": text}]}
        answer = await client.post("/v1/chat/completions", json=body)
        assert answer.status_code == 200, answer.text
        return answer.headers["x-router-cache"]

    async with serving(app) as client:
        assert [await ask(client, "a"), await ask(client, "a")] == ["miss", "hit"]
        clock.advance(29.9)
        assert await ask(client, "a") == "hit"
        clock.advance(0.1)
        assert await ask(client, "a") == "miss"  # expired: asked again, and kept again
        assert [await ask(client, "b"), await ask(client, "a"), await ask(client, "c")] == [
            "miss",
            "hit",
            "miss",
        ]
        # At most two entries: "b" was the least recently used when "c" came.
        assert [await ask(client, "a"), await ask(client, "c"), await ask(client, "b")] == [
            "hit",
            "hit",
            "miss",
        ]
