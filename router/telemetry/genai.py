"""The OpenTelemetry GenAI semantic conventions as the router fills them: attribute names, the
operation and provider names, a request's parameters, and the facts of an answer (id, model, finish
reasons, usage, and its text when content capture is on), read from any API's answer or stream event.

Pure functions and one accumulator, with no OpenTelemetry import: the values are plain strings,
numbers and lists, ready for ``span.set_attributes``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

from router.catalog import Provider
from router.types import ChatChunk, ChatCompletion, EmbeddingResponse, TextCompletion, Usage

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
USAGE = (INPUT_TOKENS, OUTPUT_TOKENS, CACHE_READ_TOKENS, REASONING_TOKENS)
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
ERROR_TYPE = "error.type"
STATUS_CODE = "http.response.status_code"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

# The router's routes → the convention's well-known operation names (Responses is a chat API).
OPERATIONS = {
    "chat": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}

# Hosts of OpenAI-compatible APIs that have a well-known provider name of their own.
_HOSTS = {
    "api.openai.com": "openai",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "api.cohere.com": "cohere",
}
_KINDS = {
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "azure": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "vertex": "gcp.vertex_ai",
}

# Request fields → attributes, for the numeric parameters every chat-like API shares.
_NUMBERS = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("top_k", "gen_ai.request.top_k"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
)
_LIMITS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
_encode = msgspec.json.Encoder().encode

Attributes = dict[str, Any]


def _json(value: object) -> str:
    return _encode(value).decode()


def operation_of(route: str) -> str:
    return OPERATIONS.get(route, route)


def provider_name(provider: Provider) -> str:
    """``gen_ai.provider.name``: the convention's name when one applies, else the catalog's."""
    kind = _KINDS.get(provider.kind)
    if kind is not None:
        return kind
    host = (urlsplit(provider.base_url).hostname or "").lower()
    if host in _HOSTS:
        return _HOSTS[host]
    if host.endswith(".openai.azure.com"):
        return "azure.ai.openai"
    return provider.name  # an OpenAI-compatible server of its own (vLLM, Ollama, ...): a custom value


def server_of(base_url: str) -> Attributes:
    """``server.address`` and ``server.port`` of a provider's base URL."""
    parts = urlsplit(base_url)
    if not parts.hostname:
        return {}
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {SERVER_ADDRESS: parts.hostname, SERVER_PORT: port}


def request_attributes(raw: dict[str, Any]) -> Attributes:
    """The request's parameters the convention names (never its content)."""
    attributes: Attributes = {}
    for field in _LIMITS:
        value = raw.get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            attributes["gen_ai.request.max_tokens"] = value
            break
    for field, name in _NUMBERS:
        value = raw.get(field)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attributes[name] = float(value)
    seed = raw.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        attributes["gen_ai.request.seed"] = seed
    choices = raw.get("n")
    if isinstance(choices, int) and not isinstance(choices, bool) and choices != 1:
        attributes["gen_ai.request.choice.count"] = choices
    stop = raw.get("stop")
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        attributes["gen_ai.request.stop_sequences"] = stop
    output = _output_type(raw)
    if output is not None:
        attributes["gen_ai.output.type"] = output
    encoding = raw.get("encoding_format")
    if isinstance(encoding, str):
        attributes["gen_ai.request.encoding_formats"] = [encoding]
    dimensions = raw.get("dimensions")
    if isinstance(dimensions, int) and not isinstance(dimensions, bool):
        attributes["gen_ai.embeddings.dimension.count"] = dimensions
    return attributes


def _output_type(raw: dict[str, Any]) -> str | None:
    fmt = raw.get("response_format")
    if not isinstance(fmt, dict):
        text = raw.get("text")  # Responses: text.format
        fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict):
        return None
    return "json" if fmt.get("type") in ("json_object", "json_schema") else "text"


# --- content (opt-in) ------------------------------------------------------------------------------


def input_content(route: str, raw: dict[str, Any]) -> Attributes:
    """``gen_ai.input.messages`` (and ``gen_ai.system_instructions`` where the API keeps them apart)
    as the convention's JSON: role and parts."""
    attributes: Attributes = {}
    if route == "chat":
        messages = raw.get("messages")
        if isinstance(messages, list):
            attributes[INPUT_MESSAGES] = _json([_chat_message(m) for m in messages if isinstance(m, dict)])
    elif route == "responses":
        given = raw.get("input")
        items = [{"role": "user", "content": given}] if isinstance(given, str) else given
        if isinstance(items, list):
            attributes[INPUT_MESSAGES] = _json([_chat_message(m) for m in items if isinstance(m, dict)])
        instructions = raw.get("instructions")
        if isinstance(instructions, str):
            attributes[SYSTEM_INSTRUCTIONS] = _json([{"type": "text", "content": instructions}])
    elif route == "completions":
        prompt = raw.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if isinstance(prompts, list):
            parts = [{"type": "text", "content": p} for p in prompts if isinstance(p, str)]
            attributes[INPUT_MESSAGES] = _json([{"role": "user", "parts": parts}])
    return attributes


def _chat_message(message: dict[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append({"type": "text", "content": text})
                else:
                    parts.append({"type": str(part.get("type", "unknown"))})
    for call in message.get("tool_calls") or ():
        if isinstance(call, dict):
            function = call.get("function") or {}
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments"),
                }
            )
    role = str(message.get("role", "user"))
    if role == "tool":
        parts = [{"type": "tool_call_response", "id": message.get("tool_call_id"), "response": content}]
    return {"role": role, "parts": parts}


# --- answers -----------------------------------------------------------------------------------------


class Facts:
    """What the answers and stream events of one attempt said about themselves."""

    __slots__ = ("cached", "capture", "finish", "id", "input", "model", "output", "reasoning", "texts")

    def __init__(self, capture: bool) -> None:
        self.capture = capture  # keep the answer's text (content capture is on)
        self.id: str | None = None
        self.model: str | None = None
        self.finish: dict[int, str] = {}  # finish reason of each choice
        self.input: int | None = None
        self.output: int | None = None
        self.cached: int | None = None
        self.reasoning: int | None = None
        self.texts: dict[int, list[str]] = {}

    def observe(self, answer: object) -> None:
        if isinstance(answer, ChatChunk):
            self._chunk(answer)
        elif isinstance(answer, ChatCompletion):
            self._named(answer.id, answer.model)
            for choice in answer.choices:
                if choice.finish_reason is not None:
                    self.finish[choice.index] = choice.finish_reason
                if self.capture and choice.message.content:
                    self.texts.setdefault(choice.index, []).append(choice.message.content)
            self._usage(answer.usage)
        elif isinstance(answer, TextCompletion):
            self._named(answer.id, answer.model)
            for text in answer.choices:
                if text.finish_reason is not None:
                    self.finish[text.index] = text.finish_reason
                if self.capture and text.text:
                    self.texts.setdefault(text.index, []).append(text.text)
            self._usage(answer.usage)
        elif isinstance(answer, EmbeddingResponse):
            self.model = self.model or answer.model
            self.input = answer.usage.prompt_tokens
        elif isinstance(answer, dict):
            self._responses(answer)

    def _named(self, answer_id: str, model: str) -> None:
        if self.id is None and answer_id:
            self.id = answer_id
        if self.model is None and model:
            self.model = model

    def _chunk(self, chunk: ChatChunk) -> None:
        self._named(chunk.id, chunk.model)
        for choice in chunk.choices:
            if choice.finish_reason is not None:
                self.finish[choice.index] = choice.finish_reason
            if self.capture and isinstance(choice.delta.content, str) and choice.delta.content:
                self.texts.setdefault(choice.index, []).append(choice.delta.content)
        self._usage(chunk.usage)

    def _usage(self, usage: object) -> None:
        if not isinstance(usage, Usage):
            return
        self.input, self.output = usage.prompt_tokens, usage.completion_tokens
        prompt = usage.prompt_tokens_details
        if isinstance(prompt, dict) and isinstance(prompt.get("cached_tokens"), int):
            self.cached = prompt["cached_tokens"]
        completion = usage.completion_tokens_details
        if isinstance(completion, dict) and isinstance(completion.get("reasoning_tokens"), int):
            self.reasoning = completion["reasoning_tokens"]

    def _responses(self, event: dict[str, Any]) -> None:
        """A Responses answer, or a Responses stream event (those that carry the response)."""
        kind = event.get("type")
        streamed = isinstance(kind, str) and kind.startswith("response.")
        if streamed:
            if self.capture and kind == "response.output_text.delta":
                delta = event.get("delta")
                if isinstance(delta, str):
                    self.texts.setdefault(0, []).append(delta)
            response = event.get("response")  # on response.created and the terminal events
            if not isinstance(response, dict):
                return
        else:
            response = event
        self._named(str(response.get("id") or ""), str(response.get("model") or ""))
        status = response.get("status")
        if status in ("completed", "incomplete", "failed"):
            details = response.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, dict) else None
            self.finish[0] = {"completed": "stop", "failed": "error"}.get(status, str(reason or status))
        usage = response.get("usage")
        if isinstance(usage, dict):
            self.input, self.output = usage.get("input_tokens"), usage.get("output_tokens")
            cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
            reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
            self.cached = cached if isinstance(cached, int) else None
            self.reasoning = reasoning if isinstance(reasoning, int) else None
        if self.capture and not streamed and not self.texts:
            texts = [
                part.get("text", "")
                for item in response.get("output") or ()
                if isinstance(item, dict) and item.get("type") == "message"
                for part in item.get("content") or ()
                if isinstance(part, dict) and part.get("type") == "output_text"
            ]
            if texts:
                self.texts[0] = texts

    def attributes(self) -> Attributes:
        """The answer's attributes: id, model, finish reasons and (when the attempt reported it) usage."""
        attributes: Attributes = {}
        if self.id:
            attributes[RESPONSE_ID] = self.id
        if self.model:
            attributes[RESPONSE_MODEL] = self.model
        if self.finish:
            attributes[FINISH_REASONS] = [self.finish[i] for i in sorted(self.finish)]
        for name, value in (
            (INPUT_TOKENS, self.input),
            (OUTPUT_TOKENS, self.output),
            (CACHE_READ_TOKENS, self.cached),
            (REASONING_TOKENS, self.reasoning),
        ):
            if isinstance(value, int):
                attributes[name] = value
        return attributes

    def output_messages(self) -> str | None:
        """``gen_ai.output.messages`` (content capture only)."""
        if not self.texts:
            return None
        return _json(
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": "".join(self.texts[i])}],
                    "finish_reason": self.finish.get(i, ""),
                }
                for i in sorted(self.texts)
            ]
        )
