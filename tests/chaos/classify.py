"""Classifies one answer of the router, from its status, headers and raw bytes, as a client would judge it.

Classes: ``complete`` (the exact expected text or vector, one finish, the terminator), ``clean_error``
(an OpenAI error envelope; for a stream, an error event and no terminator after a correct prefix of the
text), ``truncated_success`` (the answer says it succeeded but is incomplete or wrong), ``hang`` (no
answer in time), ``protocol_error`` (a non-JSON or non-envelope error, a reset or cut body, malformed
SSE), and ``aborted`` (the driver itself left mid-stream on purpose).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

Class = Literal["complete", "clean_error", "truncated_success", "hang", "protocol_error", "aborted"]
CLASSES: tuple[Class, ...] = (
    "complete",
    "clean_error",
    "truncated_success",
    "hang",
    "protocol_error",
    "aborted",
)
Route = Literal["chat", "responses", "completions", "embeddings"]
VECTOR_TOLERANCE = 1e-6


class Verdict(NamedTuple):
    """The class, a short reason, how much correct text a stream had shown (for clean errors), and the
    router's error message if any."""

    cls: Class
    detail: str = ""
    prefix_chars: int = 0
    message: str = ""


class SseEvent(NamedTuple):
    name: str | None
    data: str


class SseProblem(Exception):
    """The bytes are not a well-formed ``text/event-stream``."""


def parse_sse(raw: bytes) -> tuple[list[SseEvent], bytes]:
    """The complete events in ``raw`` and the unterminated rest; raises ``SseProblem`` on a line that is
    not an SSE field or on bytes that are not UTF-8."""
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise SseProblem(f"not UTF-8: {exc}") from None
    text = text.replace("\r\n", "\n")
    *blocks, rest = text.split("\n\n")
    events: list[SseEvent] = []
    for block in blocks:
        name: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "event":
                name = value
            elif field not in ("id", "retry"):
                raise SseProblem(f"not an SSE line: {line[:80]!r}")
        if data or name is not None:
            events.append(SseEvent(name, "\n".join(data)))
    return events, rest.encode()


def is_error_envelope(body: Any) -> bool:
    """OpenAI's ``{"error": {"message", "type", "param", "code"}}`` (message a string)."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    error = body["error"]
    return isinstance(error.get("message"), str) and all(k in error for k in ("type", "param", "code"))


def classify_error_status(status: int, content_type: str, raw: bytes) -> Verdict:
    """A non-200 answer: clean only as JSON in the OpenAI envelope."""
    if not content_type.startswith("application/json"):
        return Verdict("protocol_error", f"{status} with content-type {content_type or 'none'}")
    try:
        body = json.loads(raw)
    except ValueError:
        return Verdict("protocol_error", f"{status} with a body that is not JSON")
    if not is_error_envelope(body):
        return Verdict("protocol_error", f"{status} without the OpenAI error envelope")
    error = body["error"]
    return Verdict("clean_error", f"{status} {error.get('code') or error.get('type')}", 0, error["message"])


# --- non-stream answers ------------------------------------------------------------------------------


def classify_json(
    route: Route, raw: bytes, expected: str, expected_vector: Sequence[float] | None = None
) -> Verdict:
    """A 200 non-stream answer."""
    try:
        body = json.loads(raw)
    except ValueError:
        return Verdict("protocol_error", "200 with a body that is not JSON")
    if not isinstance(body, dict):
        return Verdict("protocol_error", "200 with JSON that is not an object")
    try:
        if route == "embeddings":
            return _embedding_verdict(body, expected_vector)
        if route == "responses":
            text = _responses_text(body)
            done = body.get("status") == "completed"
            finish = body.get("status")
        else:
            choice = body["choices"][0]
            text = choice["message"]["content"] if route == "chat" else choice["text"]
            finish = choice.get("finish_reason")
            done = finish == "stop"
    except (KeyError, IndexError, TypeError) as exc:
        return Verdict("truncated_success", f"200 without the answer's fields ({exc!r})")
    if not done:
        return Verdict("truncated_success", f"200 finishing with {finish!r}")
    if text != expected:
        return Verdict(
            "truncated_success", f"200 with other text ({len(text or '')} of {len(expected)} chars)"
        )
    return Verdict("complete")


def _responses_text(body: dict[str, Any]) -> str:
    return "".join(
        part.get("text", "")
        for item in body.get("output", [])
        if item.get("type") == "message"
        for part in item.get("content", [])
        if part.get("type") == "output_text"
    )


def _embedding_verdict(body: dict[str, Any], expected: Sequence[float] | None) -> Verdict:
    data = body["data"]
    if len(data) != 1:
        return Verdict("truncated_success", f"{len(data)} embeddings for one input")
    vector = data[0]["embedding"]
    if expected is None:
        return Verdict("truncated_success", f"served by an unknown model {body.get('model')!r}")
    if len(vector) != len(expected) or not all(
        math.isclose(a, b, abs_tol=VECTOR_TOLERANCE) for a, b in zip(vector, expected, strict=True)
    ):
        return Verdict("truncated_success", f"another vector ({len(vector)} values)")
    return Verdict("complete")


# --- streams -------------------------------------------------------------------------------------------


def classify_stream(route: Route, raw: bytes, expected: str, *, cut: bool) -> Verdict:
    """A 200 stream, from all its bytes; ``cut``: the body did not end cleanly (reset, incomplete)."""
    try:
        events, rest = parse_sse(raw)
    except SseProblem as exc:
        return Verdict("protocol_error", f"malformed SSE: {exc}")
    if route == "responses":
        verdict = _responses_stream(events, expected)
    else:
        verdict = _chunk_stream(route, events, expected)
    if verdict.cls == "protocol_error":
        return verdict
    if cut and verdict.cls not in ("complete", "clean_error"):
        # After the terminator or an error event a client has its answer; before them, a cut is a reset.
        return Verdict("protocol_error", f"stream body cut ({verdict.detail})", verdict.prefix_chars)
    if rest.strip():
        return Verdict("protocol_error", "stream ends inside an event")
    return verdict


def _chunk_stream(route: Route, events: list[SseEvent], expected: str) -> Verdict:
    text: list[str] = []
    finishes = 0
    errors = 0
    message = ""
    done_at: int | None = None
    for index, event in enumerate(events):
        if event.data == "[DONE]":
            if done_at is not None:
                return Verdict("protocol_error", "two [DONE]")
            done_at = index
            continue
        try:
            chunk = json.loads(event.data)
        except ValueError:
            return Verdict("protocol_error", f"malformed SSE: data is not JSON: {event.data[:60]!r}")
        if done_at is not None:
            return Verdict("protocol_error", "an event after [DONE]")
        if isinstance(chunk, dict) and "error" in chunk:
            if not is_error_envelope(chunk):
                return Verdict("protocol_error", "an error event without the OpenAI envelope")
            errors += 1
            message = chunk["error"]["message"]
            continue
        for choice in chunk.get("choices") or ():
            piece = (choice.get("delta") or {}).get("content") if route == "chat" else choice.get("text")
            if piece:
                text.append(piece)
            if choice.get("finish_reason") is not None:
                finishes += 1
    joined = "".join(text)
    verdict = _stream_verdict(joined, expected, errors=errors, done=done_at is not None, finishes=finishes)
    return verdict._replace(message=message)


def _responses_stream(events: list[SseEvent], expected: str) -> Verdict:
    text: list[str] = []
    completed: dict[str, Any] | None = None
    completions = 0
    errors = 0
    message = ""
    for index, event in enumerate(events):
        if event.data == "[DONE]":
            continue
        try:
            payload = json.loads(event.data)
        except ValueError:
            return Verdict("protocol_error", f"malformed SSE: data is not JSON: {event.data[:60]!r}")
        kind = payload.get("type")
        if event.name is not None and event.name != kind:
            return Verdict("protocol_error", f"event {event.name!r} carries type {kind!r}")
        if payload.get("sequence_number") != index:
            return Verdict(
                "protocol_error", f"sequence_number {payload.get('sequence_number')} at event {index}"
            )
        if completions:
            return Verdict("protocol_error", f"{kind} after response.completed")
        if kind == "response.output_text.delta":
            text.append(payload.get("delta", ""))
        elif kind == "response.completed":
            completions += 1
            completed = payload.get("response")
        elif kind in ("response.failed", "error"):
            errors += 1
            failure = (payload.get("response") or {}).get("error") if kind == "response.failed" else payload
            message = str((failure or {}).get("message", ""))
        elif kind == "response.incomplete":
            return Verdict("truncated_success", "response.incomplete")
    joined = "".join(text)
    verdict = _stream_verdict(joined, expected, errors=errors, done=completions > 0, finishes=completions)
    if verdict.cls == "complete" and (
        not isinstance(completed, dict) or _responses_text(completed) != expected
    ):
        return Verdict("truncated_success", "response.completed carries other text than its deltas")
    return verdict._replace(message=message)


def _stream_verdict(text: str, expected: str, *, errors: int, done: bool, finishes: int) -> Verdict:
    if done and errors:
        return Verdict("protocol_error", "an error event and the terminator", len(text))
    if done:
        if finishes != 1:
            return Verdict("truncated_success", f"{finishes} finish signals", len(text))
        if text != expected:
            return Verdict(
                "truncated_success", f"terminated with {len(text)} of {len(expected)} chars", len(text)
            )
        return Verdict("complete", "", len(text))
    if errors:
        if not expected.startswith(text):
            return Verdict("protocol_error", "an error event after text that is not the answer's", len(text))
        where = "after output" if text else "before output"
        return Verdict("clean_error", f"error event {where}", len(text))
    return Verdict("truncated_success", f"ended without terminator or error ({len(text)} chars)", len(text))
