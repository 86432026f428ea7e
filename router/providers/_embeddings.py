"""Embeddings on the wire: OpenAI-kind bodies and answers, and Gemini's batchEmbedContents both ways.

The adapters keep only their I/O; everything here is pure apart from ``in_parallel``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import msgspec

from router.errors import DECODE_ERRORS, InvalidRequest, UpstreamBadResponse
from router.providers.base import EmbeddingCall
from router.types import Embedding, EmbeddingResponse, EmbeddingUsage

T = TypeVar("T")

# --- constants -----------------------------------------------------------------------------------

# Gemini refuses a larger batch ("at most 100 requests can be in one batch"); OpenAI takes 2048.
GEMINI_BATCH = 100
# Gemini reports no token usage for embeddings; OpenAI's rule of thumb is about 4 characters a token.
CHARS_PER_TOKEN = 4

# --- wire types ----------------------------------------------------------------------------------


class _GeminiValues(msgspec.Struct):
    values: list[float]


class _GeminiBatch(msgspec.Struct):
    embeddings: list[_GeminiValues] = []


_encode = msgspec.json.Encoder().encode
_decode_openai = msgspec.json.Decoder(EmbeddingResponse).decode
_decode_gemini = msgspec.json.Decoder(_GeminiBatch).decode

# --- request builders ----------------------------------------------------------------------------


def input_count(call: EmbeddingCall) -> int:
    """How many vectors the answer must hold: one per string or token array."""
    value = call.request.input
    if isinstance(value, str) or not value or isinstance(value[0], int):
        return 1
    return len(value)


def openai_body(call: EmbeddingCall, router_only: Sequence[str]) -> bytes:
    """The client's own body, unknown fields untouched, with the upstream's model name."""
    body: dict[str, Any] = dict(call.request.raw)
    for field in router_only:
        body.pop(field, None)
    body["model"] = call.model.upstream
    return _encode(body)


def gemini_texts(call: EmbeddingCall) -> list[str]:
    value = call.request.input
    if isinstance(value, str):
        return [value]
    if all(isinstance(item, str) for item in value):
        return [item for item in value if isinstance(item, str)]
    raise InvalidRequest(
        f"The model '{call.model.id}' is a Gemini model, which embeds text only: "
        "token arrays cannot be sent to it; send the text itself.",
        param="input",
    )


def gemini_bodies(call: EmbeddingCall) -> list[tuple[bytes, int]]:
    """batchEmbedContents bodies of at most ``GEMINI_BATCH`` texts each, in input order, with the
    number of texts each holds."""
    texts = gemini_texts(call)
    name = f"models/{call.model.upstream}"
    dimensions = call.request.dimensions
    requests: list[dict[str, Any]] = []
    for text in texts:
        one: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            one["outputDimensionality"] = dimensions
        requests.append(one)
    batches = [requests[start : start + GEMINI_BATCH] for start in range(0, len(requests), GEMINI_BATCH)]
    return [(_encode({"requests": batch}), len(batch)) for batch in batches]


# --- response parsers ----------------------------------------------------------------------------


def parse_openai(body: bytes, provider: str, expected: int) -> EmbeddingResponse:
    try:
        answer = _decode_openai(body)
    except DECODE_ERRORS as exc:
        raise UpstreamBadResponse(
            f"provider '{provider}' sent an answer that is not an embeddings list: {exc}"
        ) from None
    _check_count(len(answer.data), expected, provider)
    answer.data.sort(key=lambda item: item.index)
    return answer


def parse_gemini(body: bytes, provider: str, expected: int) -> list[list[float]]:
    try:
        batch = _decode_gemini(body)
    except DECODE_ERRORS as exc:
        raise UpstreamBadResponse(
            f"provider '{provider}' sent an answer that is not a Gemini embeddings batch: {exc}"
        ) from None
    _check_count(len(batch.embeddings), expected, provider)
    return [item.values for item in batch.embeddings]


def gemini_answer(call: EmbeddingCall, vectors: list[list[float]]) -> EmbeddingResponse:
    """The OpenAI-shaped answer; ``prompt_tokens`` is an estimate (≈ 4 characters a token), since
    Gemini reports no usage for embeddings, so that the cost header and request log are not zero."""
    tokens = sum(-(-len(text) // CHARS_PER_TOKEN) for text in gemini_texts(call))
    if call.request.dimensions is not None:
        # Gemini returns shortened vectors unnormalised; OpenAI's ``dimensions`` promises unit
        # vectors, which clients comparing by dot product rely on.
        vectors = [_unit(vector) for vector in vectors]
    return EmbeddingResponse(
        data=[Embedding(index=i, embedding=vector) for i, vector in enumerate(vectors)],
        model=call.model.upstream,
        usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )


def _check_count(got: int, expected: int, provider: str) -> None:
    if got != expected:
        raise UpstreamBadResponse(f"provider '{provider}' sent {got} embeddings for {expected} inputs")


# --- I/O helper ----------------------------------------------------------------------------------


async def in_parallel(calls: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run the calls concurrently, results in order; the first failure cancels the rest and is raised
    as itself (not as an exception group), so the engine sees the router error it knows."""
    if len(calls) == 1:
        return [await calls[0]]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one) for one in calls]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm > 0 else vector
