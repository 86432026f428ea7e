"""Breakers under a timed brownout of one model: how many failed calls open one, how long after the
upstream recovers it closes, and whether a stalled half-open probe shuts everyone else out. Traffic goes
over connections pinned to each router worker, so that with several workers every one of them sees it."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any, Final, NamedTuple

import aiohttp

from router.cli import free_port
from tests.chaos.cluster import Cluster, MockControl, breaker_states, port_owners
from tests.chaos.driver import Planned, Result, send

BREAKER_MODELS: Final = {
    "oa-breaker": ("openai", "breaker-oa", {"kind": "status", "status": 500, "message": "chaos: brownout"}),
    "an-breaker": ("anthropic", "breaker-an", {"kind": "status", "status": 529}),
    "ge-breaker": ("gemini", "breaker-ge", {"kind": "status", "status": 503}),
}
"""Per wire format, a model browned out alone in the breaker phase, and its brownout's fault."""
BREAKER_FALLBACK: Final = "oa-steady"
COOLDOWN_S: Final = 2.0
"""``routing.breaker.cooldown_s`` of tests/chaos/catalog.yaml (with backoff 1: every cooldown)."""
CONSECUTIVE_FAILURES: Final = 5
"""``routing.breaker.consecutive_failures`` of tests/chaos/catalog.yaml."""
POLL_S: Final = 0.05


class BreakerMeasure(NamedTuple):
    """One breaker under a brownout: failed upstream calls before it opened, and how long after the
    brownout ended it closed (``None``: it did not, in the time allowed)."""

    model: str
    workers: int
    failed_calls_before_open: int | None
    close_delay_s: float | None
    detail: str
    per_worker: tuple[int, ...] = ()
    """Of the failed calls before it opened, how many each worker made (several workers only)."""


async def breaker_phase(
    cluster: Cluster, mock: MockControl, model: str, brownout_s: float = 5.0
) -> BreakerMeasure:
    """Brown ``model`` out (every call fails) for ``brownout_s`` while one client per worker, each on a
    connection to its worker, keeps asking for it (with a steady fallback); measure from
    ``/model-health`` when its breaker opens and closes, and from the mock's log how many failed calls
    reached it before (and from which worker)."""
    provider, upstream, fault = BREAKER_MODELS[model]
    await mock.clear_requests()
    stop = asyncio.Event()
    sessions = await pinned_sessions(cluster)
    url = cluster.router_url
    loops = [asyncio.create_task(_breaker_traffic(session, url, model, 9_000_000 + i * 100_000, stop))
             for i, session in enumerate(sessions)]  # fmt: skip
    await asyncio.sleep(0.3)  # healthy calls first: the breaker starts closed with a clean count
    added = time.monotonic()
    await mock.fault(provider, upstream, fault, for_s=brownout_s)
    ended = added + brownout_s
    tripped: float | None = None
    closed: float | None = None
    detail = ""
    deadline = ended + COOLDOWN_S + 10.0
    try:
        while time.monotonic() < deadline:
            polled = time.monotonic()
            state = (await breaker_states(cluster.router_url)).get(model, {})
            if tripped is None and state.get("state") == "open":
                # The open period started a full cooldown before it ends: that is when it tripped.
                tripped = polled + float(state.get("reopens_in_s") or 0.0) - COOLDOWN_S
            if tripped is not None and polled >= ended and state.get("state") == "closed":
                closed = polled
                break
            await asyncio.sleep(POLL_S)
    finally:
        stop.set()
        await asyncio.gather(*loops)
        for session in sessions:
            await session.close()
    if len(sessions) < cluster.workers:
        detail = f"reached {len(sessions)} of {cluster.workers} workers; "
    owners = port_owners(cluster.router_pids())  # while the upstream connections are still pooled
    calls = [c for c in await mock.requests() if c["body"] and _model_of(c) == upstream]
    failed = [c for c in calls if c.get("fault")]
    before = None
    per_worker: tuple[int, ...] = ()
    if tripped is not None:
        early = [c for c in failed if c["received_monotonic"] <= tripped + 0.005]
        before = len(early)
        if cluster.workers > 1:
            by_pid = Counter(owners.get(int(c["peer"].rpartition(":")[2] or 0)) for c in early)
            per_worker = tuple(sorted(by_pid.values(), reverse=True))
    else:
        detail += f"never seen open ({len(failed)} failed calls)"
    delay = None if closed is None else closed - ended
    if closed is None and tripped is not None:
        detail += f"still not closed {deadline - ended:.1f} s after the brownout"
    return BreakerMeasure(model, cluster.workers, before, delay, detail, per_worker)


def _model_of(call: dict[str, Any]) -> str:
    body = call["body"]
    if isinstance(body, dict) and "model" in body:
        return str(body["model"])
    return str(call["path"]).rpartition("/")[2].partition(":")[0]  # Gemini names it in the path


async def worker_sessions(
    cluster: Cluster, per_worker: int = 1, tries: int = 80
) -> list[list[aiohttp.ClientSession]]:
    """Per router worker, ``per_worker`` client sessions, each holding one keep-alive connection that
    worker accepted (a new connection lands on whichever worker takes it: keep those that fit)."""
    kept: dict[int, list[aiohttp.ClientSession]] = {}
    spare: list[aiohttp.ClientSession] = []
    try:
        for _ in range(tries):
            if len(kept) >= cluster.workers and all(len(v) >= per_worker for v in kept.values()):
                break
            port = free_port()  # the client end's port, to find the worker holding the other end
            connector = aiohttp.TCPConnector(limit=1, local_addr=("127.0.0.1", port))
            session = aiohttp.ClientSession(connector=connector)
            async with session.get(cluster.router_url + "/health/live") as answer:
                await answer.read()
            worker = cluster.worker_of(port)
            if worker is None or len(kept.get(worker, ())) >= per_worker:
                spare.append(session)
            else:
                kept.setdefault(worker, []).append(session)
    finally:
        for session in spare:
            await session.close()
    return list(kept.values())


async def pinned_sessions(cluster: Cluster) -> list[aiohttp.ClientSession]:
    """One client session per router worker, on a connection that worker accepted."""
    return [sessions[0] for sessions in await worker_sessions(cluster)]


async def _breaker_traffic(
    session: aiohttp.ClientSession, url: str, model: str, first_id: int, stop: asyncio.Event
) -> None:
    """Non-stream chat requests for ``model`` (falling back to a steady one), one after another."""
    request_id = first_id
    while not stop.is_set():
        planned = Planned(
            request_id, "chat", False, "list", model, (BREAKER_FALLBACK,), f"q{request_id}z breaker"
        )
        await send(session, url, planned)
        request_id += 1
        await asyncio.sleep(POLL_S)


# --- a stalled half-open probe ------------------------------------------------------------------------

PROBE_STALL_S: Final = 2.5
"""Longer than the chaos catalog's read timeout (2 s): the probe fails after stalling that long."""
PROBE_OTHERS: Final = 4


class ProbeMeasure(NamedTuple):
    """Requests naming a model alone while its half-open probe stalls (the upstream healthy for them)."""

    model: str
    others: list[Result]
    detail: str


async def stalled_probe_phase(cluster: Cluster, mock: MockControl, model: str) -> ProbeMeasure:
    """Open ``model``'s breaker, let it half-open, make its probe stall, and meanwhile ask for the model
    alone (no fallback) on the same worker while the upstream answers them normally: they should be
    answered, not refused because a probe is out."""
    provider, upstream, fault = BREAKER_MODELS[model]
    groups = await worker_sessions(cluster, per_worker=PROBE_OTHERS + 1)
    sessions = groups[0] if groups else []
    try:
        if len(sessions) < PROBE_OTHERS + 1:
            return ProbeMeasure(model, [], f"only {len(sessions)} connections to one worker")
        url = cluster.router_url
        ids = iter(range(9_500_000, 9_600_000))

        def alone() -> Planned:
            request_id = next(ids)
            return Planned(request_id, "chat", False, "flaky", model, (), f"q{request_id}z probe")

        await mock.fault(provider, upstream, fault, times=-1)
        for _ in range(40):
            await send(sessions[0], url, alone())
            if (await breaker_states(url)).get(model, {}).get("state") == "open":
                break
        await mock.clear_faults()
        await mock.fault(provider, upstream, {"kind": "timeout", "delay": PROBE_STALL_S}, times=1)
        deadline = time.monotonic() + COOLDOWN_S + 5
        while (await breaker_states(url)).get(model, {}).get("state") != "half_open":
            if time.monotonic() > deadline:
                return ProbeMeasure(model, [], "the breaker never half-opened")
            await asyncio.sleep(POLL_S)
        probe = asyncio.create_task(send(sessions[0], url, alone()))
        await asyncio.sleep(0.3)  # the probe is out and stalled
        others = await asyncio.gather(*(send(session, url, alone()) for session in sessions[1:]))
        await probe
        return ProbeMeasure(model, list(others), "")
    finally:
        await mock.clear_faults()
        for group in groups:
            for session in group:
                await session.close()
