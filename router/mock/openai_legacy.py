"""Fake OpenAI legacy Completions (``POST /openai/v1/completions``) and Embeddings
(``POST /openai/v1/embeddings``) in the real wire format.

Completions serve only the instruct-era models (``COMPLETION_MODELS``); Embeddings only
``EMBEDDING_DIMENSIONS``' models, with vectors that are deterministic per model and input, unit length,
and (for ``text-embedding-3-*``) shortened by ``dimensions`` as OpenAI does: the leading components,
normalised again.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import struct
import time
from collections.abc import Iterator
from typing import Final, NamedTuple

import msgspec
from aiohttp import web

from router.mock._base import act_out, answer
from router.mock.openai_wire import (
    MODELS,
    OpenAIGate,
    decode_failure,
    invalid_request,
    openai_error,
)
from router.mock.streaming import SSE_HEADERS, paced, write_stream
from router.mock.textgen import Prompt, Reply, plan_reply, prompt_tokens

COMPLETION_MODELS: Final = ("gpt-3.5-turbo-instruct", "davinci-002", "babbage-002")
DEFAULT_MAX_TOKENS: Final = 16
"""Legacy Completions' ``max_tokens`` when the request has none (OpenAI's default)."""
EMBEDDING_DIMENSIONS: Final = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
"""Embedding models and their native vector length."""
SHORTENABLE: Final = frozenset({"text-embedding-3-small", "text-embedding-3-large"})
"""The embedding models that accept ``dimensions``."""
MAX_EMBEDDING_INPUTS: Final = 2048
_DONE: Final = b"data: [DONE]\n\n"
_INVALID_INPUT: Final = (
    "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
)


# --- wire types ------------------------------------------------------------------------------------


class _StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class CompletionRequest(msgspec.Struct):
    """The part of a legacy Completions request the fake looks at (``suffix`` and sampling are ignored)."""

    model: str
    prompt: str | list[str | int | list[int]]
    max_tokens: int | None = DEFAULT_MAX_TOKENS
    n: int = 1
    stop: str | list[str] | None = None
    echo: bool = False
    stream: bool | None = None
    stream_options: _StreamOptions | None = None


class EmbeddingRequest(msgspec.Struct):
    """An Embeddings request (``user`` is ignored)."""

    model: str
    input: str | list[str | int | list[int]]
    encoding_format: str = "float"
    dimensions: int | None = None


class _Choice(msgspec.Struct):
    text: str
    index: int
    logprobs: None
    finish_reason: str | None


class _CompletionUsage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class _Completion(msgspec.Struct, omit_defaults=True):
    id: str
    object: str
    created: int
    model: str
    choices: list[_Choice]
    usage: _CompletionUsage | msgspec.UnsetType | None = msgspec.UNSET


class _Embedding(msgspec.Struct):
    object: str
    index: int
    embedding: list[float] | str


class _EmbeddingUsage(msgspec.Struct):
    prompt_tokens: int
    total_tokens: int


class _EmbeddingList(msgspec.Struct):
    object: str
    data: list[_Embedding]
    model: str
    usage: _EmbeddingUsage


# --- shared checks ---------------------------------------------------------------------------------


def _unknown_model(model: str) -> web.Response:
    return openai_error(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        code="model_not_found",
    )


class _Input(NamedTuple):
    key: str
    """What an embedding is derived from: the text, or ``tokens:1,2,3`` for a token list."""
    text: str
    """The readable text (empty for a token list)."""
    tokens: int


def _inputs(value: str | list[str | int | list[int]], *, empty_ok: bool) -> list[_Input] | None:
    """Each prompt or input: a string, a list of strings, one token list or a list of token lists;
    ``None`` for a mix, a negative token or an empty one (empty strings only when ``empty_ok``)."""
    if isinstance(value, str):
        return [_text_input(value)] if value or empty_ok else None
    if all(isinstance(v, int) for v in value):
        tokens = [v for v in value if isinstance(v, int)]
        return [_token_input(tokens)] if tokens and min(tokens) >= 0 else None
    found: list[_Input] = []
    for item in value:
        if isinstance(item, str) and (item or empty_ok):
            found.append(_text_input(item))
        elif isinstance(item, list) and item and min(item) >= 0:
            found.append(_token_input(item))
        else:
            return None
    return found or None


def _text_input(text: str) -> _Input:
    return _Input(text, text, prompt_tokens(len(text)))


def _token_input(tokens: list[int]) -> _Input:
    return _Input("tokens:" + ",".join(map(str, tokens)), "", len(tokens))


# --- completions -----------------------------------------------------------------------------------


def _check_completion(req: CompletionRequest) -> web.Response | None:
    if req.model not in COMPLETION_MODELS:
        if req.model in MODELS:
            return openai_error(
                404,
                "This is a chat model and not supported in the v1/completions endpoint. "
                "Did you mean to use v1/chat/completions?",
                "invalid_request_error",
                param="model",
                code="model_not_found",
            )
        return _unknown_model(req.model)
    if isinstance(req.prompt, list) and not req.prompt:
        return invalid_request(
            "Invalid 'prompt': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="prompt",
            code="empty_array",
        )
    if _inputs(req.prompt, empty_ok=True) is None:
        return invalid_request(
            "Invalid 'prompt': expected a string, an array of strings, an array of tokens or an array of "
            "token arrays.",
            param="prompt",
            code="invalid_type",
        )
    if req.stream_options is not None and not req.stream:
        return invalid_request(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    if req.n < 1 or req.n > 128:
        return invalid_request(
            f"Invalid 'n': {req.n}. Expected a value between 1 and 128.", param="n", code="invalid_value"
        )
    if req.max_tokens is not None and req.max_tokens < 0:
        return invalid_request(
            f"Invalid 'max_tokens': integer below minimum value. Expected a value >= 0, but got "
            f"{req.max_tokens} instead.",
            param="max_tokens",
            code="integer_below_min_value",
        )
    return None


def _finish_reason(reply: Reply) -> str:
    return "length" if reply.finish == "length" else "stop"


class _Planned(msgspec.Struct):
    echo: str
    reply: Reply


def _plan_completions(req: CompletionRequest, hex_id: str) -> list[_Planned]:
    """One planned answer per prompt and ``n``, in choice index order."""
    stop = req.stop
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    planned: list[_Planned] = []
    for given in _inputs(req.prompt, empty_ok=True) or ():
        chars = len(given.text) if given.text else 4 * given.tokens
        prompt = Prompt(user_text=given.text, prompt_chars=chars, max_tokens=req.max_tokens, stops=stops)
        reply = plan_reply(prompt, hex_id)
        planned += [_Planned(given.text if req.echo else "", reply)] * req.n
    return planned


def _completion_usage(planned: list[_Planned], n: int) -> _CompletionUsage:
    # Every prompt counts once, however many choices it has.
    prompt = sum(p.reply.prompt_tokens for p in planned[::n])
    completion = sum(p.reply.completion_tokens for p in planned)
    return _CompletionUsage(prompt, completion, prompt + completion)


def _completion_chunks(req: CompletionRequest, planned: list[_Planned], hex_id: str) -> Iterator[bytes]:
    """The stream's ``data:`` events before ``[DONE]``: pieces, each choice's finish, optional usage."""
    with_usage = bool(req.stream_options and req.stream_options.include_usage)
    created = int(time.time())
    usage: _CompletionUsage | msgspec.UnsetType | None = None if with_usage else msgspec.UNSET

    def chunk(index: int, text: str, finish: str | None) -> bytes:
        body = _Completion(
            f"cmpl-{hex_id}",
            "text_completion",
            created,
            req.model,
            [_Choice(text, index, None, finish)],
            usage,
        )
        return b"data: " + msgspec.json.encode(body) + b"\n\n"

    for index, one in enumerate(planned):
        if one.echo:
            yield chunk(index, one.echo, None)
        for piece in one.reply.pieces:
            yield chunk(index, piece, None)
        yield chunk(index, "", _finish_reason(one.reply))
    if with_usage:
        last = _Completion(
            f"cmpl-{hex_id}", "text_completion", created, req.model, [], _completion_usage(planned, req.n)
        )
        yield b"data: " + msgspec.json.encode(last) + b"\n\n"


def completion_body(req: CompletionRequest, planned: list[_Planned], hex_id: str) -> bytes:
    """The non-streaming ``text_completion`` JSON."""
    choices = [
        _Choice(p.echo + p.reply.text, index, None, _finish_reason(p.reply))
        for index, p in enumerate(planned)
    ]
    body = _Completion(
        f"cmpl-{hex_id}",
        "text_completion",
        int(time.time()),
        req.model,
        choices,
        _completion_usage(planned, req.n),
    )
    return msgspec.json.encode(body)


# --- embeddings ------------------------------------------------------------------------------------


def embed(model: str, key: str, dimensions: int | None = None) -> list[float]:
    """The fake embedding of ``key`` (an input's text): deterministic per model and key, unit length,
    float32 values; ``dimensions`` keeps the leading components and normalises them again."""
    size = EMBEDDING_DIMENSIONS[model]
    raw = hashlib.shake_256(f"{model}\0{key}".encode()).digest(4 * size)
    full = [value / 2_147_483_648.0 - 1.0 for value in struct.unpack(f"<{size}I", raw)]
    kept = full if dimensions is None else full[:dimensions]
    norm = math.sqrt(math.fsum(v * v for v in kept)) or 1.0
    # Round-trip through float32, as OpenAI's vectors are.
    packed = struct.pack(f"<{len(kept)}f", *(v / norm for v in kept))
    return list(struct.unpack(f"<{len(kept)}f", packed))


def _check_embedding(req: EmbeddingRequest) -> web.Response | None:
    native = EMBEDDING_DIMENSIONS.get(req.model)
    if native is None:
        if req.model in MODELS or req.model in COMPLETION_MODELS:
            return invalid_request(f"The model `{req.model}` does not support embeddings.", param="model")
        return _unknown_model(req.model)
    if req.encoding_format not in ("float", "base64"):
        return invalid_request(
            f"Invalid value: '{req.encoding_format}'. Supported values are: 'float' and 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    if req.dimensions is not None:
        if req.model not in SHORTENABLE:
            return invalid_request("This model does not support specifying dimensions.")
        if not 1 <= req.dimensions <= native:
            return invalid_request(
                f"Invalid value for 'dimensions' = {req.dimensions}. Must be between 1 and {native}.",
                param="dimensions",
                code="invalid_value",
            )
    return None


def embedding_body(req: EmbeddingRequest, inputs: list[_Input]) -> bytes:
    """The ``list`` of ``embedding`` objects, as floats or base64 little-endian float32 bytes."""
    data: list[_Embedding] = []
    for index, given in enumerate(inputs):
        vector = embed(req.model, given.key, req.dimensions)
        value: list[float] | str = vector
        if req.encoding_format == "base64":
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append(_Embedding("embedding", index, value))
    tokens = sum(given.tokens for given in inputs)
    return msgspec.json.encode(_EmbeddingList("list", data, req.model, _EmbeddingUsage(tokens, tokens)))


# --- endpoints -------------------------------------------------------------------------------------


class LegacyEndpoints:
    """``/completions`` and ``/embeddings`` on the OpenAI fake: key check, request log, faults, speed."""

    __slots__ = ("_completions", "_embeddings", "_gate")

    def __init__(self, gate: OpenAIGate) -> None:
        self._gate = gate
        self._completions = msgspec.json.Decoder(CompletionRequest)
        self._embeddings = msgspec.json.Decoder(EmbeddingRequest)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body, denied = await self._gate.admit(request)
        if denied is not None:
            return denied
        try:
            req = self._completions.decode(body)
        except msgspec.DecodeError as exc:
            return decode_failure(exc)
        problem = _check_completion(req)
        if problem is not None:
            return problem
        state = self._gate.state
        streaming = bool(req.stream)
        fault = await act_out(
            request,
            state.faults.take(self._gate.provider, req.model, streaming=streaming),
            lambda f: self._gate.fault_error(f, req.model),
        )
        if isinstance(fault, web.StreamResponse):
            return fault
        hex_id = state.ids.next_hex()
        planned = _plan_completions(req, hex_id)
        behaviour = state.behaviour(self._gate.provider, req.model)
        if streaming:
            events = paced(_completion_chunks(req, planned, hex_id), first_wait_before=0)
            return await write_stream(
                request,
                SSE_HEADERS,
                events,
                behaviour,
                fault,
                error_event=self._gate.stream_error_event,
                end=_DONE,
            )
        delay = behaviour.non_stream_delay(sum(len(p.reply.pieces) for p in planned))
        if delay > 0:
            await asyncio.sleep(delay)
        return await answer(request, completion_body(req, planned, hex_id), fault)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        body, denied = await self._gate.admit(request)
        if denied is not None:
            return denied
        try:
            req = self._embeddings.decode(body)
        except msgspec.DecodeError as exc:
            return decode_failure(exc)
        problem = _check_embedding(req)
        if problem is not None:
            return problem
        inputs = _inputs(req.input, empty_ok=False)
        if inputs is None or len(inputs) > MAX_EMBEDDING_INPUTS:
            return invalid_request(_INVALID_INPUT)
        state = self._gate.state
        fault = await act_out(
            request,
            state.faults.take(self._gate.provider, req.model, streaming=False),
            lambda f: self._gate.fault_error(f, req.model),
        )
        if isinstance(fault, web.StreamResponse):
            return fault
        delay = state.behaviour(self._gate.provider, req.model).non_stream_delay(0)
        if delay > 0:
            await asyncio.sleep(delay)
        return await answer(request, embedding_body(req, inputs), fault)
