"""Adapter for Anthropic's Messages API: Chat Completions ⇄ Messages, streaming included.

Translation policy for Chat parameters with no Messages counterpart:
- refused with a 400 naming the parameter: ``n`` > 1, ``logprobs``/``top_logprobs``, ``logit_bias``,
  audio input or output, ``prediction``, file ids, ``temperature`` above 1 (Anthropic's range is 0-1;
  the router does not clamp silently), and tool types other than ``function``;
- dropped, because they only tune or label the call: ``seed``, ``presence_penalty``,
  ``frequency_penalty``, ``metadata`` (OpenAI's stored-completion tags), ``store``, ``verbosity``,
  ``prompt_cache_key``, ``prompt_cache_retention``, ``service_tier`` and ``stream_options`` (the
  router always gets usage);
- emulated: ``response_format: json_object`` becomes an instruction in ``system``.
System and developer messages anywhere in the conversation are joined, in order, into ``system``.

Prompt caching: ``cache_control`` on a content part, tool, tool call, message (its last block) or request
(the last message's) reaches the block it marks, as OpenRouter and LiteLLM pass it; a marked system
prompt goes as text blocks. A
model's ``auto_cache`` marks a request that has no marker (``_caching``); ``usage_of`` maps the counts.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from functools import partial
from typing import Any

import msgspec

from router.catalog import Provider
from router.errors import (
    DECODE_ERRORS,
    InvalidRequest,
    RouterError,
    StreamInterrupted,
    UpstreamBadResponse,
    UpstreamStatusError,
)
from router.providers._caching import auto_mark, check_breakpoints, mark_last, marked, system_field
from router.providers._errors import note_early_close, refused_credentials, scrub
from router.providers._http import UpstreamClient, retry_after_seconds
from router.providers._sse import SSEParser, events_until_end
from router.providers._translate import append_turn, chosen_function, data_url, text_of, tool_arguments
from router.providers.base import UpstreamCall
from router.types import (
    AssistantMessage,
    ChatChunk,
    ChatCompletion,
    ChatRequest,
    Choice,
    ChunkChoice,
    ContentPart,
    Delta,
    FunctionCall,
    FunctionDef,
    FunctionDelta,
    Message,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# --- constants -----------------------------------------------------------------------------------

MESSAGES_PATH = "/v1/messages"
DEFAULT_VERSION = "2023-06-01"
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
THINKING_BUDGET = {"low": 1024, "medium": 4096, "high": 16384, "xhigh": 32000, "max": 32000}
JSON_OBJECT_INSTRUCTION = "Respond only with a single valid JSON object."
REFUSED = ("logit_bias", "prediction", "audio", "top_logprobs")

# --- wire types ----------------------------------------------------------------------------------


class _Block(msgspec.Struct):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None
    thinking: str | None = None


class _CacheCreation(msgspec.Struct):
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0


class _Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: _CacheCreation | None = None


class _Message(msgspec.Struct):
    id: str
    model: str
    content: list[_Block] = []
    stop_reason: str | None = None
    usage: _Usage = msgspec.field(default_factory=_Usage)


class _Delta(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    stop_reason: str | None = None


class _ErrorBody(msgspec.Struct):
    type: str = "api_error"
    message: str = ""


class _Event(msgspec.Struct):
    type: str
    message: _Message | None = None
    index: int | None = None
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _ErrorBody | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody | None = None


_encode = msgspec.json.Encoder().encode
_decode_message = msgspec.json.Decoder(_Message).decode
_decode_event = msgspec.json.Decoder(_Event).decode
_decode_error = msgspec.json.Decoder(_ErrorEnvelope).decode
_decode_any = msgspec.json.Decoder().decode

# --- request builder -----------------------------------------------------------------------------


def build_body(call: UpstreamCall, *, stream: bool) -> bytes:
    request = call.request
    _refuse_unsupported(request)
    groups, messages = _messages(request.messages)
    if messages:  # a top-level marker (OpenRouter's automatic caching): the conversation's end
        mark_last(messages[-1]["content"], request.cache_control)
    max_tokens = request.output_limit or call.model.max_output
    body: dict[str, Any] = {"model": call.model.upstream, "max_tokens": max_tokens, "messages": messages}
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_object":
        groups.append([{"type": "text", "text": JSON_OBJECT_INSTRUCTION}])
    elif fmt is not None and fmt.type == "json_schema":
        schema = fmt.json_schema.schema if fmt.json_schema and fmt.json_schema.schema is not None else {}
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    system = system_field(groups)
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    user = request.raw.get("safety_identifier") or request.user
    if isinstance(user, str) and user:
        body["metadata"] = {"user_id": user}
    if request.tools:
        body["tools"] = [_tool(i, t) for i, t in enumerate(request.tools)]
    choice = _tool_choice(request)
    if choice is not None:
        body["tool_choice"] = choice
    effort = request.raw.get("reasoning_effort")
    budget = THINKING_BUDGET.get(effort) if isinstance(effort, str) else None
    if budget is not None and budget < max_tokens:
        if request.temperature not in (None, 1, 1.0):
            raise InvalidRequest(
                "Anthropic models accept only temperature 1 with extended thinking (reasoning_effort).",
                param="temperature",
            )
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if stream:
        body["stream"] = True
    if call.model.auto_cache is not None:
        auto_mark(body, call.model.auto_cache)
    check_breakpoints(body)
    return _encode(body)


def _refuse_unsupported(request: ChatRequest) -> None:
    raw = request.raw
    if (request.n or 1) > 1:
        raise InvalidRequest("Anthropic models return one choice; 'n' must be 1.", param="n")
    if raw.get("logprobs"):
        raise InvalidRequest("Anthropic models do not return log probabilities.", param="logprobs")
    for name in REFUSED:
        if raw.get(name) is not None:
            raise InvalidRequest(f"'{name}' has no counterpart for Anthropic models.", param=name)
    if request.temperature is not None and request.temperature > 1:
        raise InvalidRequest("Anthropic models accept temperature from 0 to 1.", param="temperature")


def _messages(source: list[Message]) -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]:
    """The system prompt as the text blocks of each system message, and the conversation's turns."""
    system: list[list[dict[str, Any]]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(source):
        if message.role in ("system", "developer"):
            group = _system_blocks(message, i)
            if group:
                system.append(group)
            continue
        if message.role in ("tool", "function"):
            result = {
                "type": "tool_result",
                "tool_use_id": _tool_call_id(message, i),
                "content": text_of(message, i),
            }
            parts = message.content if isinstance(message.content, list) else []
            for control in (*(p.cache_control for p in parts), message.cache_control):
                marked(result, control)
            append_turn(turns, "user", [result], "content")
            continue
        blocks = _blocks(message, i)
        if message.role == "assistant":
            blocks += [_tool_use(tc, i, j) for j, tc in enumerate(message.tool_calls or [])]
        mark_last(blocks, message.cache_control)
        if blocks:
            append_turn(turns, "user" if message.role == "user" else "assistant", blocks, "content")
    return system, turns


def _system_blocks(message: Message, i: int) -> list[dict[str, Any]]:
    """A system or developer message's non-empty text parts as blocks, each with its breakpoint."""
    text_of(message, i)  # refuses parts that are not text
    content = message.content
    if isinstance(content, list):
        blocks = [marked({"type": "text", "text": p.text}, p.cache_control) for p in content if p.text]
    else:
        blocks = [{"type": "text", "text": content}] if content else []
    mark_last(blocks, message.cache_control)
    return blocks


def _tool_call_id(message: Message, i: int) -> str:
    if isinstance(message.tool_call_id, str) and message.tool_call_id:
        return message.tool_call_id
    raise InvalidRequest("A tool message needs 'tool_call_id'.", param=f"messages[{i}].tool_call_id")


def _blocks(message: Message, i: int) -> list[dict[str, Any]]:
    content = message.content
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [
        marked(b, part.cache_control)
        for j, part in enumerate(content)
        if (b := _part(part, f"messages[{i}].content[{j}]"))
    ]


def _part(part: ContentPart, param: str) -> dict[str, Any] | None:
    if part.type == "text":
        return {"type": "text", "text": part.text} if part.text else None
    if part.type == "refusal":
        return {"type": "text", "text": part.refusal} if part.refusal else None
    if part.type == "image_url" and part.image_url:
        url = part.image_url.url
        if url.startswith("data:"):
            mime, data = data_url(url, param)
            if mime not in IMAGE_TYPES:
                raise InvalidRequest(
                    f"Anthropic models accept images of type {', '.join(sorted(IMAGE_TYPES))}.", param=param
                )
            return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}
        if url.startswith(("https://", "http://")):
            return {"type": "image", "source": {"type": "url", "url": url}}
        raise InvalidRequest("An image URL must be https:// or a data: URL.", param=param)
    if part.type == "file" and part.file:
        file_data = part.file.file_data
        if isinstance(file_data, str):
            is_url = file_data.startswith("data:")
            mime, payload = data_url(file_data, param) if is_url else ("application/pdf", file_data)
            if mime != "application/pdf":
                raise InvalidRequest("Anthropic models accept PDF files only.", param=param)
            return {"type": "document", "source": {"type": "base64", "media_type": mime, "data": payload}}
        raise InvalidRequest("File ids cannot be sent to Anthropic models; send file_data.", param=param)
    raise InvalidRequest(
        f"Content of type '{part.type}' has no counterpart for Anthropic models.", param=param
    )


def _tool_use(call: ToolCall, i: int, j: int) -> dict[str, Any]:
    arguments = tool_arguments(call, i, j)
    block = {"type": "tool_use", "id": call.id, "name": call.function.name, "input": arguments}
    return marked(block, call.cache_control)


def _tool(i: int, tool: Tool) -> dict[str, Any]:
    if tool.type != "function" or not tool.function:
        raise InvalidRequest(
            f"Anthropic models accept function tools only, not '{tool.type}'.", param=f"tools[{i}]"
        )
    fn: FunctionDef = tool.function
    out: dict[str, Any] = {
        "name": fn.name,
        "input_schema": fn.parameters
        if isinstance(fn.parameters, dict)
        else {"type": "object", "properties": {}},
    }
    if isinstance(fn.description, str):
        out["description"] = fn.description
    return marked(out, tool.cache_mark)


def _tool_choice(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    out: dict[str, Any] | None
    if choice is None:
        out = None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif chosen_function(choice) is not None:
        out = {"type": "tool", "name": chosen_function(choice)}
    else:
        raise InvalidRequest("Unsupported tool_choice for Anthropic models.", param="tool_choice")
    if request.parallel_tool_calls is False and request.tools:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out


# --- response parser -----------------------------------------------------------------------------


def usage_of(usage: _Usage) -> Usage:
    """Anthropic's input_tokens exclude cache reads and writes; OpenAI's prompt_tokens include them.
    Reads are ``cached_tokens``; writes ``cache_write_tokens`` (OpenAI's and OpenRouter's name), with
    their TTL split under ``cache_creation_token_details`` (LiteLLM's) for the 1-hour write price."""
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    prompt = usage.input_tokens + read + written
    details: dict[str, Any] = {"cached_tokens": read, "cache_write_tokens": written}
    if written and usage.cache_creation is not None:
        details["cache_creation_token_details"] = msgspec.structs.asdict(usage.cache_creation)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=usage.output_tokens,
        total_tokens=prompt + usage.output_tokens,
        prompt_tokens_details=details,
        completion_tokens_details={"reasoning_tokens": 0},
    )


def parse_message(body: bytes, provider: str, created: int) -> ChatCompletion:
    try:
        message = _decode_message(body)
    except DECODE_ERRORS as exc:
        raise UpstreamBadResponse(
            f"provider '{provider}' sent an answer that is not a message: {exc}"
        ) from None
    texts = [b.text for b in message.content if b.type == "text" and b.text]
    thinking = [b.thinking for b in message.content if b.type == "thinking" and b.thinking]
    calls = [
        ToolCall(
            id=b.id or "", function=FunctionCall(name=b.name or "", arguments=_encode(b.input or {}).decode())
        )
        for b in message.content
        if b.type == "tool_use"
    ]
    reply = AssistantMessage(content="".join(texts) if texts else None)
    if calls:
        reply.tool_calls = calls
    if thinking:
        reply.reasoning_content = "".join(thinking)
    finish = FINISH.get(message.stop_reason or "end_turn", "stop")
    return ChatCompletion(
        id=message.id,
        created=created,
        model=message.model,
        choices=[Choice(index=0, message=reply, finish_reason=finish)],
        usage=usage_of(message.usage),
    )


# --- stream translator ---------------------------------------------------------------------------


class StreamTranslator:
    """Anthropic stream events → Chat Completions chunks. Pure: feed it SSE bytes, get chunks.

    Tool-call indexes are ordinals among tool calls (0, 1, …), not Anthropic block indexes.
    """

    def __init__(self, provider: str, created: int) -> None:
        self._parser = SSEParser()
        self._provider = provider
        self._created = created
        self._id = ""
        self._model = ""
        self._tools: dict[int, int] = {}
        self._input = _Usage()
        self.finished = False  # saw message_delta with the stop reason: the answer is whole
        self.done = False  # saw message_stop
        self.error: RouterError | None = None

    def feed(self, raw: bytes) -> list[ChatChunk]:
        chunks: list[ChatChunk] = []
        for sse in self._parser.feed(raw):
            try:
                event = _decode_event(sse.data)
            except DECODE_ERRORS:
                self.error = UpstreamBadResponse(
                    f"provider '{self._provider}' sent a stream event that is not JSON"
                )
                break
            if event.type == "error":
                message = event.error.message if event.error else "unknown error"
                self.error = StreamInterrupted(
                    f"provider '{self._provider}' reported an error mid-stream: {message}"
                )
                break
            chunk = self._translate(event)
            if chunk is not None:
                chunks.append(chunk)
        return chunks

    def _chunk(self, delta: Delta | None, finish: str | None = None) -> ChatChunk:
        choices = [] if delta is None else [ChunkChoice(index=0, delta=delta, finish_reason=finish)]
        return ChatChunk(id=self._id, created=self._created, model=self._model, choices=choices)

    def _translate(self, event: _Event) -> ChatChunk | None:
        kind = event.type
        if kind == "message_start" and event.message is not None:
            self._id, self._model = event.message.id, event.message.model
            self._input = event.message.usage
            return self._chunk(Delta(role="assistant", content=""))
        if kind == "content_block_start" and event.content_block is not None:
            block = event.content_block
            if block.type == "tool_use" and event.index is not None:
                ordinal = self._tools[event.index] = len(self._tools)
                call = ToolCallDelta(
                    index=ordinal,
                    id=block.id or "",
                    type="function",
                    function=FunctionDelta(name=block.name or "", arguments=""),
                )
                return self._chunk(Delta(tool_calls=[call]))
            return None
        if kind == "content_block_delta" and event.delta is not None:
            delta = event.delta
            if delta.type == "text_delta" and delta.text:
                return self._chunk(Delta(content=delta.text))
            if delta.type == "input_json_delta" and delta.partial_json and event.index in self._tools:
                call = ToolCallDelta(
                    index=self._tools[event.index], function=FunctionDelta(arguments=delta.partial_json)
                )
                return self._chunk(Delta(tool_calls=[call]))
            if delta.type == "thinking_delta" and delta.thinking:
                return self._chunk(Delta(reasoning_content=delta.thinking))
            return None
        if kind == "message_delta" and event.delta is not None:
            self._input = _cumulative(self._input, event.usage or _Usage())
            self.finished = True
            return self._chunk(Delta(), FINISH.get(event.delta.stop_reason or "end_turn", "stop"))
        if kind == "message_stop":
            self.done = True
            return self.usage_chunk()
        return None  # ping, content_block_stop, and event types added later

    def usage_chunk(self) -> ChatChunk:
        """The closing chunk with the answer's usage (sent at message_stop)."""
        chunk = self._chunk(None)
        chunk.usage = usage_of(self._input)
        return chunk

    def check_complete(self) -> None:
        if not self.finished:
            raise StreamInterrupted(f"provider '{self._provider}' ended the stream before message_stop")


def _cumulative(started: _Usage, delta: _Usage) -> _Usage:
    """message_start's usage updated by message_delta's, whose counts are cumulative: the output count
    always, the input and cache counts when present; the TTL split comes only with message_start."""
    read, written = delta.cache_read_input_tokens, delta.cache_creation_input_tokens
    return msgspec.structs.replace(
        started,
        output_tokens=delta.output_tokens,
        input_tokens=delta.input_tokens or started.input_tokens,
        cache_read_input_tokens=started.cache_read_input_tokens if read is None else read,
        cache_creation_input_tokens=started.cache_creation_input_tokens if written is None else written,
    )


# --- error mapper --------------------------------------------------------------------------------


def map_error(status: int, body: bytes, headers: Mapping[str, str], provider: Provider) -> RouterError:
    try:
        error = _decode_error(body).error
    except DECODE_ERRORS:
        error = None
    kind = error.type if error else "api_error"
    message = scrub(
        (error.message if error else "") or f"provider '{provider.name}' answered HTTP {status}", provider
    )
    if status in (401, 403):
        return refused_credentials(provider, message)
    retry_after = retry_after_seconds(headers)
    if status == 529 or kind == "overloaded_error":
        # OpenAI clients know 503 as "overloaded"; 529 is Anthropic's own.
        return UpstreamStatusError(
            503,
            message,
            error_type="overloaded_error",
            code="overloaded",
            retry_after=retry_after,
            provider=provider.name,
        )
    openai_type = {"rate_limit_error": "rate_limit_error", "api_error": "server_error"}.get(kind, kind)
    return UpstreamStatusError(
        status, message, error_type=openai_type, retry_after=retry_after, provider=provider.name
    )


# --- I/O -----------------------------------------------------------------------------------------


class AnthropicAdapter:
    """Chat Completions against Anthropic's Messages API."""

    def __init__(self, provider: Provider, client: UpstreamClient) -> None:
        self.provider = provider
        self._client = client
        self._url = provider.base_url + MESSAGES_PATH

    async def aclose(self) -> None:
        await self._client.aclose()

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "anthropic-version": DEFAULT_VERSION,
        }
        headers.update(self.provider.headers)
        if self.provider.api_key:
            headers["x-api-key"] = self.provider.api_key
        return headers

    async def complete(self, call: UpstreamCall) -> ChatCompletion:
        answer = await self._client.post(self._url, self._headers(False), build_body(call, stream=False))
        if answer.status >= 400:
            raise map_error(answer.status, answer.body, answer.headers, self.provider)
        return parse_message(answer.body, self.provider.name, call.created)

    async def stream(self, call: UpstreamCall) -> AsyncGenerator[ChatChunk, None]:
        body = build_body(call, stream=True)
        async with self._client.stream(self._url, self._headers(True), body) as response:
            if response.status >= 400:
                raise map_error(response.status, await response.read(), response.headers, self.provider)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                raise UpstreamBadResponse(
                    f"provider '{self.provider.name}' did not answer with an event stream"
                )
            translator = StreamTranslator(self.provider.name, call.created)
            early = partial(
                note_early_close, self.provider.name, call.model.id, call.request_id, "message_stop"
            )
            async for chunk in events_until_end(response.chunks(), translator, early):
                yield chunk
            if not translator.done:
                # The stop reason and the output count came in message_delta: the answer is whole.
                yield translator.usage_chunk()
