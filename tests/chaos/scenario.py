"""The phases of a chaos run against a running cluster: breakers under a timed brownout, the load under
rotating faults (with client aborts), and the load once the faults stop; ``run_scenario`` plays them
and gathers what ``report`` judges."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Final, NamedTuple

import aiohttp

from router.cli import free_port
from tests.chaos.cluster import Cluster, MockControl, Resources, breaker_states, port_owners
from tests.chaos.driver import Planned, Planner, Result, by_marker, client_session, run_load, send
from tests.chaos.faultplan import label, rotate_faults

SLOW: Final = (("openai", "slow-oa"), ("anthropic", "slow-an"), ("gemini", "slow-ge"))
SLOW_TOKENS_PER_S: Final = 10.0
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


class Settings(NamedTuple):
    """How big a run is."""

    requests: int = 6000
    rate: float = 90.0
    concurrency: int = 64
    slot_s: float = 1.5
    recovery: int = 600
    breaker_models: tuple[str, ...] = tuple(BREAKER_MODELS)
    brownout_s: float = 5.0
    seed: int = 1
    repeat_until_s: float = 0.0
    """Soak: play the fault and recovery phases again until this many seconds have passed."""
    quiesce_s: float = 0.0
    """Idle time before each resource sample (longer than the router's upstream keep-alive, so that
    idle pooled connections are gone and file descriptors compare like with like)."""


SHORT: Final = Settings(
    requests=420, rate=40.0, concurrency=32, slot_s=0.6, recovery=120, breaker_models=("oa-breaker",),
    brownout_s=3.0,
)  # fmt: skip


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


class AbortMeasure(NamedTuple):
    """A client that left a stream: how long until the upstream saw its connection close (``None``:
    it never did, the upstream answered to the end)."""

    planned: Planned
    delay_s: float | None


class PhaseRun(NamedTuple):
    name: str
    results: list[Result]
    upstream: dict[int, list[dict[str, Any]]]
    """The mock's logged upstream calls per request id."""
    seconds: float


class Outcome(NamedTuple):
    """Everything a run measured."""

    workers: int
    redis: bool
    phases: list[PhaseRun]
    breakers: list[BreakerMeasure]
    aborts: list[AbortMeasure]
    faults: Counter[str]
    resources: list[tuple[str, Resources]]


async def run_scenario(
    cluster: Cluster, settings: Settings, *, progress: Callable[[str], None] = lambda _: None
) -> Outcome:
    async with client_session(8) as session:
        mock = MockControl(session, cluster.mock_url)
        for provider, model in SLOW:
            await mock.behaviour(provider, model, tokens_per_s=SLOW_TOKENS_PER_S)
        resources = [("start", cluster.resources())]
        breakers = []
        for model in settings.breaker_models:
            progress(f"breaker phase: {model}")
            breakers.append(await breaker_phase(cluster, mock, model, settings.brownout_s))
        planner = Planner(settings.seed)
        phases: list[PhaseRun] = []
        aborts: list[AbortMeasure] = []
        faults: Counter[str] = Counter()
        started = time.monotonic()
        while True:
            progress(f"fault phase: {settings.requests} requests")
            faulted = await fault_phase(cluster, mock, planner.plan(settings.requests), settings)
            phases.append(faulted)
            aborts += abort_delays(faulted)
            faults += Counter(label(c.get("fault")) for calls in faulted.upstream.values() for c in calls)
            progress(f"recovery phase: {settings.recovery} requests")
            phases.append(
                await recovery_phase(cluster, mock, planner.plan(settings.recovery, aborts=False), settings)
            )
            await asyncio.sleep(settings.quiesce_s)
            resources.append((f"after round {len(phases) // 2}", cluster.resources()))
            if time.monotonic() - started >= settings.repeat_until_s:
                break
    return Outcome(cluster.workers, cluster.redis is not None, phases, breakers, aborts, faults, resources)


async def _logged(mock: MockControl, results: list[Result]) -> dict[int, list[dict[str, Any]]]:
    await asyncio.sleep(0.2)  # let the mock note the last disconnects
    logged = by_marker(await mock.requests())
    await mock.clear_requests()
    wanted = {r.planned.id for r in results}
    return {k: v for k, v in logged.items() if k in wanted}


async def fault_phase(
    cluster: Cluster, mock: MockControl, plans: list[Planned], settings: Settings
) -> PhaseRun:
    """The load while every flaky model rotates through brownouts of every fault kind."""
    await mock.clear_requests()
    stop = asyncio.Event()
    rotation = asyncio.create_task(rotate_faults(mock, settings.slot_s, stop))
    started = time.monotonic()
    try:
        results = await run_load(
            cluster.router_url, plans, rate=settings.rate, concurrency=settings.concurrency
        )
    finally:
        stop.set()
        await rotation
        await mock.clear_faults()
    seconds = time.monotonic() - started
    return PhaseRun("faults", results, await _logged(mock, results), seconds)


async def recovery_phase(
    cluster: Cluster, mock: MockControl, plans: list[Planned], settings: Settings
) -> PhaseRun:
    """The load right after the faults stop: every answer must be complete."""
    await mock.clear_faults()
    started = time.monotonic()
    results = await run_load(cluster.router_url, plans, rate=settings.rate, concurrency=settings.concurrency)
    seconds = time.monotonic() - started
    return PhaseRun("recovery", results, await _logged(mock, results), seconds)


def abort_delays(phase: PhaseRun) -> list[AbortMeasure]:
    """For each stream the driver left: when the upstream call it was reading saw its client go."""
    found = []
    for result in phase.results:
        if result.aborted_at is None:
            continue
        calls = phase.upstream.get(result.planned.id, [])
        gone = calls[-1].get("disconnected_monotonic") if calls else None
        found.append(
            AbortMeasure(result.planned, None if gone is None else max(gone - result.aborted_at, 0.0))
        )
    return found


# --- breakers ------------------------------------------------------------------------------------------


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


async def pinned_sessions(cluster: Cluster, tries: int = 60) -> list[aiohttp.ClientSession]:
    """One client session per router worker, each holding one keep-alive connection that worker
    accepted (new connections land on whichever worker takes them; keep one per worker)."""
    kept: dict[int, aiohttp.ClientSession] = {}
    spare: list[aiohttp.ClientSession] = []
    try:
        for _ in range(tries):
            if len(kept) >= cluster.workers:
                break
            port = free_port()  # the client end's port, to find the worker holding the other end
            connector = aiohttp.TCPConnector(limit=1, local_addr=("127.0.0.1", port))
            session = aiohttp.ClientSession(connector=connector)
            async with session.get(cluster.router_url + "/health/live") as answer:
                await answer.read()
            worker = cluster.worker_of(port)
            if worker is None or worker in kept:
                spare.append(session)
            else:
                kept[worker] = session
    finally:
        for session in spare:
            await session.close()
    return list(kept.values())


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
