"""Google Vertex AI through real router processes and the simulated Vertex AI: what goes upstream for each
publisher, failover between Anthropic and Vertex deployments of one model, google-auth's service-account
refresh against the simulated token endpoint, refused credentials, and a router without the gcp extra.
The conformance suite (test_conformance.py) and test_responses.py cover the translation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.integration.conftest import ROOT, TEST_CATALOG, Mock, Router, start_router

USER: list[Any] = [{"role": "user", "content": "hi"}]
VERTEX_CLAUDE = "claude-haiku-4-5@20251001"
MODELS = """
  dual-claude:
    context_window: 200000
    max_output: 64000
    price: {input: 1, output: 5}
    quality: 75
    speed: {ttft_ms: 600, tokens_per_s: 120}
    deployments:
      - {provider: anthropic, upstream: claude-haiku-4-5}
      - {provider: vertex, upstream: claude-haiku-4-5@20251001}
  vertex-typo:
    provider: vertex
    upstream: claude-haiku-4-5
    context_window: 200000
    max_output: 1000
    price: {input: 5, output: 20}
    quality: 30
    speed: {ttft_ms: 5000, tokens_per_s: 20}
"""
# Without a static token, the vertex provider's credentials come from google-auth.
NO_STATIC_TOKEN = {"ROUTER_VERTEX_ACCESS_TOKEN": "", "ROUTER_DEAD_VERTEX_ACCESS_TOKEN": ""}


def clean_env() -> dict[str, str]:
    """This process's environment without the router's and Google's variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("ROUTER_", "GOOGLE_"))}


def client(router: Router) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key="k", max_retries=0, timeout=20)


@pytest.fixture()
def dual(mock_process: Mock, artifacts: Path, tmp_path: Path) -> Iterator[Router]:
    """A router of its own (its breakers and quotas start afresh) with the model ``dual-claude``."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(TEST_CATALOG.read_text().replace("models:\n", "models:" + MODELS, 1))
    router = start_router(mock_process, artifacts, catalog, "router-vertex-dual")
    try:
        yield router
    finally:
        router.process.stop()


def service_account(mock: Mock, folder: Path, **spec: Any) -> Path:
    """A key file from the simulated Google (its ``token_uri`` the simulated token endpoint)."""
    answer = mock.http.post("/__mock__/vertex/service-account", json={"project": "router-test", **spec})
    answer.raise_for_status()
    path = folder / f"key-{time.monotonic_ns()}.json"
    path.write_text(answer.text)
    return path


def issued(mock: Mock) -> int:
    count: int = mock.http.get("/__mock__/vertex/tokens").json()["issued"]
    return count


# --- what goes upstream ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_each_publisher_is_called_at_its_own_url_with_the_bearer_token(
    router: Router, mock: Mock, stream: bool
) -> None:
    for model in ("vertex-claude", "vertex-gemini"):
        answer = client(router).chat.completions.create(model=model, messages=USER, stream=stream)
        if stream:
            assert list(answer)  # type: ignore[arg-type]
    claude, gemini = mock.requests("vertex")[-2:]
    prefix = "/vertex/v1/projects/router-test/locations/us-east5/publishers"
    method = "streamRawPredict" if stream else "rawPredict"
    assert claude["path"] == f"{prefix}/anthropic/models/{VERTEX_CLAUDE}:{method}"
    assert claude["body"]["anthropic_version"] == "vertex-2023-10-16" and "model" not in claude["body"]
    assert claude["body"].get("stream", False) is stream
    assert gemini["path"] == f"{prefix}/google/models/gemini-3-flash-preview:" + (
        "streamGenerateContent" if stream else "generateContent"
    )
    assert gemini["query"] == ("alt=sse" if stream else "")
    for sent in (claude, gemini):
        assert sent["headers"]["authorization"].startswith("Bearer ya29.")
        assert "x-api-key" not in sent["headers"] and "x-goog-api-key" not in sent["headers"]


def test_a_refused_token_is_a_502_naming_the_variable_to_fix(router: Router, mock: Mock) -> None:
    mock.require_key("vertex", "ya29.some-other-token")
    with pytest.raises(openai.InternalServerError) as info:
        client(router).chat.completions.create(model="vertex-claude", messages=USER)
    error = info.value
    assert error.status_code == 502 and error.code == "upstream_auth_failed"  # type: ignore[attr-defined]
    assert (
        "ROUTER_VERTEX_ACCESS_TOKEN" in error.message
        and "Request had invalid authentication" in error.message
    )


def test_a_model_id_vertex_does_not_know_is_the_catalog_s_fault(dual: Router, mock: Mock) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client(dual).chat.completions.create(model="vertex-typo", messages=USER)
    error = info.value
    assert error.status_code == 502 and error.code == "upstream_misconfigured"  # type: ignore[attr-defined]
    assert (
        "Publisher Model" in error.message and "region 'us-east5' of project 'router-test'" in error.message
    )


# --- failover between Anthropic and Vertex AI -----------------------------------------------------


def test_vertex_throttled_is_no_failure_for_clients_anthropic_serves(dual: Router, mock: Mock) -> None:
    throttled = {"kind": "status", "status": 429, "retry_after": 30}
    mock.fault(VERTEX_CLAUDE, throttled, times=-1, provider="vertex")
    attempts: Counter[str] = Counter()
    for turn in range(40):
        stream = turn % 2 == 1
        raw = client(dual).chat.completions.with_raw_response.create(
            model="dual-claude", messages=USER, stream=stream
        )
        assert raw.headers["x-router-deployment"] == "anthropic/dual-claude"
        attempts[raw.headers["x-router-attempts"]] += 1
        if stream:
            finishes = [c.choices[0].finish_reason for c in raw.parse() if c.choices]  # type: ignore[attr-defined]
            assert finishes[-1] == "stop"
        if mock.requests("vertex"):
            break
    else:
        pytest.fail("the vertex deployment was never drawn")
    assert attempts["2"] == 1  # Vertex refused once; Anthropic answered that same request
    before = len(mock.requests("vertex"))
    for _ in range(5):
        raw = client(dual).chat.completions.with_raw_response.create(model="dual-claude", messages=USER)
        assert raw.headers["x-router-attempts"] == "1"
    assert len(mock.requests("vertex")) == before  # left alone until its Retry-After


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_down_is_no_failure_for_clients_vertex_serves(
    dual: Router, mock: Mock, stream: bool
) -> None:
    mock.fault("claude-haiku-4-5", {"kind": "status", "status": 503}, times=-1, provider="anthropic")
    for _ in range(6):
        raw = client(dual).chat.completions.with_raw_response.create(
            model="dual-claude", messages=[{"role": "user", "content": "say words=3"}], stream=stream
        )
        assert raw.status_code == 200
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)  # type: ignore[attr-defined]
        else:
            text = raw.parse().choices[0].message.content or ""  # type: ignore[union-attr]
        assert text.split() == ["lorem", "ipsum", "dolor"]
    served = Counter(r["path"].rsplit(":", 1)[-1] for r in mock.requests("vertex"))
    assert sum(served.values()) == 6


# --- google-auth's service-account refresh, against the simulated token endpoint -----------------


def test_a_service_account_key_is_exchanged_and_refreshed_ahead_of_expiry(
    mock: Mock, artifacts: Path, tmp_path: Path
) -> None:
    key = service_account(mock, tmp_path, lifetime_s=6)  # refreshed halfway, every 3 seconds
    env = {**NO_STATIC_TOKEN, "GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    router = start_router(mock, artifacts, TEST_CATALOG, "router-vertex-sa", env=env)
    try:
        deadline = time.monotonic() + 8
        slowest = 0.0
        answered = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            answer = client(router).chat.completions.create(model="vertex-gemini", messages=USER)
            slowest = max(slowest, time.monotonic() - started)
            assert answer.choices[0].finish_reason == "stop"
            answered += 1
            time.sleep(0.2)
        # Every token the mock issued passed its signature check; none expired under a request.
        assert issued(mock) >= 3 and answered >= 20
        assert slowest < 1.5
        bearers = {
            r["headers"]["authorization"] for r in mock.requests("vertex") if "authorization" in r["headers"]
        }
        assert len(bearers) >= 3 and all(b.startswith("Bearer ya29.mock-") for b in bearers)
    finally:
        router.process.stop()


def test_a_key_whose_signature_google_refuses_is_a_502_naming_the_key_file(
    mock: Mock, artifacts: Path, tmp_path: Path
) -> None:
    key = json.loads(service_account(mock, tmp_path).read_text())
    other = json.loads(service_account(mock, tmp_path).read_text())
    key["private_key"] = other["private_key"]  # signs for one account with another's key
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(key))
    env = {**NO_STATIC_TOKEN, "GOOGLE_APPLICATION_CREDENTIALS": str(forged)}
    router = start_router(mock, artifacts, TEST_CATALOG, "router-vertex-forged", env=env)
    try:
        with pytest.raises(openai.InternalServerError) as info:
            client(router).chat.completions.create(model="vertex-claude", messages=USER)
        message = info.value.message
        assert info.value.status_code == 502 and "Invalid JWT Signature" in message
        assert "the key file GOOGLE_APPLICATION_CREDENTIALS names" in message
        assert "BEGIN PRIVATE KEY" not in message and str(forged) not in message
        assert not [r for r in mock.requests("vertex") if "/publishers/" in r["path"]]  # never called
    finally:
        router.process.stop()


def test_router_check_names_the_credential_source_project_and_region(mock: Mock, tmp_path: Path) -> None:
    key = service_account(mock, tmp_path)
    env = clean_env()
    env["GOOGLE_APPLICATION_CREDENTIALS"] = str(key)
    result = subprocess.run(
        [sys.executable, "-m", "router", "check", "--catalog", str(TEST_CATALOG)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if "provider vertex " in x)
    source = "service account file (GOOGLE_APPLICATION_CREDENTIALS)"
    assert line.endswith(f"{source} for project router-test, region us-east5; ready")
    assert "https://us-east5-aiplatform.googleapis.com" in line and str(key) not in result.stdout
    env["ROUTER_VERTEX_ACCESS_TOKEN"] = "ya29.secret-value"
    result = subprocess.run(
        [sys.executable, "-m", "router", "check", "--catalog", str(TEST_CATALOG)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert (
        "static access token (ROUTER_VERTEX_ACCESS_TOKEN; not refreshed) for project router-test"
        in result.stdout
    )
    assert "secret-value" not in result.stdout


# --- without the gcp extra -----------------------------------------------------------------------


def without_google_auth(folder: Path) -> dict[str, str]:
    """An environment whose ``google`` package has no ``auth``: as if router[gcp] were not installed."""
    stub = folder / "no-gcp"
    (stub / "google").mkdir(parents=True)
    (stub / "google" / "__init__.py").write_text("")
    return {**NO_STATIC_TOKEN, "PYTHONPATH": str(stub)}


def test_without_the_extra_vertex_models_answer_503_and_health_and_check_say_install_it(
    mock: Mock, artifacts: Path, tmp_path: Path
) -> None:
    env = without_google_auth(tmp_path)
    router = start_router(mock, artifacts, TEST_CATALOG, "router-no-gcp", env=env)
    try:
        with pytest.raises(openai.APIStatusError) as info:
            client(router).chat.completions.create(model="vertex-gemini", messages=USER)
        assert info.value.status_code == 503 and "install router[gcp]" in info.value.message
        missing = router.http.get("/health").json()["components"]["providers"]["missing"]
        assert "install router[gcp]" in missing["vertex"]
        # The other providers serve as ever.
        assert client(router).chat.completions.create(model="claude", messages=USER).choices
    finally:
        router.process.stop()
    check = subprocess.run(
        [sys.executable, "-m", "router", "check", "--catalog", str(TEST_CATALOG)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean_env(), **{k: v for k, v in env.items() if v}},
    )
    line = next(x for x in check.stdout.splitlines() if "provider vertex " in x)
    assert "not configured: install router[gcp] (pip install 'router[gcp]')" in line
