"""AWS Bedrock through a real router: failover between Anthropic and Bedrock deployments of one model,
credentials the runtime refuses, a Bedrock API key, ``router check``, and a build without router[aws]."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from router.app import create_app
from router.catalog import parse_catalog
from router.mock.bedrock_wire import ACCESS_KEY, SECRET_KEY
from router.settings import Settings
from tests.inprocess import serving
from tests.integration.conftest import ROOT, TEST_CATALOG, Mock, Router, start_router

BEDROCK_SONNET = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
MODEL = f"""
  sonnet-dual:
    context_window: 200000
    max_output: 64000
    price: {{input: 3.0, output: 15.0}}
    quality: 90
    speed: {{ttft_ms: 600, tokens_per_s: 100}}
    deployments:
      - {{provider: anthropic, upstream: claude-sonnet-4-5-20250929}}
      - {{provider: bedrock, upstream: "{BEDROCK_SONNET}"}}
"""
USER: list[Any] = [{"role": "user", "content": "say words=4"}]


@pytest.fixture(scope="module")
def dual(mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    catalog = tmp_path_factory.mktemp("bedrock") / "catalog.yaml"
    catalog.write_text(TEST_CATALOG.read_text().replace("models:\n", "models:" + MODEL, 1))
    router = start_router(mock_process, artifacts, catalog, "router-bedrock")
    try:
        yield router
    finally:
        router.process.stop()


def client(router: Router) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key="k", max_retries=0, timeout=20)


def ask(router: Router, stream: bool) -> tuple[str, str]:
    """(the text, the deployment that served it) of one call, streamed or not."""
    if stream:
        raw = client(router).chat.completions.with_raw_response.create(
            model="sonnet-dual", messages=USER, stream=True
        )
        chunks = list(raw.parse())
        assert chunks[-1].choices[0].finish_reason == "stop"
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return text, raw.headers["x-router-deployment"]
    raw = client(router).chat.completions.with_raw_response.create(model="sonnet-dual", messages=USER)
    return raw.parse().choices[0].message.content or "", raw.headers["x-router-deployment"]


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 429},  # ThrottlingException
        {"kind": "status", "status": 429, "type": "ModelNotReadyException"},
        {"kind": "status", "status": 503},  # ServiceUnavailableException
        {"kind": "stream_error", "after_chunks": 1, "type": "throttlingException"},  # before the first token
    ],
    ids=["throttled", "model-not-ready", "unavailable", "throttled-mid-stream"],
)
def test_a_throttled_or_down_bedrock_deployment_is_invisible_to_clients(
    dual: Router, mock: Mock, fault: dict[str, Any]
) -> None:
    mock.fault(BEDROCK_SONNET, fault, provider="bedrock", times=-1)
    for stream in (False, True) * 4:
        text, deployment = ask(dual, stream)
        assert text == "lorem ipsum dolor sit" and deployment == "anthropic/sonnet-dual"
    assert all(r["fault"] is not None for r in mock.requests("bedrock"))  # each Bedrock call met the fault


def test_a_down_anthropic_deployment_is_served_by_bedrock(dual: Router, mock: Mock) -> None:
    mock.fault(
        "claude-sonnet-4-5-20250929", {"kind": "status", "status": 529}, provider="anthropic", times=-1
    )
    for stream in (False, True) * 4:
        text, deployment = ask(dual, stream)
        assert text == "lorem ipsum dolor sit" and deployment == "bedrock/sonnet-dual"
    signed = mock.requests("bedrock")[-1]
    assert signed["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    # Logged decoded; sent as v1%3A0, which the runtime's signature check (over the raw path) accepted.
    assert signed["path"] == f"/bedrock/model/{BEDROCK_SONNET}/converse-stream"


def test_credentials_the_runtime_refuses_are_the_routers_fault(router: Router, mock: Mock) -> None:
    mock.require_key("bedrock", "AKIAOTHERKEY00000000:other-secret")
    with pytest.raises(openai.InternalServerError) as caught:
        client(router).chat.completions.create(model="bedrock-nova", messages=USER)
    error = caught.value
    assert error.status_code == 502 and error.code == "upstream_auth_failed"  # type: ignore[attr-defined]
    assert "UnrecognizedClientException" in error.message and SECRET_KEY not in error.message


def test_a_bedrock_api_key_is_sent_as_a_bearer(mock_process: Mock, artifacts: Path) -> None:
    mock_process.reset()
    mock_process.require_key("bedrock", "ABSK-test-bedrock-key")
    env = {"AWS_BEARER_TOKEN_BEDROCK": "ABSK-test-bedrock-key"}
    router = start_router(mock_process, artifacts, TEST_CATALOG, "router-bedrock-bearer", env=env)
    try:
        answer = client(router).chat.completions.create(model="bedrock-claude", messages=USER)
        assert answer.choices[0].message.content == "lorem ipsum dolor sit"
        sent = mock_process.requests("bedrock")[-1]["headers"]
        assert sent["authorization"] == "Bearer ABSK-test-bedrock-key" and "x-amz-date" not in sent
    finally:
        router.process.stop()
        mock_process.reset()


def run_check(env: dict[str, str], *prelude: str) -> str:
    code = "; ".join([*prelude, "from router.__main__ import main", "sys.exit(main(['check']))"])
    result = subprocess.run(
        [sys.executable, "-c", "import sys; " + code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith("  provider bedrock"))


def aws_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROUTER_"))}
    return {**env, "HOME": "/nonexistent", **extra}


def test_check_says_which_credentials_it_found_and_never_their_values() -> None:
    found = run_check(
        aws_env(AWS_REGION="eu-central-1", AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    )
    assert found.endswith("region eu-central-1, AWS credentials from environment (AWS_ACCESS_KEY_ID); ready")
    assert "https://bedrock-runtime.eu-central-1.amazonaws.com" in found
    assert ACCESS_KEY not in found and SECRET_KEY not in found
    profile = run_check(aws_env(AWS_REGION="us-east-1", AWS_PROFILE="ops"))
    assert "AWS profile 'ops' (AWS_PROFILE), the AWS chain failed: ProfileNotFound" in profile
    bearer = run_check(aws_env(AWS_REGION="us-east-1", AWS_BEARER_TOKEN_BEDROCK="ABSK-secret-value"))
    assert bearer.endswith("Bedrock API key (AWS_BEARER_TOKEN_BEDROCK); ready") and "ABSK" not in bearer
    lacking = run_check(aws_env())
    assert lacking.endswith(
        "no region, no AWS credentials found; not configured: set AWS credentials (AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or AWS_BEARER_TOKEN_BEDROCK) and set AWS_REGION"
    )


def test_check_without_router_aws_says_to_install_it() -> None:
    line = run_check(aws_env(AWS_REGION="us-east-1", AWS_PROFILE="ops"), "sys.modules['botocore'] = None")
    assert line.endswith("; not configured: install router[aws]")


async def test_a_router_without_router_aws_answers_503_and_health_says_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "botocore", None)
    catalog = parse_catalog(
        """
providers:
  bedrock: {kind: bedrock, region: us-east-1}
models:
  nova: {provider: bedrock, upstream: amazon.nova-pro-v1:0, context_window: 300000, max_output: 10000,
         quality: 70, price: {input: 0.8, output: 3.2}, speed: {ttft_ms: 500, tokens_per_s: 100}}
""",
        {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY},
    )
    async with serving(create_app(Settings(), catalog=catalog)) as http:
        answer = await http.post("/v1/chat/completions", json={"model": "nova", "messages": USER})
        health = (await http.get("/health")).json()
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "provider_not_configured" and "install router[aws]" in error["message"]
    assert health["components"]["providers"]["missing"] == {"bedrock": "install router[aws]"}
