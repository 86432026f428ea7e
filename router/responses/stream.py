"""Streams between the two APIs: chat chunks → Responses events, and Responses events → chat chunks.

Events are plain dicts without ``sequence_number``: the encoder numbers them as it writes them, so
native and translated streams number the same way. See the reference's §3 and §4.3.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from router.errors import DECODE_ERRORS, RouterError, StreamInterrupted, UpstreamBadResponse
from router.responses.answer import (
    WireResponse,
    chat_finish,
    chat_usage,
    finish_status,
    function_call_item,
    new_id,
    usage_of,
)
from router.types import ChatChunk, ChunkChoice, Delta, FunctionDelta, ToolCallDelta, Usage

Event = dict[str, Any]

# Events that carry model output: a stream's commit point is the first of them.
OUTPUT_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
    }
)
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def carries_output(event: Event) -> bool:
    kind = event.get("type")
    if kind in OUTPUT_DELTAS:
        return True
    if kind == "response.output_item.added":
        return (event.get("item") or {}).get("type") == "function_call"
    return kind in TERMINAL_EVENTS and bool((event.get("response") or {}).get("output"))


def output_tokens(event: Event) -> int | None:
    if event.get("type") in TERMINAL_EVENTS:
        usage = (event.get("response") or {}).get("usage")
        if isinstance(usage, dict):
            return int(usage.get("output_tokens") or 0)
    return None


class _Open:
    """The output item being written."""

    __slots__ = ("arguments", "call_id", "content_index", "index", "item_id", "kind", "name", "part", "text")

    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind = kind  # "message" or "function_call"
        self.index = index
        self.item_id = item_id
        self.part: str | None = None  # the open content part: "output_text" or "refusal"
        self.content_index = -1
        self.text = ""  # of the open part
        self.call_id = ""
        self.name = ""
        self.arguments = ""


class ChatToResponses:
    """Chat Completions chunks in, Responses stream events out (one choice: index 0)."""

    def __init__(self, base: Event) -> None:
        self.response = copy.deepcopy(base)
        self.output: list[Event] = self.response["output"]
        self._open: _Open | None = None
        self._message_parts: list[Event] = []
        self._calls: dict[int, _Open] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def start(self) -> list[Event]:
        snapshot = copy.deepcopy(self.response)
        return [
            {"type": "response.created", "response": snapshot},
            {"type": "response.in_progress", "response": copy.deepcopy(snapshot)},
        ]

    def feed(self, chunk: ChatChunk) -> list[Event]:
        events: list[Event] = []
        if isinstance(chunk.usage, Usage):
            self.usage = chunk.usage
        if isinstance(chunk.service_tier, str):
            self.response["service_tier"] = chunk.service_tier
        if isinstance(chunk.model, str) and chunk.model:
            self.response["model"] = chunk.model
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta.content:
                self._text("output_text", delta.content, events)
            if delta.refusal:
                self._text("refusal", delta.refusal, events)
            if isinstance(delta.tool_calls, list):
                for call in delta.tool_calls:
                    self._tool_call(call, events)
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
        return events

    def _text(self, part: str, text: str, events: list[Event]) -> None:
        current = self._open
        if current is None or current.kind != "message":
            self._close(events)
            current = self._open = _Open("message", len(self.output), new_id("msg"))
            self._message_parts = []
            item = {"type": "message", "id": current.item_id, "status": "in_progress", "role": "assistant"}
            self.output.append({**item, "content": []})
            events.append({"type": "response.output_item.added", "output_index": current.index,
                           "item": {**item, "content": []}})  # fmt: skip
        if current.part != part:
            self._close_part(events)
            current.part = part
            current.content_index += 1
            current.text = ""
            empty = _part(part, "")
            events.append(
                {
                    "type": "response.content_part.added",
                    "item_id": current.item_id,
                    "output_index": current.index,
                    "content_index": current.content_index,
                    "part": empty,
                }
            )
        current.text += text
        event: Event = {
            "type": "response.output_text.delta" if part == "output_text" else "response.refusal.delta",
            "item_id": current.item_id,
            "output_index": current.index,
            "content_index": current.content_index,
            "delta": text,
        }
        if part == "output_text":
            event["logprobs"] = []
        events.append(event)

    def _tool_call(self, call: ToolCallDelta, events: list[Event]) -> None:
        state = self._calls.get(call.index)
        function = call.function if isinstance(call.function, FunctionDelta) else None
        if state is None:
            self._close(events)
            state = self._open = _Open("function_call", len(self.output), new_id("fc"))
            self._calls[call.index] = state
            state.call_id = call.id if isinstance(call.id, str) else new_id("call")
            state.name = function.name if function and isinstance(function.name, str) else ""
            item = function_call_item(state.item_id, state.call_id, state.name, "", "in_progress")
            self.output.append(dict(item))
            events.append({"type": "response.output_item.added", "output_index": state.index, "item": item})
        arguments = function.arguments if function and isinstance(function.arguments, str) else ""
        if arguments:
            state.arguments += arguments
            events.append(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": state.item_id,
                    "output_index": state.index,
                    "delta": arguments,
                }
            )

    def _close_part(self, events: list[Event]) -> None:
        current = self._open
        if current is None or current.part is None:
            return
        base = {
            "item_id": current.item_id,
            "output_index": current.index,
            "content_index": current.content_index,
        }
        if current.part == "output_text":
            events.append({"type": "response.output_text.done", **base, "text": current.text, "logprobs": []})
        else:
            events.append({"type": "response.refusal.done", **base, "refusal": current.text})
        part = _part(current.part, current.text)
        self._message_parts.append(part)
        events.append({"type": "response.content_part.done", **base, "part": part})
        current.part = None

    def _close(self, events: list[Event]) -> None:
        current = self._open
        if current is None:
            return
        if current.kind == "message":
            self._close_part(events)
            item = {
                "type": "message",
                "id": current.item_id,
                "status": "completed",
                "role": "assistant",
                "content": self._message_parts,
            }
        else:
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": current.item_id,
                    "name": current.name,
                    "output_index": current.index,
                    "arguments": current.arguments,
                }
            )
            item = function_call_item(
                current.item_id, current.call_id, current.name, current.arguments, "completed"
            )
        self.output[current.index] = item
        events.append(
            {"type": "response.output_item.done", "output_index": current.index, "item": copy.deepcopy(item)}
        )
        self._open = None

    def finish(self, completed_at: int) -> list[Event]:
        events: list[Event] = []
        self._close(events)
        status, incomplete = finish_status(self.finish_reason)
        self.response.update(
            status=status,
            incomplete_details=incomplete,
            completed_at=completed_at if status == "completed" else None,
        )
        usage = usage_of(self.usage)
        if usage is not None:
            self.response["usage"] = usage
        kind = "response.completed" if status == "completed" else "response.incomplete"
        events.append({"type": kind, "response": copy.deepcopy(self.response)})
        return events


def _part(kind: str, text: str) -> Event:
    if kind == "output_text":
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"type": "refusal", "refusal": text}


def failed_event(response: Event, message: str, code: str = "server_error") -> Event:
    """The terminal event of a stream that broke after its commit point."""
    failed = copy.deepcopy(response)
    for item in failed.get("output") or ():
        if item.get("status") == "in_progress":
            item["status"] = "incomplete"
    failed.update(status="failed", error={"code": code, "message": message}, completed_at=None)
    return {"type": "response.failed", "response": failed}


# --- Responses events → chat chunks ------------------------------------------------------------------


class _EventView(msgspec.Struct):
    type: str
    delta: str | None = None
    item_id: str | None = None
    item: dict[str, Any] | None = None
    response: WireResponse | None = None
    message: str | None = None
    code: str | None = None


_decode_event = msgspec.json.Decoder(_EventView).decode


class ResponsesToChat:
    """A Responses event stream read as Chat Completions chunks, for a chat client of a
    Responses-only model. Raises on a failed or error event; ``done`` once a terminal event arrived."""

    def __init__(self, provider: str, created: int) -> None:
        self.provider = provider
        self.id = "chatcmpl-" + new_id("r")
        self.model = ""
        self.created = created
        self.done = False
        self._calls: dict[str, int] = {}  # item id → tool call index
        self._role_sent = False

    def feed(self, data: bytes) -> list[ChatChunk]:
        try:
            event = _decode_event(data)
        except DECODE_ERRORS:
            raise UpstreamBadResponse(
                f"provider '{self.provider}' sent a Responses stream event that is not valid"
            ) from None
        kind = event.type
        if kind in ("response.created", "response.in_progress") and event.response is not None:
            self.id = "chatcmpl-" + event.response.id.removeprefix("resp_")
            self.model = event.response.model
            self.created = event.response.created_at or self.created
            return []
        if kind == "response.output_text.delta" and event.delta:
            return [self._chunk(Delta(content=event.delta))]
        if kind == "response.refusal.delta" and event.delta:
            return [self._chunk(Delta(refusal=event.delta))]
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta") and event.delta:
            return [self._chunk(Delta(reasoning_content=event.delta))]
        if kind == "response.output_item.added" and event.item and event.item.get("type") == "function_call":
            index = len(self._calls)
            self._calls[str(event.item.get("id"))] = index
            call = ToolCallDelta(
                index=index,
                id=str(event.item.get("call_id") or new_id("call")),
                type="function",
                function=FunctionDelta(name=str(event.item.get("name") or ""), arguments=""),
            )
            return [self._chunk(Delta(tool_calls=[call]))]
        if kind == "response.function_call_arguments.delta" and event.delta:
            index = self._calls.get(str(event.item_id), 0)
            call = ToolCallDelta(index=index, function=FunctionDelta(arguments=event.delta))
            return [self._chunk(Delta(tool_calls=[call]))]
        if kind in ("response.completed", "response.incomplete") and event.response is not None:
            self.done = True
            response = event.response
            finish = chat_finish(response.status, response.incomplete_details, bool(self._calls))
            chunks = [self._chunk(Delta(), finish)]
            usage = chat_usage(response.usage)
            if usage is not None:
                chunks.append(self._chunk(None, usage=usage))
            return chunks
        if kind == "response.failed" or kind == "error":
            raise self._failure(event)
        return []

    def _failure(self, event: _EventView) -> RouterError:
        message = event.message
        if event.response is not None and event.response.error:
            message = str(event.response.error.get("message") or message)
        return StreamInterrupted(
            f"provider '{self.provider}' reported an error mid-stream: {message or 'unknown'}"
        )

    def _chunk(self, delta: Delta | None, finish: str | None = None, usage: Usage | None = None) -> ChatChunk:
        choices: list[ChunkChoice] = []
        if delta is not None:
            if not self._role_sent:
                delta.role = "assistant"
                self._role_sent = True
            choices.append(ChunkChoice(index=0, delta=delta, finish_reason=finish))
        chunk = ChatChunk(id=self.id, created=self.created, model=self.model, choices=choices)
        if usage is not None:
            chunk.usage = usage
        return chunk
