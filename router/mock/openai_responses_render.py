"""Renders one Responses API answer: the ``Response`` object at each stage and its paced SSE events,
including the ``error`` and ``response.failed`` events of a ``stream_error`` fault.
"""

from __future__ import annotations

import base64
import time
from typing import Any, Final

import msgspec

from router.mock.faultspec import Fault
from router.mock.openai_responses_request import ENCRYPTED_REASONING, Parsed, ResponsesRequest
from router.mock.openai_wire import STREAM_ERROR_MESSAGE, served_tier
from router.mock.streaming import FIRST, Pace
from router.mock.textgen import Reply

# ResponseErrorCode values a failed response may carry; anything else becomes server_error.
_ERROR_CODES: Final = frozenset(
    {"server_error", "rate_limit_exceeded", "invalid_prompt", "vector_store_timeout", "invalid_image"}
)


def _usage(reply: Reply, cached: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _sse(payload: dict[str, Any]) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (payload["type"].encode(), msgspec.json.encode(payload))


class _EventList:
    """Stream events numbered from 0, each tagged with its pace: the first content event waits for the
    first token, each later content event one piece interval more; the others go at once."""

    __slots__ = ("_paced", "items")

    def __init__(self) -> None:
        self.items: list[tuple[bytes, Pace]] = []
        self._paced = 0

    def add(self, kind: str, *, content: bool = False, **fields: Any) -> None:
        pace: Pace = None
        if content:
            pace = FIRST if self._paced == 0 else self._paced
            self._paced += 1
        self.items.append((_sse({"type": kind, "sequence_number": len(self.items), **fields}), pace))


class Renderer:
    """Renders one answer: the ``Response`` object at each stage and the stream events."""

    __slots__ = ("_cached", "_created", "_hex", "_parsed", "_reply", "_req", "_tier")

    def __init__(
        self, req: ResponsesRequest, parsed: Parsed, reply: Reply, hex_id: str, cached: int = 0
    ) -> None:
        self._req = req
        self._parsed = parsed
        self._reply = reply
        self._hex = hex_id
        self._cached = cached  # prompt tokens read from the prompt cache
        self._created = int(time.time())
        self._tier = served_tier(req.service_tier) or "default"

    @property
    def incomplete(self) -> bool:
        return self._reply.finish == "length"

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        *,
        error: dict[str, str] | None = None,
        final: bool = False,
    ) -> dict[str, Any]:
        """The ``Response`` object; ``final`` adds usage (a response in progress has none)."""
        req = self._req
        body: dict[str, Any] = {
            "id": f"resp_{self._hex}",
            "object": "response",
            "created_at": self._created,
            "status": status,
            "background": False,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "max_tool_calls": req.max_tool_calls,
            "model": req.model,
            "output": output,
            "parallel_tool_calls": True if req.parallel_tool_calls is None else req.parallel_tool_calls,
            "previous_response_id": None,
            "prompt_cache_key": req.prompt_cache_key,
            "reasoning": self._parsed.reasoning,
            "safety_identifier": req.safety_identifier,
            "service_tier": self._tier,
            "store": True if req.store is None else req.store,
            "temperature": 1.0 if req.temperature is None else req.temperature,
            "text": self._parsed.text,
            "tool_choice": "auto" if req.tool_choice is None else req.tool_choice,
            "tools": self._parsed.tools,
            "top_logprobs": 0 if req.top_logprobs is None else req.top_logprobs,
            "top_p": 1.0 if req.top_p is None else req.top_p,
            "truncation": req.truncation or "disabled",
        }
        if final:
            body["usage"] = _usage(self._reply, self._cached)
        if req.user is not None:
            body["user"] = req.user
        body["metadata"] = req.metadata or {}
        return body

    def _reasoning_item(self, *, done: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"id": f"rs_{self._hex}", "type": "reasoning", "summary": []}
        if done and ENCRYPTED_REASONING in (self._req.include or ()):
            item["encrypted_content"] = base64.b64encode(f"mock-reasoning:{self._hex}".encode()).decode()
        return item

    def _message_item(self, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": f"msg_{self._hex}",
            "type": "message",
            "status": status,
            "content": content,
            "role": "assistant",
        }

    def _call_id(self, index: int) -> str:
        return f"fc_{self._hex[:20]}{index:04x}"

    def _call_item(self, index: int, status: str, arguments: str) -> dict[str, Any]:
        call = self._reply.tool_calls[index]
        return {
            "id": self._call_id(index),
            "type": "function_call",
            "status": status,
            "arguments": arguments,
            "call_id": call.id,
            "name": call.name,
        }

    def output(self) -> list[dict[str, Any]]:
        """The finished output items: a reasoning item for reasoning models, then calls or a message."""
        items = [self._reasoning_item(done=True)] if self._parsed.reasons else []
        reply = self._reply
        if reply.tool_calls:
            items += [self._call_item(i, "completed", c.arguments) for i, c in enumerate(reply.tool_calls)]
        else:
            status = "incomplete" if self.incomplete else "completed"
            items.append(self._message_item(status, [_text_part(reply.text)]))
        return items

    def final(self) -> dict[str, Any]:
        """The finished ``Response``: completed, or incomplete when the output token limit cut it."""
        return self.response("incomplete" if self.incomplete else "completed", self.output(), final=True)

    def events(self) -> list[tuple[bytes, Pace]]:
        """Every stream event before the terminal one, paced: the first content waits for the first
        token, then each delta one piece interval after the previous; the rest go at once."""
        events = _EventList()
        add = events.add
        in_progress = self.response("in_progress", [])
        add("response.created", response=in_progress)
        add("response.in_progress", response=in_progress)
        index = 0
        if self._parsed.reasons:
            add("response.output_item.added", output_index=0, item=self._reasoning_item(done=False))
            add("response.output_item.done", output_index=0, item=self._reasoning_item(done=True))
            index = 1
        reply = self._reply
        for number, call in enumerate(reply.tool_calls):
            at, item_id, args = index + number, self._call_id(number), call.arguments
            added = self._call_item(number, "in_progress", "")
            add("response.output_item.added", content=True, output_index=at, item=added)
            step = max(1, min(16, (len(args) + 1) // 2))  # always at least two fragments, as on chat
            for start in range(0, len(args), step):
                delta = args[start : start + step]
                add("response.function_call_arguments.delta", content=True, item_id=item_id, output_index=at,
                    delta=delta)  # fmt: skip
            add("response.function_call_arguments.done", item_id=item_id, name=call.name, output_index=at,
                arguments=args)  # fmt: skip
            add("response.output_item.done", output_index=at, item=self._call_item(number, "completed", args))
        if not reply.tool_calls:
            where: dict[str, Any] = {"item_id": f"msg_{self._hex}", "output_index": index, "content_index": 0}
            add("response.output_item.added", output_index=index, item=self._message_item("in_progress", []))
            add("response.content_part.added", **where, part=_text_part(""))
            for piece in reply.pieces:
                add("response.output_text.delta", content=True, **where, delta=piece, logprobs=[])
            text = reply.text
            add("response.output_text.done", content=not reply.pieces, **where, text=text, logprobs=[])
            add("response.content_part.done", **where, part=_text_part(text))
            status = "incomplete" if self.incomplete else "completed"
            item = self._message_item(status, [_text_part(text)])
            add("response.output_item.done", output_index=index, item=item)
        return events.items

    def terminal(self, sequence_number: int) -> bytes:
        """``response.completed`` (or ``response.incomplete``) with the whole response."""
        final = self.final()
        kind = "response.incomplete" if self.incomplete else "response.completed"
        return _sse({"type": kind, "sequence_number": sequence_number, "response": final})

    def failure(self, fault: Fault, sequence_number: int) -> bytes:
        """A ``stream_error`` fault: an ``error`` event, then ``response.failed`` (the fault's fields
        override the default code and message)."""
        code = fault.code if fault.code is not None else "server_error"
        message = fault.message if fault.message is not None else STREAM_ERROR_MESSAGE
        error = {
            "type": "error",
            "sequence_number": sequence_number,
            "code": code,
            "message": message,
            "param": fault.param,
        }
        failed = self.response(
            "failed", [], error={"code": code if code in _ERROR_CODES else "server_error", "message": message}
        )
        return _sse(error) + _sse(
            {"type": "response.failed", "sequence_number": sequence_number + 1, "response": failed}
        )
