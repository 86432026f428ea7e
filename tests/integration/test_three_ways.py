"""One Claude model through Anthropic, AWS Bedrock and Google Vertex AI: whichever of the three is
throttled or down, clients see only answers, JSON and streams alike (a stream fails over before its
first token), served by one of the others."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from tests.integration.conftest import TEST_CATALOG, Mock, Router, start_router

USER: list[Any] = [{"role": "user", "content": "Say hello"}]
MODEL = """
  tri:
    context_window: 200000
    max_output: 8000
    price: {input: 1.0, output: 5.0}
    quality: 70
    speed: {ttft_ms: 500, tokens_per_s: 100}
    capabilities: [streaming, tools]
    deployments:
      - {provider: anthropic, upstream: claude-haiku-4-5-20251001, weight: WEIGHT_anthropic}
      - {provider: bedrock, upstream: us.anthropic.claude-haiku-4-5-20251001-v1:0, weight: WEIGHT_bedrock}
      - {provider: vertex, upstream: claude-haiku-4-5@20251001, weight: WEIGHT_vertex}
"""
# The simulated provider and the model name each deployment is faulted by.
WAYS = {
    "anthropic/tri": ("anthropic", "claude-haiku-4-5-20251001"),
    "bedrock/tri": ("bedrock", "us.anthropic.claude-haiku-4-5-20251001-v1:0"),
    "vertex/tri": ("vertex", "claude-haiku-4-5@20251001"),
}
FAULTS = {
    "throttled": {"kind": "status", "status": 429, "retry_after": 20},
    "down": {"kind": "status", "status": 503},
}


Start = Callable[[str], Router]


Start = Callable[[str], Router]


@pytest.fixture()
def start(mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Start]:
    """A router of its own for each case (breakers and quotas start fresh) whose ``favoured``
    deployment is drawn first almost always, so that its trouble is met, not just avoided."""
    started: list[Router] = []

    def run(favoured: str) -> Router:
        model = MODEL
        for name in WAYS:
            provider = name.split("/")[0]
            model = model.replace(f"WEIGHT_{provider}", "1000" if name == favoured else "1")
        catalog = tmp_path_factory.mktemp("three-ways") / "catalog.yaml"
        catalog.write_text(TEST_CATALOG.read_text().replace("models:\n", "models:" + model, 1))
        started.append(start_router(mock_process, artifacts, catalog, "router-three-ways"))
        return started[-1]

    try:
        yield run
    finally:
        for router in started:
            router.process.stop()


def ask(router: Router, stream: bool) -> str:
    """One answer through the SDK; the deployment that served it."""
    client = OpenAI(base_url=router.url + "/v1", api_key="k", max_retries=0, timeout=20)
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model="tri", messages=USER, stream=True
        ) as response:
            chunks = list(response.parse())
            deployment = response.headers["x-router-deployment"]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text and chunks[-1].choices[0].finish_reason == "stop"
        return deployment
    raw = client.chat.completions.with_raw_response.create(model="tri", messages=USER)
    assert raw.parse().choices[0].message.content
    return raw.headers["x-router-deployment"]


@pytest.mark.parametrize("trouble", sorted(FAULTS))
@pytest.mark.parametrize("failing", sorted(WAYS))
def test_one_way_in_throttled_or_down_is_invisible(
    start: Start, mock: Mock, failing: str, trouble: str
) -> None:
    tri = start(failing)
    provider, upstream = WAYS[failing]
    mock.fault(upstream, FAULTS[trouble], times=-1, provider=provider)
    served = {ask(tri, stream) for stream in (False, True) * 4}
    assert served and failing not in served and served <= set(WAYS)
    # The troubled deployment was called (and met its fault) before another served.
    assert any(r.get("fault") for r in mock.requests(provider))


def test_two_ways_down_leave_the_third_serving(start: Start, mock: Mock) -> None:
    tri = start("anthropic/tri")
    for name in ("anthropic/tri", "vertex/tri"):
        provider, upstream = WAYS[name]
        mock.fault(upstream, FAULTS["down"], times=-1, provider=provider)
    assert {ask(tri, stream) for stream in (False, True) * 3} == {"bedrock/tri"}
