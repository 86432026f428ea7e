"""``POST /v1/embeddings``: decode and check, route to the exact model asked, answer in the encoding asked.

No strategy may pick an embeddings model (vectors of two models are not comparable), so the plan is the
model named and the client's own ``models`` list, in that order.
"""

from __future__ import annotations

import base64
import struct
import sys
from array import array
from collections.abc import Iterable
from typing import Annotated

import msgspec
from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from router.api.answers import Assembler, Counted, StreamWriter
from router.api.cache import CachedAnswer
from router.api.decode import convert, decode_object
from router.api.exchange import Exchange, serve
from router.api.services import Services
from router.errors import InvalidRequest, UpstreamBadResponse
from router.providers import ChatAdapter, Embedder, EmbeddingCall
from router.routing import OpenedStream, Outcome
from router.types import EmbeddingRequest, EmbeddingResponse, Usage

MAX_INPUTS = 2048  # OpenAI's limit on the inputs of one request
ENCODINGS = ("float", "base64")

_encode = msgspec.json.Encoder().encode
_Token = Annotated[int, msgspec.Meta(ge=0)]
EmbeddingInput = str | list[str] | list[int] | list[list[int]]


class _Body(msgspec.Struct):
    """What is decoded of the body. ``EmbeddingRequest.input`` unions several array types, which msgspec
    cannot decode, so the input is read as one array of mixed items and checked here."""

    model: str
    input: str | list[str | _Token | list[_Token]]
    encoding_format: str | None = None
    dimensions: Annotated[int, msgspec.Meta(ge=1)] | None = None
    user: str | None = None
    models: list[str] | None = None


# --- decoding ------------------------------------------------------------------------------------


def decode_embeddings(body: bytes) -> EmbeddingRequest:
    data = decode_object(body)
    view = convert(data, _Body)
    if view.encoding_format is not None and view.encoding_format not in ENCODINGS:
        raise InvalidRequest(
            f"Invalid value: '{view.encoding_format}'. Supported values are: 'float' and 'base64'.",
            param="encoding_format",
        )
    request = EmbeddingRequest(
        model=view.model,
        input=checked_input(view.input),
        encoding_format="base64" if view.encoding_format == "base64" else "float",
        dimensions=view.dimensions,
        user=view.user,
        models=view.models,
    )
    request.raw = data
    return request


def checked_input(value: str | list[str | int | list[int]]) -> EmbeddingInput:
    """One string, strings, one token array or token arrays; none empty, at most ``MAX_INPUTS``."""
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("'input' must not be an empty string.", param="input")
        return value
    if not value:
        raise InvalidRequest("'input' must not be an empty array.", param="input")
    tokens = [item for item in value if isinstance(item, int)]
    if len(tokens) == len(value):
        return tokens  # one input given as token ids
    texts = [item for item in value if isinstance(item, str)]
    arrays = [item for item in value if isinstance(item, list)]
    if len(texts) != len(value) and len(arrays) != len(value):
        raise InvalidRequest(
            "'input' must be a string, an array of strings, an array of tokens or an array of token "
            "arrays, not a mix of them.",
            param="input",
        )
    if len(value) > MAX_INPUTS:
        raise InvalidRequest(
            f"'input' holds {len(value)} items; at most {MAX_INPUTS} may be embedded in one request.",
            param="input",
        )
    for i, item in enumerate(value):
        if not item:
            raise InvalidRequest(f"'input[{i}]' must not be empty.", param=f"input[{i}]")
    return texts or arrays


# --- encodings -----------------------------------------------------------------------------------


def encode_float32(values: list[float]) -> str:
    """Little-endian float32 bytes in base64: what OpenAI sends for ``encoding_format=base64``."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def decode_float32(text: str) -> list[float]:
    raw = base64.b64decode(text, validate=True)
    if len(raw) % 4:
        raise ValueError("base64 embedding is not a whole number of float32 values")
    values = array("f")
    values.frombytes(raw)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


def in_encoding(answer: EmbeddingResponse, wanted: str, provider: str) -> EmbeddingResponse:
    """Each vector in the encoding the client asked for, whatever the adapter returned."""
    try:
        for item in answer.data:
            if wanted == "base64" and isinstance(item.embedding, list):
                item.embedding = encode_float32(item.embedding)
            elif wanted == "float" and isinstance(item.embedding, str):
                item.embedding = decode_float32(item.embedding)
    except (ValueError, OverflowError, struct.error) as exc:
        raise UpstreamBadResponse(
            f"provider '{provider}' sent an embedding that is not valid: {exc}"
        ) from None
    return answer


# --- route ---------------------------------------------------------------------------------------


class _Embed:
    """Vectors from one candidate, in the encoding the client asked for."""

    async def call(self, adapter: ChatAdapter, call: EmbeddingCall) -> EmbeddingResponse:
        if not isinstance(adapter, Embedder):
            raise InvalidRequest(
                f"The model '{call.model.id}' is served by provider '{call.provider.name}', "
                "which cannot embed.",
                param="model",
                code="model_not_supported",
            )
        answer = await adapter.embed(call)
        # Converted inside the attempt, so that a malformed vector lets the next model answer.
        return in_encoding(answer, call.request.encoding_format or "float", call.provider.name)

    def output_tokens(self, answer: EmbeddingResponse) -> int:
        # The catalog's speed prior of an embeddings model is its input rate: the prompt is its "output".
        return answer.usage.prompt_tokens


_EMBED = _Embed()


class EmbeddingsCache:
    """Kept vectors are replayed as they were; embeddings never stream."""

    def cacheable(self, request: EmbeddingRequest) -> bool:
        return True

    def keeps(self, answer: EmbeddingResponse) -> bool:
        return bool(answer.data)

    def assembler(self, request: EmbeddingRequest) -> Assembler[None]:
        raise AssertionError("embeddings do not stream")

    async def replay(self, exchange: Exchange, request: EmbeddingRequest, entry: CachedAnswer) -> bytes:
        return entry.body

    async def replay_stream(
        self, exchange: Exchange, request: EmbeddingRequest, entry: CachedAnswer
    ) -> tuple[Iterable[None], StreamWriter[None]]:
        raise AssertionError("embeddings do not stream")


class EmbeddingsRoute:
    name = "embeddings"
    writes = False  # vectors: no output is priced
    cache = EmbeddingsCache()

    def decode(self, body: bytes) -> EmbeddingRequest:
        return decode_embeddings(body)

    def streams(self, request: EmbeddingRequest) -> bool:
        return False

    async def answer(
        self, exchange: Exchange, request: EmbeddingRequest
    ) -> tuple[EmbeddingResponse, Outcome]:
        engine = exchange.engine
        plan = engine.plan_fixed(request, "embeddings", "embeddings")
        answer, outcome = await engine.run(
            request, plan, exchange.request_id, _EMBED, estimate=exchange.estimate, admission=exchange.hold
        )
        exchange.inputs = len(answer.data)
        return answer, outcome

    async def open(
        self, exchange: Exchange, request: EmbeddingRequest
    ) -> tuple[OpenedStream[None], StreamWriter[None]]:
        raise AssertionError("embeddings do not stream")  # streams() is False

    def encode(self, answer: EmbeddingResponse) -> bytes:
        return _encode(answer)

    def counted(self, answer: EmbeddingResponse, outcome: Outcome) -> Counted | None:
        tokens = answer.usage.prompt_tokens
        return Counted((tokens, 0, 0, 0), tokens, Usage(prompt_tokens=tokens, total_tokens=tokens), None)


def embedding_handlers(services: Services) -> list[ASGIRouteHandler]:
    """The embeddings route, bound to this app's services (with and without the ``/v1`` prefix)."""
    route = EmbeddingsRoute()

    @asgi(["/v1/embeddings", "/embeddings"], copy_scope=False)
    async def embeddings(scope: Scope, receive: Receive, send: Send) -> None:
        await serve(services, route, scope, receive, send)

    return [embeddings]
