"""Azure OpenAI through the router, with the official OpenAI SDK as the client: Responses and Embeddings on
both URL forms, the content filter (a refused prompt, a cut answer), the stream's annotation chunks, and
the credential each provider sends. The conformance suite (test_conformance.py) covers chat."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.integration.conftest import AZURE_KEY, AZURE_TOKEN, TEST_CATALOG, Mock, Router, start_router
from tests.openapi import validate

SUBJECTS = ["azure-mini", "azure-legacy-mini"]
EMBEDDERS = ["azure-embed", "azure-legacy-embed"]
REFUSED = "content_filter=prompt"
CUT = "content_filter=completion say words=30"


@pytest.fixture()
def client(router: Router, mock: Mock) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key="client-key", max_retries=0, timeout=20)


@pytest.fixture(params=SUBJECTS)
def subject(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=[False, True], ids=["json", "stream"])
def stream(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def sse(router: Router, body: dict[str, Any]) -> list[str]:
    with router.http.stream("POST", "/v1/chat/completions", json=body) as answer:
        assert answer.status_code == 200
        text = answer.read().decode()
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def upstream(mock: Mock) -> list[dict[str, Any]]:
    return mock.requests("azure")


# --- the Responses API and Embeddings, on both URL forms -------------------------------------------


def test_responses_pass_through_on_both_url_forms(client: OpenAI, subject: str, mock: Mock) -> None:
    response = client.responses.create(model=subject, input="hello responses")
    assert "hello responses" in response.output_text and response.status == "completed"
    sent = upstream(mock)[-1]
    legacy = subject == "azure-legacy-mini"
    assert sent["path"] == ("/azure/openai/responses" if legacy else "/azure/openai/v1/responses")
    assert ("api-version=2025-04-01-preview" in sent["query"]) == legacy
    assert sent["body"]["model"] == "gpt-5-mini"  # the deployment


def test_responses_stream_on_both_url_forms(client: OpenAI, subject: str) -> None:
    events = list(client.responses.create(model=subject, input="hello stream", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    text = "".join(getattr(e, "delta", "") for e in events if e.type == "response.output_text.delta")
    assert "hello stream" in text


@pytest.mark.parametrize("model", EMBEDDERS)
def test_embeddings_on_both_url_forms(client: OpenAI, mock: Mock, model: str) -> None:
    raw = client.embeddings.with_raw_response.create(
        model=model, input=["one", "two"], dimensions=256, encoding_format="float"
    )
    vectors = raw.parse()
    assert [len(v.embedding) for v in vectors.data] == [256, 256]
    validate(json.loads(raw.http_response.text), "CreateEmbeddingResponse")
    sent = upstream(mock)[-1]
    if model == "azure-legacy-embed":
        assert sent["path"] == "/azure/openai/deployments/text-embedding-3-small/embeddings"
        assert "api-version=2025-04-01-preview" in sent["query"]
    else:
        assert sent["path"] == "/azure/openai/v1/embeddings" and sent["query"] == ""


# --- the content filter ----------------------------------------------------------------------------


def test_a_refused_prompt_is_a_400_content_filter_with_azures_verdicts(
    client: OpenAI, subject: str, stream: bool, mock: Mock
) -> None:
    """Not an outage: the model named after it in ``models`` is not tried."""
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=subject, messages=user(REFUSED), stream=stream, extra_body={"models": ["gpt-5-mini"]}
        )
    error = info.value
    assert error.status_code == 400 and error.code == "content_filter" and error.param == "prompt"
    assert error.type == "invalid_request_error"
    assert isinstance(error.body, dict)
    verdicts = error.body["innererror"]["content_filter_result"]
    assert verdicts["violence"] == {"filtered": True, "severity": "medium"}
    assert error.response.headers["x-should-retry"] == "false"
    validate(error.response.json(), "ErrorResponse")
    assert mock.requests("openai") == [] and len(upstream(mock)) == 1


def test_a_refused_prompt_on_the_responses_api_is_the_same_400(
    client: OpenAI, subject: str, stream: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model=subject, input=REFUSED, stream=stream)
    assert info.value.code == "content_filter" and info.value.param == "prompt"
    assert isinstance(info.value.body, dict) and "content_filter_result" in info.value.body["innererror"]


def test_an_answer_cut_by_the_filter_finishes_with_content_filter(
    client: OpenAI, router: Router, subject: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(model=subject, messages=user(CUT))
    body = json.loads(raw.http_response.text)
    validate(body, "CreateChatCompletionResponse")
    assert body["choices"][0]["finish_reason"] == "content_filter"
    assert "prompt_filter_results" not in body and "content_filter_results" not in body["choices"][0]
    events = sse(router, {"model": subject, "messages": user(CUT), "stream": True})
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    for chunk in chunks:
        validate(chunk, "CreateChatCompletionStreamResponse")
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "content_filter"
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"]  # the empty id replaced


@pytest.mark.parametrize("include_usage", [False, True])
def test_the_streams_annotation_chunks_never_reach_the_client(
    router: Router, subject: str, include_usage: bool
) -> None:
    """Azure opens a stream with a chunk of no choices (the prompt's verdicts, an empty id and model):
    it is not output, not the usage chunk, and not something a client should see."""
    body: dict[str, Any] = {"model": subject, "messages": user("say words=4"), "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    events = sse(router, body)
    chunks = [json.loads(e) for e in events[:-1]]
    for chunk in chunks:
        validate(chunk, "CreateChatCompletionStreamResponse")
        assert chunk["id"] and chunk["model"] and "prompt_filter_results" not in chunk
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    empty = [c for c in chunks if not c["choices"]]
    assert empty == ([chunks[-1]] if include_usage else [])
    if include_usage:
        assert chunks[-1]["usage"]["completion_tokens"] == 4


# --- credentials and URLs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "path", "version", "header", "value"),
    [
        ("azure-mini", "/azure/openai/v1/chat/completions", None, "api-key", AZURE_KEY),
        (
            "azure-legacy-mini",
            "/azure/openai/deployments/gpt-5-mini/chat/completions",
            "2025-04-01-preview",
            "api-key",
            AZURE_KEY,
        ),
        (
            "azure-entra-4o",
            "/azure/openai/deployments/gpt-4o-mini/chat/completions",
            "2024-10-21",
            "authorization",
            f"Bearer {AZURE_TOKEN}",
        ),
    ],
)
def test_each_provider_sends_its_credential_in_its_header(
    client: OpenAI, mock: Mock, model: str, path: str, version: str | None, header: str, value: str
) -> None:
    mock.require_key("azure", AZURE_TOKEN if header == "authorization" else AZURE_KEY)
    answer = client.chat.completions.create(model=model, messages=user("hi"))
    assert answer.choices[0].message.content
    sent = upstream(mock)[-1]
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert sent["path"] == path and headers[header] == value
    assert ("api-key" in headers) != ("authorization" in headers)  # one credential, never both
    assert sent["query"] == (f"api-version={version}" if version else "")


def test_a_refused_azure_key_is_the_routers_fault(client: OpenAI, mock: Mock) -> None:
    mock.require_key("azure", "another-key-entirely")
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="azure-mini", messages=user("hi"))
    assert info.value.status_code == 502 and "TEST_AZURE_KEY" in info.value.message
    assert AZURE_KEY not in info.value.message


# --- the breaker -----------------------------------------------------------------------------------

POLICY = "  breaker: {consecutive_failures: 2, min_volume: 100, cooldown_s: 30}"


@pytest.fixture(scope="module")
def tight(mock_process: Mock, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    text = TEST_CATALOG.read_text()
    catalog = tmp_path_factory.mktemp("azure") / "catalog.yaml"
    catalog.write_text(text.replace(text[text.index("  breaker:") :].splitlines()[0], POLICY))
    router = start_router(mock_process, artifacts, catalog, "router-azure-breaker")
    try:
        yield router
    finally:
        router.process.stop()


def test_refused_prompts_leave_the_breaker_alone(tight: Router, mock: Mock) -> None:
    sdk = OpenAI(base_url=tight.url + "/v1", api_key="k", max_retries=0, timeout=20)
    for stream in (False, True, False):
        with pytest.raises(openai.BadRequestError):
            sdk.chat.completions.create(model="azure-mini", messages=user(REFUSED), stream=stream)
    breaker = _breaker(tight, "azure-mini")
    assert breaker["state"] == "closed" and breaker["consecutive_failures"] == 0
    mock.fault("gpt-5-mini", {"kind": "status", "status": 500}, times=2, provider="azure")
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            sdk.chat.completions.create(model="azure-mini", messages=user("hi"))
    assert _breaker(tight, "azure-mini")["state"] == "open"  # a real outage does count


def _breaker(router: Router, model: str) -> dict[str, Any]:
    models = router.http.get("/model-health").json()["models"]
    found: dict[str, Any] = next(m for m in models if m["id"] == model)["breaker"]
    return found
