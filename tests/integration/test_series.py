"""``/model-health/series`` on a router process of its own, after real requests to the simulated
providers: answers, attempts and failures per model, latency percentiles, and clear refusals of bad
queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router

USER: list[Any] = [{"role": "user", "content": "hi"}]
DELAY_MS = 150


@pytest.fixture(scope="module")
def fresh(mock_process: Mock, artifacts: Path) -> Iterator[Router]:
    """A router nobody else sends traffic to, so its counts are exact."""
    router = start_router(mock_process, artifacts, TEST_CATALOG, "router-series")
    try:
        yield router
    finally:
        router.process.stop()


def series(router: Router, **query: Any) -> dict[str, Any]:
    answer = router.http.get("/model-health/series", params=query)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in body["models"]}


def test_series_count_answers_attempts_errors_and_latency_per_model(fresh: Router, mock: Mock) -> None:
    before = series(fresh)
    assert before["scope"] == "process" and before["workers"] == 1 and before["minutes"] == 60
    assert before["bucket_s"] == 60 and "2^(1/8)" in before["latency"]
    catalog_models = [m["id"] for m in fresh.http.get("/model-health").json()["models"]]
    assert [m["id"] for m in before["models"]] == catalog_models  # every model, in catalog order
    assert all(m["totals"]["attempts"] == 0 and len(m["requests"]) == 60 for m in before["models"])

    client = OpenAI(base_url=fresh.url + "/v1", api_key="k", max_retries=0, timeout=20)
    mock.behaviour("gpt-5-mini", latency_ms=DELAY_MS)
    for _ in range(3):
        client.chat.completions.create(model="gpt-5-mini", messages=USER)
    chunks = list(client.chat.completions.create(model="mini", messages=USER, stream=True))
    assert chunks
    # primary fails; backup answers in its place.
    mock.fault("primary-upstream", {"kind": "status", "status": 500}, times=-1)
    raw = client.chat.completions.with_raw_response.create(model="primary", messages=USER)
    assert raw.headers["x-router-model"] == "backup"

    models = by_id(series(fresh))
    mini = models["gpt-5-mini"]["totals"]
    assert (mini["requests"], mini["attempts"], mini["errors"]) == (4, 4, 0)
    # The simulated delay is the model's own time; the router's overhead is not in it.
    assert mini["latency_p50_ms"] >= DELAY_MS * 0.95
    assert mini["latency_p95_ms"] >= mini["latency_p50_ms"]
    primary, backup = models["primary"]["totals"], models["backup"]["totals"]
    assert primary["requests"] == 0 and primary["attempts"] >= 1
    assert primary["errors"] == primary["attempts"]  # every call to it failed
    assert (backup["requests"], backup["attempts"], backup["errors"]) == (1, 1, 0)
    assert models["codex"]["totals"] == {
        "requests": 0,
        "attempts": 0,
        "errors": 0,
        "latency_p50_ms": None,
        "latency_p95_ms": None,
    }
    # The minutes add up to the totals, and the latest minute has the traffic just sent.
    counts = models["gpt-5-mini"]["requests"]
    assert sum(counts) == 4 and counts[-1] + counts[-2] == 4
    assert models["gpt-5-mini"]["latency_p50_ms"][-1] is not None or counts[-1] == 0


def test_series_can_be_narrowed_to_some_models_and_minutes(fresh: Router) -> None:
    for path in ("/model-health/series", "/v1/model-health/series"):
        answer = fresh.http.get(path, params=[("model", "backup"), ("model", "primary"), ("minutes", "5")])
        body = answer.json()
        assert answer.status_code == 200 and body["minutes"] == 5
        assert [m["id"] for m in body["models"]] == ["backup", "primary"]
        assert all(len(m[k]) == 5 for m in body["models"] for k in ("requests", "errors", "latency_p95_ms"))
        assert body["start"] % 60 == 0 and body["start"] < body["since"]  # started minutes ago


@pytest.mark.parametrize(
    ("query", "status", "param", "words"),
    [
        ({"minutes": "0"}, 400, "minutes", "from 1 to 60"),
        ({"minutes": "61"}, 400, "minutes", "from 1 to 60"),
        ({"minutes": "ten"}, 400, "minutes", "'ten'"),
        ({"minutes": "-5"}, 400, "minutes", "whole number"),
        ({"minutes": "²"}, 400, "minutes", "whole number"),
        ({"minutes": "9" * 5000}, 400, "minutes", "whole number"),
        ({"model": "no-such-model"}, 404, "model", "does not exist"),
        ({"model": "mini"}, 400, "model", "alias of 'gpt-5-mini'"),
        ({"model": "fast"}, 400, "model", "strategy"),
        ({"window": "5"}, 400, "window", "Unknown query parameter 'window'"),
    ],
)
def test_bad_queries_are_refused_with_an_envelope(
    fresh: Router, query: dict[str, str], status: int, param: str, words: str
) -> None:
    answer = fresh.http.get("/model-health/series", params=query)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["param"] == param and words in error["message"]
    assert error["type"] == "invalid_request_error"
    if status == 404:
        assert error["code"] == "model_not_found"


def test_series_take_the_ops_key(mock: Mock, artifacts: Path, request: pytest.FixtureRequest) -> None:
    router = start_router(
        mock, artifacts, TEST_CATALOG, "router-series-key", env={"ROUTER_OPS_KEY": "ops-key-series"}
    )
    request.addfinalizer(router.process.stop)
    url = router.url + "/model-health/series"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"authorization": "Bearer ops-key-series"}).status_code == 200
    assert "/model-health/series" in router.http.get("/help").json()["auth"]["ops_routes"]
