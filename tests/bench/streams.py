"""Streaming clients: time to the first content event (sequential), and a load of concurrent 20-chunk
streams read to ``[DONE]``, counting those that arrived whole."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any, NamedTuple

import aiohttp
import httpx
import msgspec

CHUNKS = 20
# The simulated provider answers "words=N" with N pieces, one content event each.
BODY: dict[str, Any] = {
    "model": "gpt-5-mini",
    "messages": [{"role": "user", "content": f"Say hello words={CHUNKS}"}],
    "stream": True,
}
HEADERS = {"Authorization": "Bearer bench"}


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []


_decode = msgspec.json.Decoder(_Chunk).decode


def content_of(line: bytes) -> str | None:
    """The content text of an SSE ``data:`` line of a chat completion chunk; ``None`` for anything
    else (comments, blank lines, ``[DONE]``, the role chunk's empty content, the finish chunk)."""
    if not line.startswith(b"data:"):
        return None
    payload = line[5:].strip()
    if not payload.startswith(b"{"):
        return None
    try:
        chunk = _decode(payload)
    except msgspec.DecodeError:  # ValidationError is one too
        return None
    for choice in chunk.choices:
        if choice.delta is not None and choice.delta.content:
            return choice.delta.content
    return None


def is_done(line: bytes) -> bool:
    return line.strip() == b"data: [DONE]"


def percentile(samples: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted ``samples`` (``share`` in 0..1)."""
    return samples[max(0, min(len(samples) - 1, round(share * len(samples)) - 1))]


def first_content_ms(url: str, count: int, warm: int = 10) -> dict[str, float]:
    """p50/p95 milliseconds from sending a streaming request to reading its first content event, one
    stream at a time on a kept-alive connection (the first ``warm`` streams are not counted)."""
    samples: list[float] = []
    with httpx.Client(timeout=10, headers=HEADERS) as client:
        for i in range(count + warm):
            started = time.perf_counter()
            seen = False
            with client.stream("POST", url, json=BODY) as answer:
                answer.raise_for_status()
                for line in answer.iter_lines():
                    if not seen and content_of(line.encode()) is not None:
                        seen = True
                        if i >= warm:
                            samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"p50": statistics.median(samples), "p95": percentile(samples, 0.95)}


class LoadResult(NamedTuple):
    """Streams that ended with all their content events and ``[DONE]``, those that did not, and the
    wall time from the first request to the last stream's end."""

    complete: int
    failed: int
    seconds: float


async def _client(session: aiohttp.ClientSession, url: str, until: float, tally: list[int]) -> None:
    while time.monotonic() < until:
        pieces, done = 0, False
        try:
            async with session.post(url, json=BODY, headers=HEADERS) as answer:
                async for line in answer.content:
                    if content_of(line) is not None:
                        pieces += 1
                    elif is_done(line):
                        done = True
                ok = answer.status == 200 and done and pieces == CHUNKS
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        tally[0 if ok else 1] += 1


async def load(url: str, clients: int, seconds: float) -> LoadResult:
    """``clients`` concurrent clients, each starting streams one after another for ``seconds``; streams
    under way at the end are read to their end (so each counted stream paid all its CPU)."""
    tally = [0, 0]
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        until = started + seconds
        await asyncio.gather(*(_client(session, url, until, tally) for _ in range(clients)))
    return LoadResult(tally[0], tally[1], time.monotonic() - started)
