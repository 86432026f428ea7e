"""Plans and sends the chaos load: requests on the four routes, streaming and not, naming concrete models,
strategies and ``models`` lists; each is sent with a deadline, read to the end (or left on purpose) and
classified by ``classify``."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Literal, NamedTuple

import aiohttp

from router.mock.gemini_fake import embedding as gemini_embedding
from router.mock.openai_legacy import embed as openai_embedding
from tests.chaos.classify import (
    Class,
    Route,
    Verdict,
    classify_error_status,
    classify_json,
    classify_stream,
    parse_sse,
)

_MARKER: Final = re.compile(r"\bq(\d+)z\b")
HANG_S: Final = 30.0
"""An answer not complete after this long is a hang."""
PATHS: Final[dict[Route, str]] = {
    "chat": "/v1/chat/completions",
    "responses": "/v1/responses",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
}
FLAKY_CHAT: Final = ("oa-flaky", "an-flaky", "ge-flaky")
STEADY_CHAT: Final = ("oa-steady", "an-steady", "ge-steady")
SLOW_CHAT: Final = ("oa-slow", "an-slow", "ge-slow")
CATALOG_FALLBACK: Final = ("an-flaky",)
"""Flaky models whose catalog entry falls back to a steady one."""
STRATEGIES: Final = ("fast", "cost", "quality", "balanced")
FLAKY_COMPLETION: Final = "inst-flaky"
STEADY_COMPLETION: Final = "inst-steady"
FLAKY_EMBEDDING: Final = "em-flaky"
STEADY_EMBEDDINGS: Final = ("em-steady", "ge-embed")
EMBED_DIMENSIONS: Final = 8
EMBEDDERS: Final[dict[str, Callable[[str], list[float]]]] = {
    "em-flaky": lambda text: openai_embedding("text-embedding-3-small", text, EMBED_DIMENSIONS),
    "em-steady": lambda text: openai_embedding("text-embedding-3-large", text, EMBED_DIMENSIONS),
    "ge-embed": lambda text: gemini_embedding(text, EMBED_DIMENSIONS),
}
"""The vector each embedding model of the chaos catalog answers, to check the served one against."""
WORDS: Final = ("alpha", "bravo", "cedar", "delta", "ember", "fjord", "gale", "haze", "iris", "jade", "kelp")
ABORT_WORDS: Final = 30
"""Words of a request the driver leaves: long enough that its slow stream is still going when it does."""

Family = Literal["strategy", "list", "steady", "fallback", "flaky", "abort"]
HEALTHY_FAMILIES: Final = frozenset({"strategy", "list", "steady", "fallback"})
"""Request families that always have a healthy candidate (a steady model) among theirs."""


class Planned(NamedTuple):
    """One request to send. ``id`` also marks its prompt, so the upstream calls it caused can be found
    in the mock's request log."""

    id: int
    route: Route
    stream: bool
    family: Family
    model: str
    models: tuple[str, ...]
    prompt: str

    @property
    def abort(self) -> bool:
        return self.family == "abort"

    @property
    def marker(self) -> str:
        return marker(self.id)

    @property
    def expected(self) -> str:
        """The simulated model's answer: an echo of the prompt (shorter than its 200-character cap)."""
        return "Echo: " + self.prompt

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model}
        if self.models:
            body["models"] = list(self.models)
        if self.route == "embeddings":
            return body | {"input": self.prompt, "dimensions": EMBED_DIMENSIONS}
        if self.route == "chat":
            body["messages"] = [{"role": "user", "content": self.prompt}]
        elif self.route == "responses":
            body |= {"input": self.prompt, "store": False}
        else:
            body |= {"prompt": self.prompt, "max_tokens": 100}
        return body | {"stream": self.stream}

    def describe(self) -> str:
        """A one-line reproduction: route and body."""
        return f"POST {PATHS[self.route]} {json.dumps(self.body())}"


def marker(request_id: int) -> str:
    return f"q{request_id}z"


class Result(NamedTuple):
    """What became of one request."""

    planned: Planned
    cls: Class
    detail: str
    status: int
    served: str | None
    prefix_chars: int
    started: float
    ended: float
    aborted_at: float | None = None
    message: str = ""

    @property
    def after_output(self) -> bool:
        """A stream that failed after showing text: the one failure no router can recover honestly."""
        return self.planned.stream and self.cls == "clean_error" and self.prefix_chars > 0


class Planner:
    """Draws a reproducible mix of requests from a seeded generator."""

    def __init__(self, seed: int, *, abort_share: float = 0.08) -> None:
        """``abort_share``: of the chat and Responses streams, the share the client leaves mid-way."""
        self._rng = random.Random(seed)
        self._abort_share = abort_share
        self._next = 1

    def plan(self, count: int, *, aborts: bool = True) -> list[Planned]:
        return [self._one(aborts) for _ in range(count)]

    def _one(self, aborts: bool) -> Planned:
        rng = self._rng
        request_id, self._next = self._next, self._next + 1
        route: Route = rng.choices(("chat", "responses", "completions", "embeddings"), (35, 25, 20, 20))[0]
        stream = route != "embeddings" and rng.random() < 0.5
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 12))]
        if aborts and stream and route in ("chat", "responses") and rng.random() < self._abort_share:
            words = [rng.choice(WORDS) for _ in range(ABORT_WORDS)]
            family: Family = "abort"
            prompt = " ".join([marker(request_id), *words])
            return Planned(request_id, route, stream, family, rng.choice(SLOW_CHAT), (), prompt)
        prompt = " ".join([marker(request_id), *words])
        family, model, models = self._target(route)
        return Planned(request_id, route, stream, family, model, models, prompt)

    def _target(self, route: Route) -> tuple[Family, str, tuple[str, ...]]:
        rng = self._rng
        if route == "embeddings":
            pick = rng.random()
            if pick < 0.5:
                return "list", FLAKY_EMBEDDING, (rng.choice(STEADY_EMBEDDINGS),)
            if pick < 0.75:
                return "steady", rng.choice(STEADY_EMBEDDINGS), ()
            return "flaky", FLAKY_EMBEDDING, ()
        family: Family = rng.choices(
            ("strategy", "list", "steady", "fallback", "flaky"), (30, 35, 10, 10, 15)
        )[0]
        if family == "strategy":
            return family, rng.choice(STRATEGIES), ()
        if route == "completions":
            if family in ("steady", "fallback"):
                return "steady", STEADY_COMPLETION, ()
            if family == "flaky":
                return family, FLAKY_COMPLETION, ()
            return family, FLAKY_COMPLETION, (rng.choice((STEADY_COMPLETION, *STEADY_CHAT)),)
        if family == "steady":
            return family, rng.choice(STEADY_CHAT), ()
        if family == "fallback":
            return family, rng.choice(CATALOG_FALLBACK), ()
        if family == "flaky":
            return family, rng.choice([m for m in FLAKY_CHAT if m not in CATALOG_FALLBACK]), ()
        first, second = rng.sample(FLAKY_CHAT, 2)
        return family, first, (second, rng.choice(STEADY_CHAT))


# --- sending ------------------------------------------------------------------------------------------


def client_session(concurrency: int) -> aiohttp.ClientSession:
    """A session of ``concurrency`` keep-alive connections and no timeout of its own (``send`` has one)."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))


async def send(
    session: aiohttp.ClientSession, base_url: str, planned: Planned, hang_s: float = HANG_S
) -> Result:
    """Send one request, read its whole answer (or leave a stream at its first text when it is an
    ``abort``), and classify it."""
    started = time.monotonic()
    status = 0
    served: str | None = None
    content_type = ""
    raw = bytearray()
    cut: str | None = None
    aborted_at: float | None = None
    try:
        async with asyncio.timeout(hang_s):
            async with session.post(base_url + PATHS[planned.route], json=planned.body()) as response:
                status = response.status
                served = response.headers.get("x-router-model")
                content_type = response.headers.get("content-type", "")
                try:
                    async for piece in response.content.iter_any():
                        raw += piece
                        if planned.abort and status == 200 and _shows_text(planned.route, bytes(raw)):
                            aborted_at = time.monotonic()
                            response.close()
                            break
                except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                    cut = f"{type(exc).__name__}: {exc}"
    except TimeoutError:
        return _result(planned, Verdict("hang", f"no complete answer in {hang_s:g} s ({len(raw)} bytes)"),
                       status, served, started, None)  # fmt: skip
    except aiohttp.ClientError as exc:
        verdict = Verdict(
            "protocol_error", f"connection failed before an answer: {type(exc).__name__}: {exc}"
        )
        return _result(planned, verdict, status, served, started, None)
    if aborted_at is not None:
        return _result(planned, Verdict("aborted"), status, served, started, aborted_at)
    return _result(planned, _judge(planned, status, content_type, bytes(raw), cut, served), status, served,
                   started, None)  # fmt: skip


def _result(
    planned: Planned, verdict: Verdict, status: int, served: str | None, started: float, aborted: float | None
) -> Result:
    return Result(
        planned, verdict.cls, verdict.detail, status, served, verdict.prefix_chars, started, time.monotonic(),
        aborted, verdict.message,
    )  # fmt: skip


def _judge(
    planned: Planned, status: int, content_type: str, raw: bytes, cut: str | None, served: str | None
) -> Verdict:
    if status != 200:
        if cut is not None:
            return Verdict("protocol_error", f"{status} with a cut body ({cut})")
        return classify_error_status(status, content_type, raw)
    if planned.stream:
        if not content_type.startswith("text/event-stream"):
            if cut is None and content_type.startswith("application/json"):
                return Verdict("protocol_error", "200 to a stream request with a JSON body")
            return Verdict("protocol_error", f"200 stream with content-type {content_type or 'none'}")
        verdict = classify_stream(planned.route, raw, planned.expected, cut=cut is not None)
        if verdict.cls == "protocol_error" and cut is not None and "cut" in verdict.detail:
            return verdict._replace(detail=f"{verdict.detail}: {cut}")
        return verdict
    if cut is not None:
        return Verdict("protocol_error", f"200 with a cut body ({cut})")
    vector = None
    if planned.route == "embeddings" and served in EMBEDDERS:
        vector = EMBEDDERS[served](planned.prompt)
    return classify_json(planned.route, raw, planned.expected, vector)


def _shows_text(route: Route, raw: bytes) -> bool:
    """Whether a stream has shown some of the answer's text yet."""
    try:
        events, _ = parse_sse(raw)
    except ValueError:
        return False
    key = "output_text.delta" if route == "responses" else '"content":"'
    return any(key in event.data and "Echo" in event.data for event in events)


async def run_load(
    base_url: str,
    plans: Sequence[Planned],
    *,
    rate: float,
    concurrency: int,
    hang_s: float = HANG_S,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Send ``plans`` arriving at ``rate`` per second, at most ``concurrency`` at once (an arrival waits
    for a free slot), and return every result in plan order."""
    slots = asyncio.Semaphore(concurrency)
    results: list[Result | None] = [None] * len(plans)

    async def one(index: int, planned: Planned, session: aiohttp.ClientSession) -> None:
        try:
            result = await send(session, base_url, planned, hang_s)
            results[index] = result
            if on_result is not None:
                on_result(result)
        finally:
            slots.release()

    async with client_session(concurrency) as session:
        started = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        for index, planned in enumerate(plans):
            wait = started + index / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await slots.acquire()
            tasks.append(asyncio.create_task(one(index, planned, session)))
        await asyncio.gather(*tasks)
    return [r for r in results if r is not None]


def by_marker(entries: Iterable[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """The mock's logged upstream calls grouped by the request id marked in their prompt."""
    found: dict[int, list[dict[str, Any]]] = {}
    for entry in entries:
        hit = _MARKER.search(json.dumps(entry.get("body")))
        if hit:
            found.setdefault(int(hit.group(1)), []).append(entry)
    return found
