"""The phases of a chaos run against a running cluster: breakers under a timed brownout (and a stalled
half-open probe), the load under rotating faults (with client aborts), and the load once the faults
stop; ``run_scenario`` plays them and gathers what ``report`` judges."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from tests.chaos.breakers import (
    BREAKER_MODELS,
    BreakerMeasure,
    ProbeMeasure,
    breaker_phase,
    stalled_probe_phase,
)
from tests.chaos.cluster import Cluster, MockControl, Resources
from tests.chaos.driver import Planned, Planner, Result, by_marker, client_session, run_load
from tests.chaos.faultplan import label, rotate_faults

SLOW: Final = (("openai", "slow-oa"), ("anthropic", "slow-an"), ("gemini", "slow-ge"))
SLOW_TOKENS_PER_S: Final = 10.0


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
    probes: list[ProbeMeasure]
    aborts: list[AbortMeasure]
    faults: Counter[str]
    resources: list[tuple[str, Resources]]
    router_exit: int | None = None
    """The router's exit status if it ended during the run (``None``: it ran throughout)."""


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
        probes = []
        for model in settings.breaker_models[:1]:
            progress(f"stalled probe: {model}")
            probes.append(await stalled_probe_phase(cluster, mock, model))
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
            if cluster.router_exit() is not None:
                tail = cluster.router_log()[-2000:]
                progress(f"the router exited ({cluster.router_exit()}); its log ends:\n{tail}")
                break
            if time.monotonic() - started >= settings.repeat_until_s:
                break
    return Outcome(
        cluster.workers, cluster.redis is not None, phases, breakers, probes, aborts, faults, resources,
        cluster.router_exit(),
    )  # fmt: skip


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
