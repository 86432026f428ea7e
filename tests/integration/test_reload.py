"""Catalog reload without a restart: a good change takes effect with no request dropped and breaker
state kept; a bad file is refused, logged and counted while the old catalog keeps serving."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router

POLICY = "  breaker: {consecutive_failures: 2, min_volume: 100, cooldown_s: 60, max_cooldown_s: 60}"
USER: list[Any] = [{"role": "user", "content": "hi"}]
OPS = {"authorization": "Bearer ops-reload-key-123"}


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = TEST_CATALOG.read_text()
    text = text.replace(text[text.index("  breaker:") :].splitlines()[0], POLICY)
    path = tmp_path_factory.mktemp("reload") / "catalog.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def reloading(mock_process: Mock, artifacts: Path, catalog_file: Path) -> Iterator[Router]:
    env = {"ROUTER_OPS_KEY": OPS["authorization"].split()[1]}
    router = start_router(mock_process, artifacts, catalog_file, "router-reload", env=env)
    try:
        yield router
    finally:
        router.process.stop()


def sdk(router: Router) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key="k", max_retries=0, timeout=30)


def breaker(router: Router, model: str) -> dict[str, Any]:
    models = router.http.get("/model-health", headers=OPS).json()["models"]
    found: dict[str, Any] = next(m for m in models if m["id"] == model)["breaker"]
    return found


def add_alias(path: Path, alias: str, model: str) -> None:
    text = path.read_text()
    path.write_text(text.replace("aliases:\n", f"aliases:\n  {alias}: {model}\n", 1))


def test_a_good_change_takes_effect_without_dropping_a_request(
    reloading: Router, mock: Mock, catalog_file: Path
) -> None:
    # Open a breaker first: its state must survive the reload.
    mock.fault("primary-upstream", {"kind": "status", "status": 500}, times=-1)
    for _ in range(2):
        sdk(reloading).chat.completions.create(model="primary", messages=USER)
    assert breaker(reloading, "primary")["state"] == "open"
    # A slow stream in flight, and a steady flow of requests, across the reload.
    mock.behaviour("gpt-5-mini", tokens_per_s=40)
    statuses: list[int] = []
    stop = threading.Event()
    streamed: list[str] = []

    def stream() -> None:
        pieces = sdk(reloading).chat.completions.create(
            model="gpt-5-mini", messages=[{"role": "user", "content": "words=40"}], stream=True
        )
        streamed.extend(c.choices[0].delta.content or "" for c in pieces if c.choices)

    def flow() -> None:
        with httpx.Client(base_url=reloading.url, timeout=30) as client:
            while not stop.is_set():
                answer = client.post("/v1/chat/completions", json={"model": "backup", "messages": USER})
                statuses.append(answer.status_code)

    threads = [threading.Thread(target=stream), threading.Thread(target=flow), threading.Thread(target=flow)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    add_alias(catalog_file, "fresh-alias", "gpt-5-mini")
    answer = reloading.http.post("/admin/reload", headers=OPS)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "reloaded" and answer.json()["trigger"] == "admin"
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses and set(statuses) == {200}, statuses
    assert len("".join(streamed).split()) == 40  # the stream that began before the reload finished
    raw = sdk(reloading).chat.completions.with_raw_response.create(model="fresh-alias", messages=USER)
    assert raw.headers["x-router-model"] == "gpt-5-mini"
    state = breaker(reloading, "primary")
    assert state["state"] == "open" and state["trips"] == 1
    health = reloading.http.get("/health", headers=OPS).json()
    assert health["components"]["catalog"]["reloads"] >= 1
    assert '"event":"catalog_reload"' in reloading.logs()


def test_a_bad_catalog_is_refused_and_the_old_one_keeps_serving(
    reloading: Router, mock: Mock, catalog_file: Path
) -> None:
    good = catalog_file.read_text()
    try:
        catalog_file.write_text(good.replace("aliases:\n", "aliases:\n  broken-alias: no-such-model\n", 1))
        answer = reloading.http.post("/admin/reload", headers=OPS)
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["code"] == "catalog_invalid"
        assert "broken-alias" in error["message"] and f"{catalog_file}:" in error["message"]
        assert sdk(reloading).chat.completions.create(model="gpt-5-mini", messages=USER).choices
        models = {m.id for m in sdk(reloading).models.list()}
        assert "broken-alias" not in models and "gpt-5-mini" in models
        health = reloading.http.get("/health", headers=OPS).json()
        assert health["components"]["catalog"]["status"] == "degraded"
        assert any("reload was refused" in w for w in health["warnings"])
        deadline = time.monotonic() + 5
        while "catalog reload refused" not in reloading.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "catalog reload refused" in reloading.logs()
        metrics = reloading.http.get("/metrics", headers=OPS).text
        assert 'router_catalog_reloads_total{result="refused"} 1.0' in metrics
    finally:
        catalog_file.write_text(good)


def test_sighup_reloads_every_worker_in_place(reloading: Router, mock: Mock, catalog_file: Path) -> None:
    add_alias(catalog_file, "hup-alias", "backup")
    os.kill(reloading.process.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if "hup-alias" in {m.id for m in sdk(reloading).models.list()}:
            break
        time.sleep(0.1)
    raw = sdk(reloading).chat.completions.with_raw_response.create(model="hup-alias", messages=USER)
    assert raw.headers["x-router-model"] == "backup"
    # The workers were not respawned: the breaker opened before is still open.
    assert breaker(reloading, "primary")["state"] == "open"
    assert "respawning" not in reloading.logs()
