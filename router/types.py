"""Canonical request, response and stream-event types shared by the API layer and the adapters.

The canonical shape is OpenAI Chat Completions: it is the richest common denominator of the
providers and the format most clients speak. Adapters translate their provider's native format to and
from these Structs; the API layer encodes them as Chat Completions or Responses answers.

Request Structs validate what the router reads and ignore the rest: the raw decoded body travels
beside them (``ChatRequest.raw``) so that OpenAI-kind upstreams receive unknown fields untouched.
Response Structs default optional fields to ``UNSET`` so that what an upstream omitted stays omitted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]

# --- request -------------------------------------------------------------------------------------


class CacheControl(Struct, forbid_unknown_fields=True):
    """An Anthropic prompt-cache breakpoint, as OpenRouter and LiteLLM accept it on OpenAI-format
    requests: the prompt up to and including the part that carries it is cached. Only Anthropic
    models read it; the adapters of other providers leave it out."""

    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | UnsetType = UNSET


class ImageURL(Struct):
    url: str
    detail: str | UnsetType = UNSET


class InputAudio(Struct):
    data: str
    format: str


class FilePart(Struct):
    file_data: str | UnsetType = UNSET
    file_id: str | UnsetType = UNSET
    filename: str | UnsetType = UNSET


class ContentPart(Struct):
    """One part of a multi-part message; only the fields of its ``type`` are present."""

    type: str
    text: str | UnsetType = UNSET
    image_url: ImageURL | UnsetType = UNSET
    input_audio: InputAudio | UnsetType = UNSET
    file: FilePart | UnsetType = UNSET
    refusal: str | UnsetType = UNSET
    cache_control: CacheControl | UnsetType = UNSET


class FunctionCall(Struct):
    name: str
    arguments: str


class ToolCall(Struct):
    id: str
    function: FunctionCall
    type: str = "function"
    cache_control: CacheControl | UnsetType = UNSET


class Message(Struct):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType | None = UNSET
    tool_call_id: str | UnsetType = UNSET
    refusal: str | UnsetType | None = UNSET
    # On the message as a whole: a breakpoint after its last part (LiteLLM's form for string content).
    cache_control: CacheControl | UnsetType = UNSET


class FunctionDef(Struct):
    name: str
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET
    strict: bool | UnsetType | None = UNSET
    cache_control: CacheControl | UnsetType = UNSET


class Tool(Struct):
    type: str
    function: FunctionDef | UnsetType = UNSET
    # LiteLLM accepts the marker here or on the function; this one wins.
    cache_control: CacheControl | UnsetType = UNSET

    @property
    def cache_mark(self) -> CacheControl | None:
        """The tool's prompt-cache breakpoint, wherever the client put it."""
        if isinstance(self.cache_control, CacheControl):
            return self.cache_control
        function = self.function
        if isinstance(function, FunctionDef) and isinstance(function.cache_control, CacheControl):
            return function.cache_control
        return None


class StreamOptions(Struct):
    include_usage: bool | None = None


class JsonSchemaFormat(Struct):
    """``response_format.json_schema``: the schema a structured answer must follow."""

    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(Struct):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class ChatRequest(Struct):
    """A Chat Completions request as the router understands it.

    ``raw`` is the decoded body as the client sent it; it is what OpenAI-kind adapters forward.
    """

    model: str
    messages: Annotated[list[Message], Meta(min_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Meta(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Meta(ge=1)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    n: Annotated[int, Meta(ge=1, le=128)] | None = None
    stop: str | list[str] | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    service_tier: str | None = None
    seed: int | None = None
    user: str | None = None
    # Read by some translators; typed so that a wrong value is a 400 naming it, on every provider.
    presence_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    logit_bias: dict[str, float] | None = None
    reasoning_effort: str | None = None
    safety_identifier: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    # OpenAI's prompt-cache routing key and retention: passed to OpenAI-kind upstreams, dropped elsewhere.
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    # OpenRouter's automatic caching: a breakpoint after the last message (Anthropic models only).
    cache_control: CacheControl | UnsetType = UNSET
    # An ordered fallback list, as OpenRouter accepts it: tried after ``model``.
    models: list[str] | None = None
    # Set by the decoder after validation; the odd wire name keeps a client field from landing here.
    raw: dict[str, Any] = msgspec.field(default_factory=dict, name="__router_raw__")

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


# --- response ------------------------------------------------------------------------------------


class Usage(Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: dict[str, Any] | UnsetType | None = UNSET
    completion_tokens_details: dict[str, Any] | UnsetType | None = UNSET


class AssistantMessage(Struct):
    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | UnsetType = UNSET
    annotations: list[Any] | UnsetType = UNSET
    audio: Any | UnsetType = UNSET
    function_call: Any | UnsetType = UNSET
    # Reasoning text as some OpenAI-compatible servers (vLLM, DeepSeek, Ollama) return it.
    reasoning_content: str | UnsetType | None = UNSET
    reasoning: str | UnsetType | None = UNSET


class Choice(Struct):
    index: int = 0
    message: AssistantMessage = msgspec.field(default_factory=AssistantMessage)
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletion(Struct):
    id: str
    created: int
    model: str
    choices: list[Choice]
    object: str = "chat.completion"
    usage: Usage | UnsetType | None = UNSET
    service_tier: str | UnsetType | None = UNSET
    system_fingerprint: str | UnsetType | None = UNSET


class FunctionDelta(Struct):
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET


class ToolCallDelta(Struct):
    index: int
    id: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    function: FunctionDelta | UnsetType = UNSET


class Delta(Struct):
    role: str | UnsetType = UNSET
    content: str | UnsetType | None = UNSET
    refusal: str | UnsetType | None = UNSET
    tool_calls: list[ToolCallDelta] | UnsetType = UNSET
    function_call: Any | UnsetType = UNSET
    reasoning_content: str | UnsetType | None = UNSET
    reasoning: str | UnsetType | None = UNSET


class ChunkChoice(Struct):
    index: int = 0
    delta: Delta = msgspec.field(default_factory=Delta)
    finish_reason: str | None = None
    logprobs: Any = None


class ChatChunk(Struct):
    """One streamed Chat Completions chunk: the canonical stream event."""

    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    object: str = "chat.completion.chunk"
    usage: Usage | UnsetType | None = UNSET
    service_tier: str | UnsetType | None = UNSET
    system_fingerprint: str | UnsetType | None = UNSET
    obfuscation: str | UnsetType = UNSET

    def carries_output(self) -> bool:
        """Whether this chunk holds real output: the stream's commit point is its first such chunk."""
        for choice in self.choices:
            delta = choice.delta
            if delta.content or delta.tool_calls or delta.refusal or delta.function_call:
                return True
            if delta.reasoning_content or delta.reasoning:
                return True
        return False


# --- embeddings ----------------------------------------------------------------------------------


class EmbeddingRequest(Struct):
    """An embeddings request as the router understands it (``raw`` as for ``ChatRequest``)."""

    model: str
    # A string, strings, token ids, or lists of token ids (msgspec cannot tell list types apart in a union).
    input: str | list[Any]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Meta(ge=1)] | None = None
    user: str | None = None
    models: list[str] | None = None
    raw: dict[str, Any] = msgspec.field(default_factory=dict, name="__router_raw__")


class Embedding(Struct):
    index: int
    # Floats, or little-endian float32 bytes in base64 as OpenAI sends them for encoding_format=base64.
    embedding: list[float] | str
    object: str = "embedding"


class EmbeddingUsage(Struct):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingResponse(Struct):
    data: list[Embedding]
    model: str
    object: str = "list"
    usage: EmbeddingUsage = msgspec.field(default_factory=EmbeddingUsage)


# --- legacy completions --------------------------------------------------------------------------


class CompletionRequest(Struct):
    """A legacy Completions request (``POST /v1/completions``); ``raw`` as for ``ChatRequest``.

    ``prompt`` is a text, a list of texts, a token array or a list of token arrays (one array-like
    type per union is all msgspec allows, so the decoder checks that a list holds one kind).
    """

    model: str
    prompt: str | list[str | int | list[int]] | None
    max_tokens: Annotated[int, Meta(ge=0)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    n: Annotated[int, Meta(ge=1, le=128)] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    echo: bool | None = None
    suffix: str | None = None
    logprobs: Annotated[int, Meta(ge=0, le=5)] | None = None
    best_of: Annotated[int, Meta(ge=0, le=20)] | None = None
    presence_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    seed: int | None = None
    user: str | None = None
    logit_bias: dict[str, int] | None = None
    models: list[str] | None = None
    raw: dict[str, Any] = msgspec.field(default_factory=dict, name="__router_raw__")

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionChoice(Struct):
    text: str = ""
    index: int = 0
    logprobs: Any = None
    finish_reason: str | None = None


class TextCompletion(Struct):
    """A legacy Completions answer; each event of a streamed one has the same shape."""

    id: str
    created: int
    model: str
    choices: list[CompletionChoice]
    object: str = "text_completion"
    usage: Usage | UnsetType | None = UNSET
    system_fingerprint: str | UnsetType | None = UNSET

    def carries_output(self) -> bool:
        """Whether this event holds text: a stream's commit point is its first such event."""
        return any(choice.text for choice in self.choices)
