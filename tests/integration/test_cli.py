"""The commands a newcomer runs: serve without keys, demo with no keys at all, check, help."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from router.cli import free_port
from tests.integration.conftest import ROOT, Process

HOSTED_KEYS = (
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "DEEPSEEK_API_KEY",
    "XAI_API_KEY",
    "TOGETHER_API_KEY",
    "FIREWORKS_API_KEY",
    "CEREBRAS_API_KEY",
    "OPENROUTER_API_KEY",
)
KEY_VARS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "GOOGLE_CLOUD_PROJECT",  # the catalog's vertex provider gives its region, not its project
    *HOSTED_KEYS,
)
# Google's other variables, which would change what a vertex provider finds.
GOOGLE_VARS = ("GOOGLE_CLOUD_LOCATION", "GOOGLE_APPLICATION_CREDENTIALS")


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in KEY_VARS and k not in GOOGLE_VARS and not k.startswith(("ROUTER_", "AWS_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    # No AWS credentials from this machine's files either: the Bedrock provider is not configured.
    env["AWS_SHARED_CREDENTIALS_FILE"] = env["AWS_CONFIG_FILE"] = "/nonexistent/aws"
    return env


@pytest.fixture(scope="module")
def keyless_router(artifacts: Path) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "router", "serve", "--port", str(port)]
    process = Process(args, _clean_env(), artifacts / "keyless-router.log")
    try:
        if not process.wait_for_port(port):
            pytest.fail(f"the router did not start without keys:\n{process.output()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def test_router_starts_without_keys_and_lists_models(keyless_router: str) -> None:
    client = OpenAI(base_url=keyless_router + "/v1", api_key="none", max_retries=0)
    ids = {m.id for m in client.models.list()}
    assert {"gpt-5", "sonnet-4-5", "gemini-2.5-flash", "gpt", "balanced"} <= ids


@pytest.mark.parametrize(
    ("model", "variable"),
    [
        ("gpt-5-mini", "OPENAI_API_KEY"),
        ("sonnet", "ANTHROPIC_API_KEY"),
        ("groq-gpt-oss-120b", "GROQ_API_KEY"),
        ("mistral-large", "MISTRAL_API_KEY"),
        ("deepseek-flash", "DEEPSEEK_API_KEY"),
        ("grok-4.5", "XAI_API_KEY"),
        ("together-llama-3.3-70b", "TOGETHER_API_KEY"),
        ("fireworks-gpt-oss-120b", "FIREWORKS_API_KEY"),
        ("cerebras-gpt-oss-120b", "CEREBRAS_API_KEY"),
        ("openrouter-claude-sonnet-4.5", "OPENROUTER_API_KEY"),
        ("azure/gpt-5-mini", "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY"),
    ],
)
def test_chat_to_a_keyless_provider_is_503_naming_the_variable(
    keyless_router: str, model: str, variable: str
) -> None:
    client = OpenAI(base_url=keyless_router + "/v1", api_key="none", max_retries=0)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 503
    assert variable in info.value.message
    assert info.value.code == "provider_not_configured"  # type: ignore[attr-defined]


def test_a_keyless_router_reports_every_unconfigured_provider(keyless_router: str) -> None:
    health = httpx.get(keyless_router + "/health", timeout=5).json()
    missing = health["components"]["providers"]["missing"]
    assert missing["azure"] == "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY"
    assert {missing[name] for name in ("groq", "openrouter")} == {"GROQ_API_KEY", "OPENROUTER_API_KEY"}
    models = {m["id"]: m for m in httpx.get(keyless_router + "/model-health", timeout=5).json()["models"]}
    assert models["cerebras-gpt-oss-120b"]["configured"] is False


@pytest.mark.parametrize("model", ["fast", "cost", "quality"])
def test_a_router_without_keys_says_what_it_tried_and_which_keys_to_set(
    keyless_router: str, model: str
) -> None:
    """Without keys the strategies reach only the keyless local Ollama entry, where nothing listens.
    The answer says so and names the keys to set, every time (before and after its breaker opens),
    and tells SDKs not to retry: nothing will listen there a few seconds later either."""
    for _ in range(8):
        started = time.monotonic()
        answer = httpx.post(
            keyless_router + "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert time.monotonic() - started < 2.0
        assert answer.status_code in (502, 503)
        message = answer.json()["error"]["message"]
        assert "ollama" in message, message
        assert all(variable in message for variable in KEY_VARS), message
        assert answer.headers["x-should-retry"] == "false"


def test_a_busy_port_is_one_line_naming_it_and_how_to_pick_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in ("serve", "demo"):
            result = subprocess.run(
                [sys.executable, "-m", "router", command, "--port", str(port)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                env=_clean_env(),
                timeout=30,
            )
            assert result.returncode == 3
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert len(lines) == 1, result.stderr
            assert f"port {port}" in lines[0] and "--port" in lines[0] and "Traceback" not in lines[0]
            if command == "demo":
                assert "PORT=" in lines[0] and "make demo" in lines[0]


def test_explain_into_a_closed_pipe_exits_quietly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "router", "explain", "--model", "fast"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=_clean_env(),
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # as `| head` does once it has read enough
    errors = process.stderr.read()
    assert process.wait(timeout=30) == 0
    assert errors == b""


@pytest.fixture(scope="module")
def demo(artifacts: Path) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "router", "demo", "--port", str(port)]
    process = Process(args, _clean_env(), artifacts / "demo.log")
    try:
        if not process.wait_for_port(port, timeout=30):
            pytest.fail(f"the demo did not start:\n{process.output()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def test_demo_banner_does_not_claim_providers_lack_keys(demo: str, artifacts: Path) -> None:
    banner = (artifacts / "demo.log").read_text()
    assert "demo providers simulated" in banner
    assert "without keys" not in banner


def test_demo_serves_chat_and_streams_through_the_sdk(demo: str) -> None:
    client = OpenAI(base_url=demo + "/v1", api_key="anything", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-mini", messages=[{"role": "user", "content": "hello demo"}]
    )
    assert raw.headers["x-router-model"] == "gpt-5-mini"
    assert "hello demo" in (raw.parse().choices[0].message.content or "")
    stream = client.chat.completions.create(
        model="gpt-5",
        messages=[{"role": "user", "content": "hi words=5"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).split() == [
        "lorem",
        "ipsum",
        "dolor",
        "sit",
        "amet",
    ]
    assert chunks[-1].usage is not None


def test_demo_strategy_keyword_picks_a_model(demo: str) -> None:
    answer = httpx.post(
        demo + "/v1/chat/completions",
        json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.headers["x-router-strategy"] == "fast"


def test_request_log_has_one_line_per_request_without_content(demo: str, artifacts: Path) -> None:
    marker = "do-not-log-this-prompt"
    httpx.post(
        demo + "/v1/chat/completions",
        json={"model": "gpt-mini", "messages": [{"role": "user", "content": marker}]},
        timeout=10,
    )
    httpx.post(
        demo + "/v1/chat/completions",
        json={"model": "nope", "messages": [{"role": "user", "content": marker}]},
        timeout=10,
    )
    deadline = time.monotonic() + 5
    lines: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        text = (artifacts / "demo.log").read_text()
        lines = [json.loads(x) for x in text.splitlines() if x.startswith('{"ts"') and '"msg":"request"' in x]
        if sum(1 for x in lines if x.get("model_asked") == "nope"):
            break
        time.sleep(0.1)
    ok = [x for x in lines if x.get("model_asked") == "gpt-mini"]
    failed = [x for x in lines if x.get("model_asked") == "nope"]
    assert ok and ok[-1]["status"] == 200 and ok[-1]["model"] == "gpt-5-mini" and ok[-1]["tokens_in"]
    assert failed and failed[-1]["status"] == 404
    assert marker not in text


def test_check_reports_a_bad_catalog_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "catalog.yaml").read_text().replace("provider: openai", "provider: opanai", 1))
    result = subprocess.run(
        [sys.executable, "-m", "router", "check", "--catalog", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert f"{bad}:" in result.stderr and "unknown provider 'opanai'" in result.stderr


def test_serve_refuses_a_bad_catalog_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: {}\nmodels: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "router", "serve", "--catalog", str(bad), "--port", str(free_port())],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert result.returncode == 2
    assert "'providers' must be a non-empty mapping" in result.stderr


def test_check_summarises_the_shipped_catalog() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "router", "check"], capture_output=True, text=True, cwd=ROOT, env=_clean_env()
    )
    assert result.returncode == 0
    assert "catalog.yaml: OK" in result.stdout
    assert "not configured: set OPENAI_API_KEY" in result.stdout
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("  provider ")}
    lacks = "not configured: set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY"
    assert "(endpoint from AZURE_OPENAI_ENDPOINT)" in lines["azure"]
    assert lines["azure"].endswith(f"api v1, credential as api-key; {lacks}")
    assert " 1 models, " in lines["azure"]  # gpt-5-mini's Azure deployment
    several = next(line for line in result.stdout.splitlines() if line.startswith("  deployments: "))
    assert "gpt-5-mini (openai, azure)" in several
    for name, variable in zip(
        ("groq", "mistral", "deepseek", "xai", "together", "fireworks", "cerebras", "openrouter"),
        HOSTED_KEYS,
        strict=True,
    ):
        assert lines[name].endswith(f"not configured: set {variable}"), lines[name]


def test_check_says_what_an_azure_provider_still_lacks() -> None:
    env = {**_clean_env(), "AZURE_OPENAI_API_KEY": "azure-key-not-real"}
    result = subprocess.run(
        [sys.executable, "-m", "router", "check"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    azure = next(line for line in result.stdout.splitlines() if line.startswith("  provider azure"))
    assert azure.endswith("not configured: set AZURE_OPENAI_ENDPOINT")
    env["AZURE_OPENAI_ENDPOINT"] = "https://res.openai.azure.com"
    result = subprocess.run(
        [sys.executable, "-m", "router", "check"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    azure = next(line for line in result.stdout.splitlines() if line.startswith("  provider azure"))
    assert "https://res.openai.azure.com" in azure and azure.endswith("key set (AZURE_OPENAI_API_KEY)")


def test_check_refuses_a_bad_azure_provider_naming_the_line(tmp_path: Path) -> None:
    shipped = (ROOT / "catalog.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(shipped.replace("    # api: v1 is the default.", "    api: deployments\n    # api: v1", 1))
    result = subprocess.run(
        [sys.executable, "-m", "router", "check", "--catalog", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_clean_env(),
    )
    assert result.returncode == 2
    assert (
        f"{bad}:" in result.stderr and "providers.azure.api_version: api: deployments needs" in result.stderr
    )


def test_check_lists_auto_cache_and_refuses_it_off_anthropic(tmp_path: Path) -> None:
    shipped = (ROOT / "catalog.yaml").read_text()
    on = tmp_path / "on.yaml"
    on.write_text(shipped.replace("# auto_cache: true", "auto_cache: true", 1))
    result = subprocess.run(
        [sys.executable, "-m", "router", "check", "--catalog", str(on)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_clean_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "auto_cache: sonnet-4-5 (5m, from 1024 tokens), haiku-4-5 (5m, from 1024 tokens)" in result.stdout
    off = tmp_path / "off.yaml"
    off.write_text(shipped.replace("    kind: openai\n", "    kind: openai\n    auto_cache: true\n", 1))
    result = subprocess.run(
        [sys.executable, "-m", "router", "check", "--catalog", str(off)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert (
        f"{off}:" in result.stderr
        and "providers.openai.auto_cache: auto_cache marks Anthropic" in result.stderr
    )


def test_help_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "router", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0
    for command in ("serve", "check", "mock", "demo"):
        assert command in result.stdout


def test_demo_serves_every_chat_model_of_the_catalog(demo: str) -> None:
    """Every chat model in catalog.yaml answers through its adapter, streaming and not (a
    Responses-only model through the Responses API); every other model on its own API."""
    from router.catalog import load_catalog

    catalog = load_catalog(ROOT / "catalog.yaml", {})
    client = OpenAI(base_url=demo + "/v1", api_key="anything", max_retries=0)
    chat_models = [m for m in catalog.models.values() if m.endpoints & {"chat", "responses"}]
    for model in catalog.models.values():
        if "embeddings" in model.endpoints:
            vectors = client.embeddings.create(model=model.id, input="ping")
            assert len(vectors.data[0].embedding) > 0, model.id
        elif "completions" in model.endpoints and model not in chat_models:
            completion = client.completions.create(model=model.id, prompt="ping", max_tokens=20)
            assert completion.choices[0].text, model.id
    kinds = {catalog.provider_of(view).kind for m in chat_models for view in m.views()}
    assert kinds == {"openai", "anthropic", "gemini", "azure", "bedrock", "vertex"}
    # Each deployment of a model with several, pinned, answers too (Vertex AI's through the simulated
    # one, with the demo's static token: no google-auth needed).
    pinned = [view.key for m in chat_models for view in m.deployments]
    assert {"azure/gpt-5-mini", "bedrock/sonnet-4-5", "vertex/sonnet-4-5", "vertex/gemini-2.5-flash"} <= set(
        pinned
    )
    for name in pinned:
        raw = client.chat.completions.with_raw_response.create(
            model=name, messages=[{"role": "user", "content": "ping"}]
        )
        assert raw.headers["x-router-deployment"] == name, name
        assert "ping" in (raw.parse().choices[0].message.content or ""), name
    for model in chat_models:
        raw = client.chat.completions.with_raw_response.create(
            model=model.id, messages=[{"role": "user", "content": "ping"}]
        )
        assert raw.headers["x-router-model"] == model.id, model.id
        assert "ping" in (raw.parse().choices[0].message.content or ""), model.id
        chunks = list(
            client.chat.completions.create(
                model=model.id, messages=[{"role": "user", "content": "ping"}], stream=True
            )
        )
        assert "ping" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), model.id


def test_explain_prints_ranked_candidates_and_exclusions() -> None:
    env = {**_clean_env(), "OPENAI_API_KEY": "x"}
    result = subprocess.run(
        [sys.executable, "-m", "router", "explain", "--model", "quality", "--tools", "--prompt", "hi"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["strategy"] == "quality" and plan["candidates"][0]["model"] == "gpt-5.2"
    reasons = {e["model"]: e["reason"] for e in plan["excluded"]}
    # None of its deployments is configured: each is named with what it lacks.
    anthropic, bedrock, vertex = reasons["sonnet-4-5"].split("; ")
    assert anthropic == "provider 'anthropic' has no key: set ANTHROPIC_API_KEY"
    assert bedrock.startswith("provider 'bedrock' is not configured: set AWS credentials")
    assert vertex == "provider 'vertex' is not configured: set GOOGLE_CLOUD_PROJECT"
    assert "embeddings" in reasons["text-embedding-3-small"]


def test_router_api_key_protects_the_demo(artifacts: Path) -> None:
    port = free_port()
    args = [sys.executable, "-m", "router", "demo", "--port", str(port)]
    env = {**_clean_env(), "ROUTER_API_KEY": "k-demo-secret"}
    process = Process(args, env, artifacts / "demo-keyed.log")
    try:
        if not process.wait_for_port(port, timeout=30):
            pytest.fail(f"the demo did not start:\n{process.output()}")
        url = f"http://127.0.0.1:{port}/v1"
        with pytest.raises(openai.AuthenticationError):
            OpenAI(base_url=url, api_key="wrong", max_retries=0).models.list()
        client = OpenAI(base_url=url, api_key="k-demo-secret", max_retries=0)
        answer = client.chat.completions.create(
            model="gpt-mini", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content
    finally:
        process.stop()
    assert "k-demo-secret" not in (artifacts / "demo-keyed.log").read_text()
