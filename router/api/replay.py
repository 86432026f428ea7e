"""Chat Completions and legacy Completions answers for the response cache: which answers may be kept,
a stream's chunks assembled into the whole answer, and a whole answer replayed as stream chunks.

Kept: answers whose every choice finished (``stop``, ``length``: the request's own limit, or a tool
call) with some output. Not kept: a content-filtered choice, a choice without output, a stream
that used the deprecated ``function_call`` delta. A replayed stream has the answer's id, model and
usage; each choice comes as its reasoning (if any), then its whole text, refusal and tool calls in
one delta, then its finish, and the usage chunk last (sent only when the client asked for it).
"""

from __future__ import annotations

from typing import Any

import msgspec

from router.types import (
    AssistantMessage,
    ChatChunk,
    ChatCompletion,
    Choice,
    ChunkChoice,
    CompletionChoice,
    Delta,
    FunctionCall,
    FunctionDelta,
    TextCompletion,
    ToolCall,
    ToolCallDelta,
    Usage,
)

CHAT_FINISHES = frozenset({"stop", "length", "tool_calls", "function_call"})
TEXT_FINISHES = frozenset({"stop", "length"})

_encode = msgspec.json.Encoder().encode
_decode_chat = msgspec.json.Decoder(ChatCompletion).decode
_decode_text = msgspec.json.Decoder(TextCompletion).decode

# --- which answers are kept -------------------------------------------------------------------------


def chat_keeps(answer: ChatCompletion) -> bool:
    return bool(answer.choices) and all(
        choice.finish_reason in CHAT_FINISHES and _has_output(choice.message) for choice in answer.choices
    )


def _has_output(message: AssistantMessage) -> bool:
    return bool(message.content or message.tool_calls or message.refusal or message.function_call)


def text_keeps(answer: TextCompletion) -> bool:
    return bool(answer.choices) and all(choice.finish_reason in TEXT_FINISHES for choice in answer.choices)


# --- chat: chunks → answer → chunks -----------------------------------------------------------------


class _Call:
    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id = ""
        self.type = "function"
        self.name = ""
        self.arguments: list[str] = []


class _ChatChoice:
    __slots__ = ("calls", "content", "finish", "logprobs", "reasoning", "reasoning_content", "refusal")

    def __init__(self) -> None:
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.reasoning_content: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, _Call] = {}
        self.finish: str | None = None
        self.logprobs: dict[str, list[Any]] = {}


class ChatAssembler:
    """A chat stream's chunks put back together as the Chat Completion a JSON request gets."""

    __slots__ = ("_broken", "_choices", "_fingerprint", "_first", "_tier", "_usage")

    def __init__(self) -> None:
        self._first: ChatChunk | None = None
        self._choices: dict[int, _ChatChoice] = {}
        self._usage: Usage | None = None
        self._tier: str | None = None
        self._fingerprint: str | None = None
        self._broken = False

    def feed(self, chunk: ChatChunk) -> None:
        if self._first is None:
            self._first = chunk
        if isinstance(chunk.usage, Usage):
            self._usage = chunk.usage
        if isinstance(chunk.service_tier, str):
            self._tier = chunk.service_tier
        if isinstance(chunk.system_fingerprint, str):
            self._fingerprint = chunk.system_fingerprint
        for choice in chunk.choices:
            parts = self._choices.get(choice.index)
            if parts is None:
                parts = self._choices[choice.index] = _ChatChoice()
            self._delta(choice.delta, parts)
            if choice.finish_reason is not None:
                parts.finish = choice.finish_reason
            _merge_logprobs(parts.logprobs, choice.logprobs)

    def _delta(self, delta: Delta, parts: _ChatChoice) -> None:
        for text, into in (
            (delta.content, parts.content),
            (delta.refusal, parts.refusal),
            (delta.reasoning_content, parts.reasoning_content),
            (delta.reasoning, parts.reasoning),
        ):
            if isinstance(text, str) and text:
                into.append(text)
        if delta.function_call not in (msgspec.UNSET, None):
            self._broken = True  # the deprecated form: not reassembled, so not kept
        if isinstance(delta.tool_calls, list):
            for call in delta.tool_calls:
                state = parts.calls.get(call.index)
                if state is None:
                    state = parts.calls[call.index] = _Call()
                if isinstance(call.id, str) and call.id:
                    state.id = call.id
                if isinstance(call.type, str) and call.type:
                    state.type = call.type
                function = call.function
                if isinstance(function, FunctionDelta):
                    if isinstance(function.name, str) and function.name:
                        state.name = function.name
                    if isinstance(function.arguments, str):
                        state.arguments.append(function.arguments)

    def completion(self) -> ChatCompletion | None:
        first = self._first
        if first is None or self._broken or not self._choices:
            return None
        choices = [_chat_choice(index, self._choices[index]) for index in sorted(self._choices)]
        return ChatCompletion(
            id=first.id,
            created=first.created,
            model=first.model,
            choices=choices,
            usage=self._usage if self._usage is not None else msgspec.UNSET,
            service_tier=self._tier if self._tier is not None else msgspec.UNSET,
            system_fingerprint=self._fingerprint if self._fingerprint is not None else msgspec.UNSET,
        )

    def answer(self) -> bytes | None:
        completion = self.completion()
        return _encode(completion) if completion is not None and chat_keeps(completion) else None


def _chat_choice(index: int, parts: _ChatChoice) -> Choice:
    calls = [
        ToolCall(id=c.id, type=c.type, function=FunctionCall(name=c.name, arguments="".join(c.arguments)))
        for _, c in sorted(parts.calls.items())
    ]
    message = AssistantMessage(
        content="".join(parts.content) or None,
        refusal="".join(parts.refusal) or None,
        tool_calls=calls or msgspec.UNSET,
        reasoning_content="".join(parts.reasoning_content) or msgspec.UNSET,
        reasoning="".join(parts.reasoning) or msgspec.UNSET,
    )
    logprobs = {"content": None, "refusal": None, **parts.logprobs} if parts.logprobs else None
    return Choice(index=index, message=message, finish_reason=parts.finish, logprobs=logprobs)


def _merge_logprobs(into: dict[str, list[Any]], logprobs: Any) -> None:
    """Log probabilities arrive as lists per chunk (``content``, ``refusal``; the legacy API's
    ``tokens``, ``token_logprobs``, ``top_logprobs``, ``text_offset``): the answer has them joined."""
    if not isinstance(logprobs, dict):
        return
    for name, values in logprobs.items():
        if isinstance(values, list):
            into.setdefault(name, []).extend(values)


def chat_chunks(body: bytes) -> list[ChatChunk]:
    """A kept Chat Completion (its JSON body) as the chunks of its stream."""
    answer = _decode_chat(body)

    def chunk(choices: list[ChunkChoice]) -> ChatChunk:
        return ChatChunk(
            id=answer.id,
            created=answer.created,
            model=answer.model,
            choices=choices,
            service_tier=answer.service_tier,
            system_fingerprint=answer.system_fingerprint,
        )

    chunks: list[ChatChunk] = []
    for choice in answer.choices:
        message = choice.message
        index = choice.index
        reasons = bool(message.reasoning_content or message.reasoning)
        if reasons:
            delta = Delta(role="assistant", reasoning_content=message.reasoning_content)
            if message.reasoning:
                delta.reasoning = message.reasoning
            chunks.append(chunk([ChunkChoice(index=index, delta=delta)]))
        delta = Delta(content=message.content)
        if not reasons:
            delta.role = "assistant"
        if message.refusal:
            delta.refusal = message.refusal
        if isinstance(message.tool_calls, list):
            delta.tool_calls = [
                ToolCallDelta(
                    index=i,
                    id=call.id,
                    type=call.type,
                    function=FunctionDelta(name=call.function.name, arguments=call.function.arguments),
                )
                for i, call in enumerate(message.tool_calls)
            ]
        chunks.append(chunk([ChunkChoice(index=index, delta=delta, logprobs=choice.logprobs)]))
        chunks.append(chunk([ChunkChoice(index=index, delta=Delta(), finish_reason=choice.finish_reason)]))
    if isinstance(answer.usage, Usage):
        usage = chunk([])
        usage.usage = answer.usage
        chunks.append(usage)
    return chunks


# --- legacy completions: chunks → answer → chunks ---------------------------------------------------


class _TextChoice:
    __slots__ = ("finish", "logprobs", "text")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.finish: str | None = None
        self.logprobs: dict[str, list[Any]] = {}


class TextAssembler:
    """A legacy completions stream put back together as the answer a JSON request gets."""

    __slots__ = ("_choices", "_fingerprint", "_first", "_usage")

    def __init__(self) -> None:
        self._first: TextCompletion | None = None
        self._choices: dict[int, _TextChoice] = {}
        self._usage: Usage | None = None
        self._fingerprint: str | None = None

    def feed(self, chunk: TextCompletion) -> None:
        if self._first is None:
            self._first = chunk
        if isinstance(chunk.usage, Usage):
            self._usage = chunk.usage
        if isinstance(chunk.system_fingerprint, str):
            self._fingerprint = chunk.system_fingerprint
        for choice in chunk.choices:
            parts = self._choices.get(choice.index)
            if parts is None:
                parts = self._choices[choice.index] = _TextChoice()
            if choice.text:
                parts.text.append(choice.text)
            if choice.finish_reason is not None:
                parts.finish = choice.finish_reason
            _merge_logprobs(parts.logprobs, choice.logprobs)

    def completion(self) -> TextCompletion | None:
        first = self._first
        if first is None or not self._choices:
            return None
        choices = [
            CompletionChoice(
                text="".join(parts.text),
                index=index,
                logprobs=parts.logprobs or None,
                finish_reason=parts.finish,
            )
            for index, parts in sorted(self._choices.items())
        ]
        return TextCompletion(
            id=first.id,
            created=first.created,
            model=first.model,
            choices=choices,
            usage=self._usage if self._usage is not None else msgspec.UNSET,
            system_fingerprint=self._fingerprint if self._fingerprint is not None else msgspec.UNSET,
        )

    def answer(self) -> bytes | None:
        completion = self.completion()
        return _encode(completion) if completion is not None and text_keeps(completion) else None


def text_chunks(body: bytes) -> list[TextCompletion]:
    """A kept legacy completion (its JSON body) as the events of its stream: one per choice."""
    answer = _decode_text(body)
    chunks = [
        TextCompletion(
            id=answer.id,
            created=answer.created,
            model=answer.model,
            choices=[choice],
            system_fingerprint=answer.system_fingerprint,
        )
        for choice in answer.choices
    ]
    if isinstance(answer.usage, Usage):
        chunks.append(
            TextCompletion(
                id=answer.id,
                created=answer.created,
                model=answer.model,
                choices=[],
                usage=answer.usage,
                system_fingerprint=answer.system_fingerprint,
            )
        )
    return chunks
