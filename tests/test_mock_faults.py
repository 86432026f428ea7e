"""The fault kinds a chaos run needs, acted out alike by every fake wire format over a real socket:
reset, cut after the finish signal, stall mid-stream, a malformed SSE line, truncated and trickled
bodies, timed and partial brownouts, and the request log's fault and client-disconnect records."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple

import httpx
import pytest
import pytest_asyncio

from router.mock import Fault, MockServer

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "x"}
GEMINI = "/gemini/v1beta/models/gemini-2.5-flash"
WORDS = 6
TEXT = "lorem ipsum dolor sit amet consectetur"


class Wire(NamedTuple):
    """One wire format of the fakes: how to ask it for ``words=6`` and how to read its answer."""

    name: str
    provider: str
    model: str
    path: str
    body: dict[str, Any]
    events: int
    """Events of the stream before its terminator."""
    finish: bytes
    """Bytes only the event carrying the finish signal has."""
    terminator: bytes | None
    """Bytes only the terminator has (``None``: a clean end of the body is the terminator)."""
    delimiter: bytes = b"\n\n"
    headers: dict[str, str] = {}
    stream_path: str | None = None

    def request(self, *, stream: bool) -> tuple[str, dict[str, Any]]:
        if self.stream_path is not None:
            return (self.stream_path if stream else self.path), self.body
        return self.path, {**self.body, "stream": True} if stream else self.body

    def count(self, raw: bytes) -> int:
        """How many whole events before the terminator ``raw`` holds."""
        if self.delimiter == b",":
            return raw.count(b'"responseId"')
        return raw.count(self.delimiter) - (raw.count(self.terminator) if self.terminator else 0)

    def terminated(self, raw: bytes) -> bool:
        """Whether ``raw`` ends with the terminator (a clean end counts for Gemini's SSE)."""
        if self.terminator is None:
            return True
        if self.delimiter == b",":
            return raw.rstrip().endswith(self.terminator)
        return self.terminator in raw


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _contents(text: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


CHAT = Wire(
    "chat",
    "openai",
    "gpt-4.1-mini",
    "/openai/v1/chat/completions",
    {"model": "gpt-4.1-mini", "messages": _user(f"words={WORDS}")},
    events=WORDS + 2,  # role, pieces, finish
    finish=b'"finish_reason":"stop"',
    terminator=b"data: [DONE]",
)
RESPONSES = Wire(
    "responses",
    "openai",
    "gpt-4.1-mini",
    "/openai/v1/responses",
    {"model": "gpt-4.1-mini", "input": f"words={WORDS}"},
    events=WORDS + 7,
    finish=b"event: response.output_item.done",
    terminator=b"event: response.completed",
)
COMPLETIONS = Wire(
    "completions",
    "openai",
    "gpt-3.5-turbo-instruct",
    "/openai/v1/completions",
    {"model": "gpt-3.5-turbo-instruct", "prompt": f"words={WORDS}", "max_tokens": 50},
    events=WORDS + 1,
    finish=b'"finish_reason":"stop"',
    terminator=b"data: [DONE]",
)
ANTHROPIC = Wire(
    "anthropic",
    "anthropic",
    "claude-haiku-4-5",
    "/anthropic/v1/messages",
    {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": _user(f"words={WORDS}")},
    events=WORDS + 5,
    finish=b'"stop_reason":"end_turn"',
    terminator=b"event: message_stop",
    headers=ANTHROPIC_HEADERS,
)
GEMINI_SSE = Wire(
    "gemini-sse",
    "gemini",
    "gemini-2.5-flash",
    f"{GEMINI}:generateContent",
    _contents(f"words={WORDS}"),
    events=WORDS,
    finish=b'"finishReason":"STOP"',
    terminator=None,
    delimiter=b"\r\n\r\n",
    stream_path=f"{GEMINI}:streamGenerateContent?alt=sse",
)
GEMINI_ARRAY = GEMINI_SSE._replace(
    name="gemini-array", delimiter=b",", terminator=b"]", stream_path=f"{GEMINI}:streamGenerateContent"
)
STREAMING = [CHAT, RESPONSES, COMPLETIONS, ANTHROPIC, GEMINI_SSE, GEMINI_ARRAY]
EMBEDDINGS = Wire(
    "embeddings",
    "openai",
    "text-embedding-3-small",
    "/openai/v1/embeddings",
    {"model": "text-embedding-3-small", "input": "hello"},
    events=0,
    finish=b"",
    terminator=None,
)
GEMINI_EMBED = EMBEDDINGS._replace(
    name="gemini-embed",
    provider="gemini",
    model="gemini-embedding-001",
    path="/gemini/v1beta/models/gemini-embedding-001:embedContent",
    body={"content": {"parts": [{"text": "hello"}]}},
)
NON_STREAMING = [CHAT, RESPONSES, COMPLETIONS, ANTHROPIC, GEMINI_SSE, EMBEDDINGS, GEMINI_EMBED]


def _ids(wires: list[Wire]) -> list[str]:
    return [w.name for w in wires]


class Got(NamedTuple):
    """What a client received: status, the bytes with their arrival times, and how the body ended."""

    status: int
    pieces: list[tuple[float, bytes]]
    error: Exception | None
    started: float

    @property
    def raw(self) -> bytes:
        return b"".join(piece for _, piece in self.pieces)

    @property
    def took(self) -> float:
        return (self.pieces[-1][0] if self.pieces else time.monotonic()) - self.started


@pytest_asyncio.fixture
async def mock() -> AsyncIterator[MockServer]:
    async with MockServer() as server:
        yield server


@pytest_asyncio.fixture
async def http(mock: MockServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mock.url, timeout=5.0) as client:
        yield client


async def fetch(http: httpx.AsyncClient, wire: Wire, *, stream: bool) -> Got:
    path, body = wire.request(stream=stream)
    pieces: list[tuple[float, bytes]] = []
    started = time.monotonic()
    status = 0
    try:
        async with http.stream("POST", path, json=body, headers=wire.headers) as response:
            status = response.status_code
            async for piece in response.aiter_raw():
                pieces.append((time.monotonic(), piece))
    except httpx.TransportError as exc:
        return Got(status, pieces, exc, started)
    return Got(status, pieces, None, started)


def fault(mock: MockServer, wire: Wire, spec: dict[str, Any], times: int = 1) -> None:
    mock.state.faults.add(wire.provider, wire.model, spec, times)


# --- reset ---------------------------------------------------------------------------------------


async def _raw_exchange(mock: MockServer, wire: Wire, *, stream: bool) -> bytes:
    """Send the request on a bare socket and read until the server ends the connection."""
    path, body = wire.request(stream=stream)
    payload = json.dumps(body).encode()
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{mock.port}", "Content-Type: application/json"]
    head.append("Connection: close")
    head += [f"{k}: {v}" for k, v in wire.headers.items()]
    head.append(f"Content-Length: {len(payload)}")
    reader, writer = await asyncio.open_connection("127.0.0.1", mock.port)
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("wire", NON_STREAMING, ids=_ids(NON_STREAMING))
async def test_reset_aborts_the_connection_with_rst_and_no_response(
    mock: MockServer, wire: Wire, stream: bool
) -> None:
    if stream and wire.events == 0:
        pytest.skip("embeddings do not stream")
    fault(mock, wire, {"kind": "reset"})
    with pytest.raises(ConnectionResetError):
        await _raw_exchange(mock, wire, stream=stream)
    assert [r.fault and r.fault.kind for r in mock.state.requests()] == ["reset"]
    # Consumed: the next request is answered.
    assert (await _raw_exchange(mock, wire, stream=stream)).startswith(b"HTTP/1.1 200")


# --- cut after the finish signal -------------------------------------------------------------------


@pytest.mark.parametrize("wire", STREAMING, ids=_ids(STREAMING))
async def test_cut_after_finish_sends_every_event_but_the_terminator_then_aborts(
    mock: MockServer, http: httpx.AsyncClient, wire: Wire
) -> None:
    usage = wire is CHAT
    if usage:
        wire = wire._replace(
            body={**wire.body, "stream_options": {"include_usage": True}}, events=wire.events + 1
        )
    fault(mock, wire, {"kind": "cut", "after_finish": True})
    got = await fetch(http, wire, stream=True)
    assert got.status == 200
    assert isinstance(got.error, httpx.RemoteProtocolError)  # aborted, not closed cleanly
    raw = got.raw
    assert wire.count(raw) == wire.events
    assert wire.finish in raw
    if usage:
        assert raw.rindex(b'"usage":{') > raw.index(wire.finish)  # the usage chunk came too
    if wire.terminator is not None:
        assert not wire.terminated(raw)

    whole = await fetch(http, wire, stream=True)
    assert whole.error is None and wire.terminated(whole.raw)


# --- stall mid-stream ------------------------------------------------------------------------------


@pytest.mark.parametrize("wire", STREAMING, ids=_ids(STREAMING))
async def test_stall_mid_waits_after_k_events_then_completes(
    mock: MockServer, http: httpx.AsyncClient, wire: Wire
) -> None:
    fault(mock, wire, {"kind": "stall_mid", "after_chunks": 3, "delay": 0.4})
    got = await fetch(http, wire, stream=True)
    assert got.error is None and got.status == 200
    stamps = [at for at, _ in got.pieces]
    gaps = [(later - earlier, i) for i, (earlier, later) in enumerate(itertools.pairwise(stamps))]
    longest, before = max(gaps)
    assert longest >= 0.38
    assert wire.count(b"".join(p for _, p in got.pieces[: before + 1])) == 3
    assert wire.count(got.raw) == wire.events
    assert wire.terminated(got.raw)


# --- malformed SSE line ----------------------------------------------------------------------------


@pytest.mark.parametrize("wire", STREAMING, ids=_ids(STREAMING))
async def test_malformed_sse_sends_a_line_that_is_not_json_and_ends_without_terminator(
    mock: MockServer, http: httpx.AsyncClient, wire: Wire
) -> None:
    fault(mock, wire, {"kind": "malformed_sse", "after_chunks": 2})
    got = await fetch(http, wire, stream=True)
    assert got.status == 200 and got.error is None  # a clean end, as a proxy closing the body
    raw = got.raw
    assert wire.finish not in raw
    if wire.terminator is not None:
        assert not wire.terminated(raw)
    if wire.delimiter == b",":
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)
        return
    lines = [line for line in raw.decode().splitlines() if line.startswith("data:")]
    assert len(lines) == 3
    for line in lines[:2]:
        json.loads(line.removeprefix("data:"))
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[2].removeprefix("data:"))


# --- truncated and trickled bodies ---------------------------------------------------------------


@pytest.mark.parametrize("wire", NON_STREAMING, ids=_ids(NON_STREAMING))
async def test_truncated_body_is_the_first_half_of_the_answer(
    mock: MockServer, http: httpx.AsyncClient, wire: Wire
) -> None:
    whole = await fetch(http, wire, stream=False)
    expected = json.loads(whole.raw)
    fault(mock, wire, {"kind": "truncated"})
    fault(mock, wire, {"kind": "truncated", "claims_more": True})
    path, body = wire.request(stream=False)

    half = await http.post(path, json=body, headers=wire.headers)
    assert half.status_code == 200 and half.headers["content-type"].startswith("application/json")
    assert int(half.headers["content-length"]) == len(half.content)
    assert 0 < len(half.content) < len(whole.raw)
    assert whole.raw.startswith(half.content[:20])
    with pytest.raises(json.JSONDecodeError):
        json.loads(half.content)

    short = await fetch(http, wire, stream=False)
    assert short.status == 200
    assert isinstance(short.error, httpx.RemoteProtocolError)  # fewer bytes than Content-Length
    assert 0 < len(short.raw) < len(whole.raw)
    # Body-only: a stream of the same model is not truncated and the fault was consumed.
    again = await fetch(http, wire, stream=False)
    assert json.loads(again.raw).keys() == expected.keys()


async def test_truncated_is_kept_for_a_non_stream_request(mock: MockServer, http: httpx.AsyncClient) -> None:
    fault(mock, CHAT, {"kind": "truncated"})
    streamed = await fetch(http, CHAT, stream=True)
    assert CHAT.terminated(streamed.raw)
    assert [p.fault.kind for p in mock.state.faults.pending()] == ["truncated"]


@pytest.mark.parametrize("wire", NON_STREAMING, ids=_ids(NON_STREAMING))
async def test_trickle_delivers_the_whole_body_slowly(
    mock: MockServer, http: httpx.AsyncClient, wire: Wire
) -> None:
    whole = await fetch(http, wire, stream=False)
    fault(mock, wire, {"kind": "trickle", "interval": 0.05, "pieces": 6})
    slow = await fetch(http, wire, stream=False)
    assert slow.error is None and slow.status == 200
    assert slow.took >= 0.28
    assert len(slow.pieces) >= 4  # it really came in pieces
    assert _without_volatile(json.loads(slow.raw)) == _without_volatile(json.loads(whole.raw))


@pytest.mark.parametrize("wire", STREAMING, ids=_ids(STREAMING))
async def test_trickle_paces_every_stream_event(
    mock: MockServer, http: httpx.AsyncClient, wire: Wire
) -> None:
    fault(mock, wire, {"kind": "trickle", "interval": 0.04})
    got = await fetch(http, wire, stream=True)
    assert got.error is None
    assert got.took >= 0.04 * wire.events * 0.9
    assert wire.count(got.raw) == wire.events
    assert wire.terminated(got.raw)


def _without_volatile(answer: Any) -> Any:
    """The answer without the fields that change per request (ids, timestamps)."""
    volatile = {"id", "created", "created_at", "completed_at", "responseId", "system_fingerprint"}
    if isinstance(answer, dict):
        return {
            k: _without_volatile(v) for k, v in answer.items() if k not in volatile and not k.endswith("_id")
        }
    if isinstance(answer, list):
        return [_without_volatile(v) for v in answer]
    return answer


# --- brownouts -----------------------------------------------------------------------------------


async def test_timed_brownout_fails_every_request_until_it_expires(
    mock: MockServer, http: httpx.AsyncClient
) -> None:
    added = await http.post(
        "/__mock__/faults",
        json={
            "provider": "anthropic",
            "model": "claude-haiku-4-5",
            "fault": {"kind": "status", "status": 529},
            "for_s": 0.5,
        },
    )
    assert added.status_code == 200
    listed = (await http.get("/__mock__/faults")).json()["faults"]
    assert listed[0]["remaining"] == -1 and 0.3 < listed[0]["expires_in_s"] <= 0.5
    path, body = ANTHROPIC.request(stream=False)
    statuses = [(await http.post(path, json=body, headers=ANTHROPIC.headers)).status_code for _ in range(5)]
    assert statuses == [529] * 5
    await asyncio.sleep(0.55)
    assert (await http.post(path, json=body, headers=ANTHROPIC.headers)).status_code == 200
    assert (await http.get("/__mock__/faults")).json()["faults"] == []


@pytest.mark.parametrize("seed", [None, 7])
async def test_brownout_ratio_fails_that_share_reproducibly(
    mock: MockServer, http: httpx.AsyncClient, seed: int | None
) -> None:
    async def pattern() -> list[int]:
        await http.delete("/__mock__/faults")
        spec = {"provider": "gemini", "model": "gemini-2.5-flash", "fault": {"kind": "status", "status": 503},
                "for_s": 30, "ratio": 0.25, "seed": seed}  # fmt: skip
        assert (await http.post("/__mock__/faults", json=spec)).status_code == 200
        path, body = GEMINI_SSE.request(stream=False)
        return [(await http.post(path, json=body)).status_code for _ in range(40)]

    first = await pattern()
    assert first == await pattern()
    failed = first.count(503)
    assert set(first) == {200, 503}
    if seed is None:
        assert failed == 10 and first[:8] == [200, 200, 200, 503] * 2  # evenly spread
    else:
        assert 4 <= failed <= 16


async def test_brownout_rejects_bad_duration_and_ratio(http: httpx.AsyncClient) -> None:
    for extra in ({"for_s": 0}, {"ratio": 1.5}, {"ratio": -0.1}):
        bad = await http.post("/__mock__/faults", json={"fault": {"kind": "drop"}, **extra})
        assert bad.status_code == 400, extra


# --- the request log: faults and client disconnects ------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "spec"),
    [
        (CHAT, {"kind": "stall_mid", "after_chunks": 2, "delay": 5}),
        (ANTHROPIC, {"kind": "trickle", "interval": 0.5}),
        (GEMINI_SSE, {"kind": "stall", "delay": 5}),
        (RESPONSES, {"kind": "timeout", "delay": 5}),
    ],
    ids=["chat-stall-mid", "anthropic-trickle", "gemini-stall", "responses-timeout"],
)
async def test_log_notes_when_the_client_goes_away(
    mock: MockServer, http: httpx.AsyncClient, wire: Wire, spec: dict[str, Any]
) -> None:
    fault(mock, wire, spec)
    path, body = wire.request(stream=True)

    async def read_then_leave() -> float:
        async with http.stream("POST", path, json=body, headers=wire.headers) as response:
            await asyncio.sleep(0.3)
            assert response.status_code == 200
            left = time.monotonic()
        return left

    left = await read_then_leave() if spec["kind"] != "timeout" else await _leave_before_headers(http, wire)
    logged = await _eventually(lambda: mock.state.requests()[-1].disconnected_monotonic)
    assert logged is not None and 0 <= logged - left < 0.5
    assert mock.state.requests()[-1].fault == Fault(**spec)


async def _leave_before_headers(http: httpx.AsyncClient, wire: Wire) -> float:
    path, body = wire.request(stream=True)
    with pytest.raises(httpx.ReadTimeout):
        await http.post(path, json=body, headers=wire.headers, timeout=0.3)
    return time.monotonic()


async def _eventually(read: Callable[[], float | None], within: float = 2.0) -> float | None:
    deadline = time.monotonic() + within
    while (value := read()) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return value


async def test_a_complete_answer_has_no_disconnect_and_no_fault(
    mock: MockServer, http: httpx.AsyncClient
) -> None:
    await fetch(http, CHAT, stream=True)
    await fetch(http, GEMINI_SSE, stream=False)
    assert [(r.fault, r.disconnected_monotonic) for r in mock.state.requests()] == [(None, None)] * 2
