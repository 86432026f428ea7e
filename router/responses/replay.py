"""Responses for the response cache: which Responses may be kept, the final Response of a stream, and
a whole Response replayed as the event sequence of its stream (see the reference's §3).

Kept: a ``completed`` Response, or one ``incomplete`` for the request's own ``max_output_tokens``,
with a message or a function call in its output. Not kept: a ``failed`` one, one stopped by a
content filter, one without visible output. A replay sends each output item whole: added, its
content (one delta per part), done; then the terminal event with the Response and its usage.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

Event = dict[str, Any]

_encode = msgspec.json.Encoder().encode
VISIBLE_ITEMS = frozenset({"message", "function_call"})


def response_keeps(response: Event) -> bool:
    status = response.get("status")
    if status == "incomplete":
        details = response.get("incomplete_details")
        if not isinstance(details, dict) or details.get("reason") != "max_output_tokens":
            return False
    elif status != "completed":
        return False
    output = response.get("output")
    return isinstance(output, list) and any(
        isinstance(item, dict) and item.get("type") in VISIBLE_ITEMS for item in output
    )


class FinalResponse:
    """A Responses stream's final Response, as the JSON answer a non-streaming request gets."""

    __slots__ = ("_final",)

    def __init__(self) -> None:
        self._final: Event | None = None

    def feed(self, event: Event) -> None:
        if event.get("type") in ("response.completed", "response.incomplete"):
            response = event.get("response")
            self._final = response if isinstance(response, dict) else None

    def answer(self) -> bytes | None:
        final = self._final
        return _encode(final) if final is not None and response_keeps(final) else None


def response_events(response: Event) -> list[Event]:
    """``response`` (whole) as its stream: created, in progress, each output item, then the terminal
    event. Events carry no ``sequence_number``: the writer numbers them as it sends them."""
    start = copy.deepcopy(response)
    start.update(status="in_progress", output=[], incomplete_details=None, error=None)
    start.pop("usage", None)
    start.pop("completed_at", None)
    events: list[Event] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": copy.deepcopy(start)},
    ]
    for index, item in enumerate(response.get("output") or ()):
        if isinstance(item, dict):
            events.extend(_item_events(index, item))
    kind = "response.completed" if response.get("status") == "completed" else "response.incomplete"
    events.append({"type": kind, "response": response})
    return events


def _item_events(index: int, item: Event) -> list[Event]:
    kind = item.get("type")
    item_id = item.get("id")
    events: list[Event] = []
    if kind == "message":
        events.append(_added(index, {**item, "status": "in_progress", "content": []}))
        for content_index, part in enumerate(item.get("content") or ()):
            if isinstance(part, dict):
                base = {"item_id": item_id, "output_index": index, "content_index": content_index}
                events.extend(_part_events(base, part))
    elif kind == "function_call":
        events.append(_added(index, {**item, "arguments": "", "status": "in_progress"}))
        arguments = str(item.get("arguments") or "")
        base = {"item_id": item_id, "output_index": index}
        if arguments:
            events.append({"type": "response.function_call_arguments.delta", **base, "delta": arguments})
        done = {"type": "response.function_call_arguments.done", **base, "arguments": arguments}
        events.append({**done, "name": item.get("name")})
    elif kind == "reasoning":
        started = {key: value for key, value in item.items() if key != "encrypted_content"}
        events.append(_added(index, {**started, "summary": []}))
        for summary_index, part in enumerate(item.get("summary") or ()):
            if isinstance(part, dict):
                base = {"item_id": item_id, "output_index": index, "summary_index": summary_index}
                events.extend(_summary_events(base, part))
    else:
        events.append(_added(index, item))
    events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return events


def _added(index: int, item: Event) -> Event:
    return {"type": "response.output_item.added", "output_index": index, "item": item}


def _part_events(base: Event, part: Event) -> list[Event]:
    kind = part.get("type")
    if kind == "output_text":
        text = str(part.get("text") or "")
        logprobs = part.get("logprobs") or []
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        events = [{"type": "response.content_part.added", **base, "part": empty}]
        if text:
            delta = {"type": "response.output_text.delta", **base, "delta": text, "logprobs": logprobs}
            events.append(delta)
        events.append({"type": "response.output_text.done", **base, "text": text, "logprobs": logprobs})
    elif kind == "refusal":
        refusal = str(part.get("refusal") or "")
        events = [{"type": "response.content_part.added", **base, "part": {"type": "refusal", "refusal": ""}}]
        if refusal:
            events.append({"type": "response.refusal.delta", **base, "delta": refusal})
        events.append({"type": "response.refusal.done", **base, "refusal": refusal})
    else:
        events = [{"type": "response.content_part.added", **base, "part": part}]
    events.append({"type": "response.content_part.done", **base, "part": part})
    return events


def _summary_events(base: Event, part: Event) -> list[Event]:
    text = str(part.get("text") or "")
    empty = {"type": "summary_text", "text": ""}
    events: list[Event] = [{"type": "response.reasoning_summary_part.added", **base, "part": empty}]
    if text:
        events.append({"type": "response.reasoning_summary_text.delta", **base, "delta": text})
    events.append({"type": "response.reasoning_summary_text.done", **base, "text": text})
    events.append({"type": "response.reasoning_summary_part.done", **base, "part": part})
    return events
