"""The chaos classifier judges answers as a client would: only the exact, terminated answer is complete;
an error must be in OpenAI's envelope; a stream that stops without saying so is a truncated success."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.chaos.classify import classify_error_status, classify_json, classify_stream

EXPECTED = "Echo: q1z alpha bravo"
SHORT = "Echo: q1z"
PIECES = ["Echo: ", "q1z ", "alpha ", "bravo"]
ERROR = {"error": {"message": "boom", "type": "server_error", "param": None, "code": "upstream_error"}}


def sse(*payloads: Any) -> bytes:
    return b"".join(
        b"data: " + (p.encode() if isinstance(p, str) else json.dumps(p).encode()) + b"\n\n" for p in payloads
    )


def chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def chat_stream(pieces: list[str], *, finish: int = 1, done: bool = True, error: bool = False) -> bytes:
    payloads: list[Any] = [chunk(""), *(chunk(p) for p in pieces)]
    payloads += [chunk(None, "stop")] * finish
    if error:
        payloads.append(ERROR)
    if done:
        payloads.append("[DONE]")
    return sse(*payloads)


def test_a_whole_terminated_chat_stream_is_complete() -> None:
    assert classify_stream("chat", chat_stream(PIECES), EXPECTED, cut=False).cls == "complete"


@pytest.mark.parametrize(
    ("raw", "cls"),
    [
        (chat_stream(PIECES[:2], finish=0, done=False), "truncated_success"),  # stops without saying so
        (chat_stream(PIECES[:2]), "truncated_success"),  # terminated, text short
        (chat_stream(PIECES, finish=2), "truncated_success"),  # two finishes
        (chat_stream(PIECES, done=False), "truncated_success"),  # finish but no [DONE]
        (chat_stream(PIECES[:2], finish=0, done=False, error=True), "clean_error"),
        (chat_stream([], finish=0, done=False, error=True), "clean_error"),
        (chat_stream(PIECES, error=True), "protocol_error"),  # an error and [DONE]
        (chat_stream(["Echo: ", "other "], finish=0, done=False, error=True), "protocol_error"),
        (chat_stream(PIECES[:2], finish=0, done=False) + b'data: {"choices": [\n\n', "protocol_error"),
        (b"<html>502</html>", "protocol_error"),
    ],
    ids=["silent-stop", "short", "two-finishes", "no-done", "error-after-prefix", "error-before-output",
         "error-and-done", "error-after-wrong-text", "malformed-line", "not-sse"],
)  # fmt: skip
def test_chat_stream_classes(raw: bytes, cls: str) -> None:
    assert classify_stream("chat", raw, EXPECTED, cut=False).cls == cls


def test_a_clean_error_knows_how_much_text_it_showed() -> None:
    verdict = classify_stream(
        "chat", chat_stream(PIECES[:2], finish=0, done=False, error=True), EXPECTED, cut=False
    )
    assert verdict.prefix_chars == len("Echo: q1z ") and verdict.message == "boom"


def test_a_cut_body_is_a_reset_unless_the_answer_was_already_told() -> None:
    assert classify_stream("chat", chat_stream(PIECES[:2], finish=0, done=False), EXPECTED, cut=True).cls == (
        "protocol_error"
    )
    assert classify_stream("chat", chat_stream(PIECES), EXPECTED, cut=True).cls == "complete"


def responses_stream(
    pieces: list[str], *, terminal: str = "response.completed", text: str = EXPECTED
) -> bytes:
    events: list[dict[str, Any]] = [{"type": "response.created"}]
    events += [{"type": "response.output_text.delta", "delta": p} for p in pieces]
    message = {"type": "message", "content": [{"type": "output_text", "text": text}]}
    if terminal == "response.completed":
        events.append({"type": terminal, "response": {"status": "completed", "output": [message]}})
    elif terminal == "response.failed":
        events.append({"type": terminal, "response": {"status": "failed", "error": {"message": "boom"}}})
    out = b""
    for number, event in enumerate(events):
        event["sequence_number"] = number
        out += f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
    return out


@pytest.mark.parametrize(
    ("raw", "cls"),
    [
        (responses_stream(PIECES), "complete"),
        (responses_stream(PIECES[:2], terminal="response.failed"), "clean_error"),
        (responses_stream(PIECES[:2], terminal=""), "truncated_success"),
        (responses_stream(PIECES, text="Echo: q1z"), "truncated_success"),  # completed says otherwise
        (
            responses_stream(PIECES).replace(b'"sequence_number": 2', b'"sequence_number": 7'),
            "protocol_error",
        ),
    ],
    ids=["complete", "failed-after-prefix", "no-terminal", "completed-other-text", "sequence-gap"],
)
def test_responses_stream_classes(raw: bytes, cls: str) -> None:
    assert classify_stream("responses", raw, EXPECTED, cut=False).cls == cls


def chat(text: str, finish: str) -> dict[str, Any]:
    return {"choices": [{"message": {"content": text}, "finish_reason": finish}]}


@pytest.mark.parametrize(
    ("route", "body", "cls"),
    [
        ("chat", chat(EXPECTED, "stop"), "complete"),
        ("chat", chat(SHORT, "stop"), "truncated_success"),
        ("chat", chat(EXPECTED, "length"), "truncated_success"),
        ("completions", {"choices": [{"text": EXPECTED, "finish_reason": "stop"}]}, "complete"),
        ("responses", {"status": "completed", "output": [{"type": "message", "content": [
            {"type": "output_text", "text": EXPECTED}]}]}, "complete"),
        ("responses", {"status": "incomplete", "output": []}, "truncated_success"),
        ("embeddings", {"data": [{"embedding": [0.5, 0.25]}]}, "complete"),
        ("embeddings", {"data": [{"embedding": [0.5, 0.26]}]}, "truncated_success"),
    ],
)  # fmt: skip
def test_json_answers(route: str, body: dict[str, Any], cls: str) -> None:
    assert classify_json(route, json.dumps(body).encode(), EXPECTED, [0.5, 0.25]).cls == cls  # type: ignore[arg-type]


def test_a_half_body_is_a_protocol_error() -> None:
    whole = json.dumps(chat(EXPECTED, "stop")).encode()
    assert classify_json("chat", whole[: len(whole) // 2], EXPECTED).cls == "protocol_error"


@pytest.mark.parametrize(
    ("content_type", "body", "cls"),
    [
        ("application/json", json.dumps(ERROR).encode(), "clean_error"),
        ("application/json", b'{"error": "boom"}', "protocol_error"),
        ("application/json", b"{not json", "protocol_error"),
        ("text/html", b"<html>502 Bad Gateway</html>", "protocol_error"),
    ],
)
def test_error_statuses(content_type: str, body: bytes, cls: str) -> None:
    assert classify_error_status(502, content_type, body).cls == cls
