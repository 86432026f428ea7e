"""Embeddings through the router with the official OpenAI SDK: OpenAI and Gemini upstreams, both
encodings, dimensions, refusals and fallbacks."""

from __future__ import annotations

import base64
import json
import struct
import time
from typing import Any

import openai
import pytest
from openai import OpenAI

from router.mock.gemini_fake import embedding as gemini_vector
from router.mock.openai_legacy import embed as openai_vector
from tests.integration.conftest import Mock, Router
from tests.openapi import validate


@pytest.fixture()
def client(router: Router, mock: Mock) -> OpenAI:
    return OpenAI(base_url=router.url + "/v1", api_key="client-key", max_retries=0, timeout=20)


def float32(values: list[float]) -> list[float]:
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def log_line(router: Router, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for line in router.logs().splitlines():
            if request_id in line and '"route":"embeddings"' in line:
                found: dict[str, Any] = json.loads(line)
                return found
        time.sleep(0.05)
    raise AssertionError(f"no request-log line for {request_id}")


# --- OpenAI upstream -----------------------------------------------------------------------------


def test_openai_float_answer_has_openai_shape_router_headers_and_cost(client: OpenAI, router: Router) -> None:
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="hello world", encoding_format="float"
    )
    body = json.loads(raw.http_response.text)
    validate(body, "CreateEmbeddingResponse")
    assert body["model"] == "text-embedding-3-small"
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", 0)]
    assert body["data"][0]["embedding"] == openai_vector("text-embedding-3-small", "hello world")
    assert raw.headers["x-router-model"] == "text-embedding-3-small"
    assert raw.headers["x-router-provider"] == "openai"
    assert raw.headers["x-router-attempts"] == "1"
    tokens = body["usage"]["prompt_tokens"]
    assert tokens > 0 and body["usage"]["total_tokens"] == tokens
    assert float(raw.headers["x-router-cost-usd"]) == pytest.approx(tokens * 0.02 / 1e6, abs=1e-8)
    line = log_line(router, raw.headers["x-request-id"])
    assert line["status"] == 200 and line["model"] == "text-embedding-3-small"
    assert line["tokens_in"] == tokens and line["inputs"] == 1
    assert line["attempts"] == ["text-embedding-3-small:ok"]
    assert "hello world" not in json.dumps(line)


def test_sdk_default_base64_list_input_decodes_to_the_float_vectors(client: OpenAI, mock: Mock) -> None:
    texts = ["first text", "second text", "third"]
    answer = client.embeddings.create(model="text-embedding-3-small", input=texts)
    assert [d.index for d in answer.data] == [0, 1, 2]
    assert [d.embedding for d in answer.data] == [openai_vector("text-embedding-3-small", t) for t in texts]
    sent = mock.requests()[-1]
    assert sent["path"] == "/openai/v1/embeddings"
    assert sent["body"]["encoding_format"] == "base64"  # the SDK's default, passed through


def test_dimensions_shorten_openai_vectors(client: OpenAI) -> None:
    answer = client.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], dimensions=64, encoding_format="float"
    )
    assert [len(d.embedding) for d in answer.data] == [64, 64]
    assert answer.data[1].embedding == openai_vector("text-embedding-3-small", "b", 64)


def test_token_array_input_reaches_openai(client: OpenAI) -> None:
    answer = client.embeddings.create(model="text-embedding-3-large", input=[[1, 2, 3], [4]])
    assert len(answer.data) == 2 and len(answer.data[0].embedding) == 3072


# --- Gemini upstream -----------------------------------------------------------------------------


def test_gemini_float_answer_translated_from_batch_embed_contents(client: OpenAI, mock: Mock) -> None:
    raw = client.embeddings.with_raw_response.create(
        model="gemini-embedding-001", input=["one", "two"], dimensions=16, encoding_format="float"
    )
    body = json.loads(raw.http_response.text)
    validate(body, "CreateEmbeddingResponse")
    assert body["model"] == "gemini-embedding-001"
    # Shortened vectors are re-normalised by the router (the fake's are already unit, to 6 digits).
    expected = [gemini_vector("one", 16), gemini_vector("two", 16)]
    for got, want in zip([d["embedding"] for d in body["data"]], expected, strict=True):
        assert got == pytest.approx(want, abs=1e-5)
    assert body["usage"] == {"prompt_tokens": 2, "total_tokens": 2}  # estimated: Gemini reports none
    assert raw.headers["x-router-provider"] == "google"
    sent = mock.requests("gemini")[-1]
    assert sent["path"] == "/gemini/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert [r["outputDimensionality"] for r in sent["body"]["requests"]] == [16, 16]


def test_gemini_single_string_with_sdk_default_base64(client: OpenAI) -> None:
    answer = client.embeddings.create(model="gemini-embedding-001", input="just one")
    assert len(answer.data) == 1
    assert answer.data[0].embedding == float32(gemini_vector("just one", 8))


def test_base64_on_the_wire_is_little_endian_float32_without_v1_prefix(router: Router, mock: Mock) -> None:
    body = {"model": "gemini-embedding-001", "input": "raw", "encoding_format": "base64"}
    answer = router.http.post("/embeddings", json=body)
    assert answer.status_code == 200
    encoded = answer.json()["data"][0]["embedding"]
    assert isinstance(encoded, str)
    raw = base64.b64decode(encoded)
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == float32(gemini_vector("raw", 8))


def test_token_arrays_are_refused_for_gemini(client: OpenAI, mock: Mock) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="gemini-embedding-001", input=[1, 2, 3])
    assert "token arrays" in info.value.message
    assert mock.requests("gemini") == []


# --- refusals ------------------------------------------------------------------------------------


def test_a_chat_model_is_refused_as_not_supported(client: OpenAI, mock: Mock) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="gpt-5-mini", input="x")
    assert info.value.code == "model_not_supported"
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "model"
    assert mock.requests() == []


def test_a_strategy_keyword_is_refused(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="cost", input="x")
    assert "strategy" in info.value.message


def test_an_anthropic_model_is_refused(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="claude", input="x")
    assert info.value.code == "model_not_supported"


def test_an_unknown_model_is_not_found(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.embeddings.create(model="text-embedding-9", input="x")
    assert info.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": ["x"] * 2049}, "input"),
        ({"input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
    ],
)
def test_invalid_input_is_a_400_naming_the_parameter(
    router: Router, mock: Mock, extra: dict[str, Any], param: str
) -> None:
    answer = router.http.post("/v1/embeddings", json={"model": "text-embedding-3-small", **extra})
    assert answer.status_code == 400
    validate(answer.json(), "ErrorResponse")
    assert answer.json()["error"]["param"] == param
    assert mock.requests() == []


def test_empty_input_raises_bad_request_in_the_sdk(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-3-small", input="")


# --- fallbacks -----------------------------------------------------------------------------------


def test_upstream_500_falls_back_along_the_models_list(client: OpenAI, mock: Mock) -> None:
    mock.fault("text-embedding-3-small", {"kind": "status", "status": 500})
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small",
        input="fallback",
        encoding_format="float",
        extra_body={"models": ["text-embedding-3-large"]},
    )
    assert raw.headers["x-router-model"] == "text-embedding-3-large"
    assert raw.headers["x-router-attempts"] == "2"
    assert raw.headers["x-router-fallback-reason"] == "server_error"
    assert raw.parse().data[0].embedding == openai_vector("text-embedding-3-large", "fallback")
    assert [r["body"]["model"] for r in mock.requests()] == [
        "text-embedding-3-small",
        "text-embedding-3-large",
    ]
    assert all("models" not in r["body"] for r in mock.requests())


def test_gemini_500_falls_back_to_the_next_provider(client: OpenAI, mock: Mock) -> None:
    mock.fault("gemini-embedding-001", {"kind": "status", "status": 500}, provider="gemini")
    raw = client.embeddings.with_raw_response.create(
        model="gemini-embedding-001", input="x", extra_body={"models": ["text-embedding-3-small"]}
    )
    assert raw.headers["x-router-model"] == "text-embedding-3-small"
    assert raw.headers["x-router-fallback-reason"] == "server_error"


def test_without_a_fallback_the_upstream_error_reaches_the_client(client: OpenAI, mock: Mock) -> None:
    mock.fault("text-embedding-3-small", {"kind": "status", "status": 500, "message": "embedder exploded"})
    with pytest.raises(openai.InternalServerError) as info:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert "embedder exploded" in info.value.message
