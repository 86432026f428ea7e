"""Embeddings: request checks, float32/base64 encodings, and the OpenAI and Gemini wire bodies."""

from __future__ import annotations

import base64
import json
import struct
from array import array
from typing import Any

import msgspec
import pytest

from router.api.embeddings import decode_embeddings, decode_float32, encode_float32, in_encoding
from router.catalog import parse_catalog
from router.errors import InvalidRequest, UpstreamBadResponse
from router.providers._embeddings import (
    gemini_answer,
    gemini_bodies,
    input_count,
    openai_body,
    parse_gemini,
    parse_openai,
)
from router.providers.base import EmbeddingCall
from router.types import Embedding, EmbeddingResponse

CATALOG = parse_catalog(
    """
providers:
  openai: {kind: openai, base_url: "https://api.openai.com/v1", api_key_env: OK}
  google: {kind: gemini, base_url: "https://generativelanguage.googleapis.com/v1beta", api_key_env: GK}
models:
  small: {provider: openai, upstream: text-embedding-3-small, context_window: 8191, max_output: 1,
          capabilities: [embeddings], quality: 50, price: {input: 0.02, output: 0},
          speed: {ttft_ms: 200, tokens_per_s: 5000}}
  gem: {provider: google, upstream: gemini-embedding-001, context_window: 2048, max_output: 1,
        capabilities: [embeddings], quality: 65, price: {input: 0.15, output: 0},
        speed: {ttft_ms: 250, tokens_per_s: 3000}}
""",
    {"OK": "sk-x", "GK": "AIza-x"},
)


def call(body: dict[str, Any], model: str = "small") -> EmbeddingCall:
    request = decode_embeddings(msgspec.json.encode({"model": model, **body}))
    target = CATALOG.models[model]
    return EmbeddingCall(request=request, model=target, provider=CATALOG.provider_of(target), request_id="r")


def refused(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        decode_embeddings(json.dumps({"model": "small", **body}).encode())
    assert info.value.status == 400
    return info.value


# --- float32 ⇄ base64 ----------------------------------------------------------------------------


def test_base64_is_little_endian_float32_bytes() -> None:
    assert encode_float32([1.0, -2.5, 0.5]) == base64.b64encode(struct.pack("<3f", 1.0, -2.5, 0.5)).decode()
    assert encode_float32([1.0]) == "AACAPw=="  # 0x3f800000, low byte first


def test_float32_values_round_trip_exactly_and_decode_as_the_sdk_does() -> None:
    values = [0.0, -0.0, 1.0, -1.5, 0.1, 3.4e38, 1e-45, -0.0123456789]
    as_float32 = list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))
    encoded = encode_float32(as_float32)
    assert decode_float32(encoded) == as_float32
    # The openai SDK without numpy: array("f") over the decoded bytes (on a little-endian host).
    assert array("f", base64.b64decode(encoded)).tolist() == as_float32
    assert encode_float32(decode_float32(encoded)) == encoded


def test_a_base64_vector_that_is_not_whole_float32_values_is_a_bad_upstream_answer() -> None:
    answer = EmbeddingResponse(data=[Embedding(index=0, embedding="AACA")], model="m")
    with pytest.raises(UpstreamBadResponse, match="not valid"):
        in_encoding(answer, "float", "openai")


def test_answer_is_converted_to_the_encoding_asked_and_left_alone_when_it_matches() -> None:
    floats = EmbeddingResponse(data=[Embedding(index=0, embedding=[1.0, -2.5])], model="m")
    assert in_encoding(floats, "base64", "p").data[0].embedding == encode_float32([1.0, -2.5])
    assert in_encoding(floats, "float", "p").data[0].embedding == [1.0, -2.5]
    text = EmbeddingResponse(data=[Embedding(index=0, embedding=encode_float32([0.5]))], model="m")
    assert in_encoding(text, "base64", "p").data[0].embedding == "AAAAPw=="


# --- request checks ------------------------------------------------------------------------------


def test_request_keeps_raw_body_and_defaults_to_float() -> None:
    request = decode_embeddings(b'{"model": "small", "input": "hi", "extra": 1}')
    assert request.input == "hi"
    assert request.encoding_format == "float"
    assert request.raw == {"model": "small", "input": "hi", "extra": 1}


@pytest.mark.parametrize(("value", "count"), [("a", 1), (["a", "b"], 2), ([1, 2, 3], 1), ([[1, 2], [3]], 2)])
def test_each_input_shape_is_accepted_and_counted(value: Any, count: int) -> None:
    assert input_count(call({"input": value})) == count


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": ["a", ""]}, "input[1]"),
        ({"input": [[1], []]}, "input[1]"),
        ({"input": ["a", 1]}, "input"),
        ({"input": ["x"] * 2049}, "input"),
        ({"input": [-1]}, "input[0]"),
        ({"input": None}, "input"),
        ({}, "input"),
        ({"input": "a", "encoding_format": "hex"}, "encoding_format"),
        ({"input": "a", "dimensions": 0}, "dimensions"),
        ({"input": "a", "dimensions": "8"}, "dimensions"),
    ],
)
def test_invalid_requests_are_refused_naming_the_parameter(body: dict[str, Any], param: str) -> None:
    assert refused(body).param == param


def test_2048_inputs_are_accepted() -> None:
    assert input_count(call({"input": ["x"] * 2048})) == 2048


# --- OpenAI body ---------------------------------------------------------------------------------


def test_openai_body_strips_router_fields_and_names_the_upstream_model() -> None:
    body = {"input": ["a"], "models": ["gem"], "encoding_format": "base64", "dimensions": 8, "x-extra": True}
    sent = json.loads(openai_body(call(body), ("models",)))
    assert sent == {
        "model": "text-embedding-3-small",
        "input": ["a"],
        "encoding_format": "base64",
        "dimensions": 8,
        "x-extra": True,
    }


def test_openai_answer_is_put_in_input_order_and_must_hold_one_vector_per_input() -> None:
    data = [{"object": "embedding", "index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]
    body = json.dumps({"object": "list", "model": "m", "data": data, "usage": {"prompt_tokens": 2}}).encode()
    answer = parse_openai(body, "openai", 2)
    assert [e.embedding for e in answer.data] == [[1.0], [2.0]]
    assert answer.usage.prompt_tokens == 2
    with pytest.raises(UpstreamBadResponse, match="2 embeddings for 3 inputs"):
        parse_openai(body, "openai", 3)
    with pytest.raises(UpstreamBadResponse):
        parse_openai(b'{"data": 1}', "openai", 1)


# --- Gemini body ---------------------------------------------------------------------------------


def test_gemini_body_names_the_model_and_maps_dimensions() -> None:
    [(body, count)] = gemini_bodies(call({"input": ["one", "two"], "dimensions": 256}, "gem"))
    assert count == 2
    assert json.loads(body) == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "one"}]},
                "outputDimensionality": 256,
            },
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "two"}]},
                "outputDimensionality": 256,
            },
        ]
    }


def test_gemini_body_without_dimensions_leaves_the_model_default() -> None:
    [(body, _)] = gemini_bodies(call({"input": "one"}, "gem"))
    assert "outputDimensionality" not in json.loads(body)["requests"][0]


def test_gemini_batches_hold_at_most_100_texts_in_order() -> None:
    texts = [f"t{i}" for i in range(250)]
    batches = gemini_bodies(call({"input": texts}, "gem"))
    assert [count for _, count in batches] == [100, 100, 50]
    sent = [r["content"]["parts"][0]["text"] for body, _ in batches for r in json.loads(body)["requests"]]
    assert sent == texts


@pytest.mark.parametrize("tokens", [[1, 2, 3], [[1, 2], [3]]])
def test_token_arrays_cannot_go_to_gemini(tokens: Any) -> None:
    with pytest.raises(InvalidRequest, match="token arrays") as info:
        gemini_bodies(call({"input": tokens}, "gem"))
    assert info.value.param == "input"


def test_gemini_answer_has_openai_shape_and_estimated_usage() -> None:
    one = call({"input": ["abcdefgh", "abc"]}, "gem")
    vectors = parse_gemini(b'{"embeddings": [{"values": [0.5, 1]}, {"values": [2]}]}', "google", 2)
    answer = gemini_answer(one, vectors)
    assert answer.model == "gemini-embedding-001"
    assert [(e.index, e.embedding, e.object) for e in answer.data] == [
        (0, [0.5, 1.0], "embedding"),
        (1, [2.0], "embedding"),
    ]
    assert (answer.usage.prompt_tokens, answer.usage.total_tokens) == (3, 3)  # 8/4 + ceil(3/4)
    with pytest.raises(UpstreamBadResponse, match="1 embeddings for 2 inputs"):
        parse_gemini(b'{"embeddings": [{"values": [0.5]}]}', "google", 2)


def test_gemini_vectors_shortened_by_dimensions_come_back_as_unit_vectors() -> None:
    shortened = call({"input": "abc", "dimensions": 2}, "gem")
    [vector] = [e.embedding for e in gemini_answer(shortened, [[3.0, 4.0]]).data]
    assert vector == [0.6, 0.8]
    [untouched] = [e.embedding for e in gemini_answer(call({"input": "abc"}, "gem"), [[3.0, 4.0]]).data]
    assert untouched == [3.0, 4.0]
