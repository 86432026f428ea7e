"""Circuit breakers end to end: a router with a tight breaker policy, faults from the simulated provider."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router

POLICY = (
    "  breaker: {consecutive_failures: 2, min_volume: 100, "
    "cooldown_s: 1, max_cooldown_s: 8, half_open_probes: 1}"
)
USER: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def tight(mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    text = TEST_CATALOG.read_text()
    catalog = tmp_path_factory.mktemp("breakers") / "catalog.yaml"
    catalog.write_text(text.replace(text[text.index("  breaker:") :].splitlines()[0], POLICY))
    router = start_router(mock_process, artifacts, catalog, "router-breakers")
    try:
        yield router
    finally:
        router.process.stop()


def health(router: Router, model: str) -> dict[str, Any]:
    models = router.http.get("/model-health").json()["models"]
    found: dict[str, Any] = next(m for m in models if m["id"] == model)
    return found


def client(router: Router) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key="k", max_retries=0, timeout=20)


def test_failing_model_is_skipped_and_the_next_serves(tight: Router, mock: Mock) -> None:
    mock.fault("primary-upstream", {"kind": "status", "status": 500}, times=-1)
    for _ in range(2):
        raw = client(tight).chat.completions.with_raw_response.create(model="primary", messages=USER)
        assert raw.headers["x-router-model"] == "backup" and raw.headers["x-router-attempts"] == "2"
    state = health(tight, "primary")["breaker"]
    assert state["state"] == "open" and state["trips"] == 1
    assert state["last_error"]["status"] == 500
    before = len(mock.requests())
    raw = client(tight).chat.completions.with_raw_response.create(model="primary", messages=USER)
    # The open breaker skips primary without calling it.
    assert raw.headers["x-router-model"] == "backup" and raw.headers["x-router-attempts"] == "1"
    assert [r["body"]["model"] for r in mock.requests()[before:]] == ["backup-upstream"]


def test_retry_after_holds_the_breaker_open_and_all_open_is_503(tight: Router, mock: Mock) -> None:
    mock.fault("gpt-5-mini", {"kind": "status", "status": 429, "retry_after": 4}, times=-1)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            client(tight).chat.completions.create(model="gpt-5-mini", messages=USER)
    state = health(tight, "gpt-5-mini")["breaker"]
    assert state["state"] == "open" and state["reopens_in_s"] >= 3.0  # Retry-After beats the 1 s cooldown
    # Every candidate open: the router still tries the nearest to re-closing, then answers 503.
    with pytest.raises(openai.InternalServerError) as info:
        client(tight).chat.completions.create(model="gpt-5-mini", messages=USER)
    assert info.value.status_code == 503
    assert int(info.value.response.headers["retry-after"]) >= 2
    assert health(tight, "gpt-5-mini")["breaker"]["state"] == "open"


def test_half_open_probe_closes_after_recovery(tight: Router, mock: Mock) -> None:
    mock.fault("llama3.2", {"kind": "status", "status": 503}, times=2)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client(tight).chat.completions.create(model="local-llama", messages=USER)
    assert health(tight, "local-llama")["breaker"]["state"] == "open"
    time.sleep(1.2)
    assert health(tight, "local-llama")["breaker"]["state"] == "half_open"
    answer = client(tight).chat.completions.create(model="local-llama", messages=USER)
    assert answer.choices[0].message.content
    state = health(tight, "local-llama")["breaker"]
    assert state["state"] == "closed" and state["consecutive_failures"] == 0


def test_upstream_client_errors_do_not_count(tight: Router, mock: Mock) -> None:
    mock.fault("gemini-3-flash-preview", {"kind": "status", "status": 400}, times=3, provider="gemini")
    for _ in range(3):
        with pytest.raises(openai.BadRequestError):
            client(tight).chat.completions.create(model="gemini", messages=USER)
    assert len(mock.requests("gemini")) == 3  # each one reached the upstream
    state = health(tight, "gemini")["breaker"]
    assert (
        state["state"] == "closed" and state["consecutive_failures"] == 0 and state["volume_in_window"] == 0
    )


def test_model_health_lists_every_model_with_configuration(tight: Router) -> None:
    models = {m["id"]: m for m in tight.http.get("/model-health").json()["models"]}
    assert (
        models["needs-key"]["configured"] is False
        and models["needs-key"]["missing_env"] == "TEST_NEVER_SET_KEY"
    )
    assert models["claude"]["configured"] is True
    assert models["claude"]["breaker"]["state"] == "closed"


def test_a_request_while_the_half_open_probe_is_stalled_is_tried_not_refused(
    tight: Router, mock: Mock
) -> None:
    """The last resort is the same in every state: with its single probe stalled upstream, a
    half-open model is still tried for a request that has no other candidate, as an open one is."""
    mock.fault("llama3.2", {"kind": "status", "status": 503}, times=4)
    while health(tight, "local-llama")["breaker"]["state"] != "open":
        with pytest.raises(openai.InternalServerError):
            client(tight).chat.completions.create(model="local-llama", messages=USER)
    mock.reset()
    time.sleep(1.2)
    assert health(tight, "local-llama")["breaker"]["state"] == "half_open"
    mock.fault("llama3.2", {"kind": "timeout", "delay": 1.5}, times=1)  # the probe stalls 1.5 s
    with ThreadPoolExecutor(1) as pool:
        probe = pool.submit(client(tight).chat.completions.create, model="local-llama", messages=USER)
        time.sleep(0.4)
        assert not probe.done()
        before = len(mock.requests())
        started = time.monotonic()
        raw = client(tight).chat.completions.with_raw_response.create(model="local-llama", messages=USER)
        took = time.monotonic() - started
        assert raw.parse().choices[0].message.content
        assert took < 1.0  # answered by the upstream, not held behind the probe
        assert len(mock.requests()) == before + 1
        assert probe.result(timeout=10).choices[0].message.content
    assert health(tight, "local-llama")["breaker"]["state"] == "closed"


def test_no_answer_promises_a_retry_in_zero_seconds(tight: Router, mock: Mock) -> None:
    mock.fault("llama3.2", {"kind": "status", "status": 503}, times=-1)
    messages = []
    for _ in range(6):
        with pytest.raises(openai.InternalServerError) as info:
            client(tight).chat.completions.create(model="local-llama", messages=USER)
        messages.append(info.value.message)
        time.sleep(0.3)
    assert any("paused" in m for m in messages)
    assert not any("0.0s" in m or " 0s" in m for m in messages), messages


def test_a_healthy_fourth_candidate_serves_when_three_fail(tight: Router, mock: Mock) -> None:
    """Up to routing.max_models (5) models are called; a candidate passed over for an open breaker
    does not use up one of them."""
    mock.fault("gpt-5-mini", {"kind": "status", "status": 500}, times=-1)
    mock.fault("claude-haiku-4-5", {"kind": "status", "status": 500}, times=-1, provider="anthropic")
    mock.fault("gemini-3-flash-preview", {"kind": "status", "status": 500}, times=-1, provider="gemini")
    for _ in range(3):  # the third time, the failing models' breakers are open and passed over
        raw = client(tight).chat.completions.with_raw_response.create(
            model="gpt-5-mini", messages=USER, extra_body={"models": ["claude", "gemini", "backup"]}
        )
        assert raw.headers["x-router-model"] == "backup"
        assert raw.parse().choices[0].message.content


@pytest.fixture(scope="module")
def hurried(
    mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Router]:
    """A router whose routing deadline (1 s) is shorter than one upstream's read timeout (2 s)."""
    text = TEST_CATALOG.read_text()
    catalog = tmp_path_factory.mktemp("deadline") / "catalog.yaml"
    catalog.write_text(text.replace("routing:\n", "routing:\n  deadline_s: 1\n", 1))
    router = start_router(mock_process, artifacts, catalog, "router-deadline")
    try:
        yield router
    finally:
        router.process.stop()


@pytest.mark.parametrize("stream", [False, True])
def test_the_routing_deadline_bounds_the_whole_request(hurried: Router, mock: Mock, stream: bool) -> None:
    kind = "stall" if stream else "timeout"  # no first event / no answer at all
    mock.fault("primary-upstream", {"kind": kind, "delay": 5}, times=-1)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        client(hurried).chat.completions.create(model="primary", messages=USER, stream=stream)
    elapsed = time.monotonic() - started
    assert info.value.status_code == 504
    assert "routing deadline of 1s" in info.value.message
    assert 0.9 <= elapsed < 1.8  # neither the stalled model's read timeout nor its fallback's answer
