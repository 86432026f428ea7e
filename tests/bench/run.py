"""Benchmark: direct vs through-router throughput, added latency and the router's CPU and memory.

Starts the simulated OpenAI provider and the router (one Granian worker) as separate processes and
drives both with wrk at 1, 16 and 64 connections (non-streaming chat). For every run through the
router it reads the CPU time (utime + stime in ``/proc``) of all the router's processes, and of the
provider's, before and after, and divides by the requests wrk completed. Then streams of 20 content
events: time to the first one with a sequential client, and a load of concurrent clients reading
every event, for CPU per stream. Resident memory of each worker once ready, and a second router with
``--workers 2`` at 64 connections. Each measured run also notes the CPUs that processes outside the
benchmark used meanwhile (the machine is shared), so a disturbed figure shows as one. Writes
``bench-results/latest.json`` and prints a table, then each target of the issue with PASS or MISS.

    python -m tests.bench.run [--seconds 10] [--streams 200] [--stream-clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple, TypeVar

import aiohttp

from router.cli import free_port
from tests.bench import proc, report, streams, wrk
from tests.bench.services import ROOT, BenchError, Service, python

CATALOG = ROOT / "tests" / "fixtures" / "catalog.yaml"
RESULTS = ROOT / "bench-results"
BODY = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "Say hello words=12"}]}
CONNECTIONS = (1, 16, 64)
FLOOR_CONNECTIONS = (1, 64)
WARM_SECONDS = 2
IDLE_SECONDS = 2.0
WARM_ROUNDS = 10
T = TypeVar("T")


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _peaks(router: Service) -> list[float | None]:
    """The peak resident memory (VmHWM) of each worker so far, in MiB."""
    return [_rounded(proc.rss_mib(pid, "VmHWM"), 2) for pid in router.workers()]


class Window(NamedTuple):
    """What one measured stretch cost: CPU of each running service, and the load from outside."""

    cpu: dict[str, proc.CpuDelta]
    outside_cpus: float


class Bench:
    """One benchmark run: the services it started, the figures so far and the warnings met."""

    def __init__(self, args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
        self.seconds: int = args.seconds
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="router-bench-")))
        self.script = wrk.write_script(scratch, BODY)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
        self.env |= {"PYTHONUNBUFFERED": "1", "TEST_OPENAI_KEY": "bench-key", "ROUTER_LOG_LEVEL": "info"}
        port = free_port()
        mock = Service(
            "the simulated provider",
            python("mock", "--port", str(port)),
            self.env,
            port,
            RESULTS / "mock.log",
        )
        self.mock = stack.enter_context(mock)
        self.env["ROUTER_OPENAI_BASE_URL"] = f"{self.mock.url}/openai/v1"
        self.direct_url = f"{self.mock.url}/openai/v1/chat/completions"
        self.running: Service | None = None
        self.warnings: list[str] = []
        self.outside: list[float] = []

    @contextlib.contextmanager
    def floor(self) -> Iterator[Service]:
        """The server and the upstream client alone (``tests.bench.floor``), running for the block."""
        port = free_port()
        args = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--workers", "1"]
        args += ["--http", "1", "--loop", "uvloop", "--port", str(port), "--no-access-log"]
        args += ["tests.bench.floor:app"]
        env = self.env | {"FLOOR_UPSTREAM": self.direct_url}
        with Service(
            "the floor (server and upstream client only)", args, env, port, RESULTS / "floor.log", processes=2
        ) as service:
            self.running = service
            try:
                yield service
            finally:
                self.running = None

    @contextlib.contextmanager
    def router(self, workers: int) -> Iterator[Service]:
        """The router with ``workers`` workers, running for the ``with`` block."""
        port = free_port()
        args = python("serve", "--port", str(port), "--catalog", str(CATALOG), "--workers", str(workers))
        log = RESULTS / ("router.log" if workers == 1 else f"router-{workers}w.log")
        name = f"the router ({workers} worker{'s' if workers > 1 else ''})"
        # Granian runs a main process and ``workers`` worker processes, even for one worker.
        with Service(name, args, self.env, port, log, processes=workers + 1) as service:
            self.running = service
            try:
                yield service
            finally:
                self.running = None

    def metered(self, work: Callable[[], T]) -> tuple[T, Window]:
        """Run ``work``; return what it returned with the CPU the provider's and the router's processes
        used meanwhile, and the CPUs used by everything else on the machine (other than this process
        and its wrk runs) on average."""
        services = {"provider": self.mock} | ({"router": self.running} if self.running else {})
        before = {name: proc.cpu_snapshot(service.pid) for name, service in services.items()}
        busy, own, started = proc.machine_busy_seconds(), proc.own_cpu_seconds(), time.monotonic()
        result = work()
        wall = time.monotonic() - started
        busy, own = proc.machine_busy_seconds() - busy, proc.own_cpu_seconds() - own
        after = {name: proc.cpu_snapshot(service.pid) for name, service in services.items()}
        cpu = {name: proc.cpu_delta(before[name], after[name]) for name in services}
        ours = own + sum(delta.seconds for delta in cpu.values())
        return result, Window(cpu, proc.outside_cpus(busy, ours, wall))

    def _per_unit(self, window: Window, count: int, names: tuple[str, ...], label: str) -> dict[str, Any]:
        """CPU seconds and microseconds per request (or stream) of the services ``names``."""
        figures: dict[str, Any] = {}
        for name in names:
            delta = window.cpu[name]
            figures[f"{name}_cpu_s"] = round(delta.seconds, 3)
            figures[f"{name}_cpu_us"] = _rounded(proc.per_unit_us(delta.seconds, count), 1)
            if delta.started or delta.ended:
                self.warnings.append(
                    f"{label}: {name} processes changed during the run (started {sorted(delta.started)}, "
                    f"ended {sorted(delta.ended)}); its CPU figure misses the ended ones' time"
                )
        figures["outside_cpus"] = round(window.outside_cpus, 2)
        self.outside.append(window.outside_cpus)
        return figures

    def _url(self, direct: bool, path: str = "/v1/chat/completions") -> str:
        if direct:
            return self.direct_url
        if self.running is None:
            raise BenchError("no router is running")
        return f"{self.running.url}{path}"

    def wrk(
        self, connections: int, *, direct: bool, label: str, path: str = "/v1/chat/completions"
    ) -> dict[str, Any]:
        """One wrk run, direct or through the running service, with CPU per request."""
        url = self._url(direct, path)
        measured, window = self.metered(lambda: wrk.run(url, connections, self.seconds, self.script))
        stats: dict[str, Any] = dict(measured)
        names = ("provider",) if direct else ("router", "provider")
        stats |= self._per_unit(window, int(stats["requests"]), names, label)
        if stats["errors"]:
            self.warnings.append(f"{label}: wrk counted {stats['errors']:.0f} errors")
        return stats

    def stream_load(self, clients: int, *, direct: bool) -> dict[str, Any]:
        """Concurrent 20-chunk streams for the run's duration, with CPU per whole stream."""
        url = self._url(direct)
        done, window = self.metered(lambda: asyncio.run(streams.load(url, clients, self.seconds)))
        figures: dict[str, Any] = {
            "streams": done.complete,
            "failed": done.failed,
            "streams_per_s": round(done.complete / done.seconds, 1),
        }
        label = f"stream load {'direct' if direct else 'through the router'}"
        names = ("provider",) if direct else ("router", "provider")
        figures |= self._per_unit(window, done.complete, names, label)
        if done.failed:
            self.warnings.append(f"{label}: {done.failed} streams failed or arrived incomplete")
        return figures

    def ready(self, per_round: int) -> dict[str, Any]:
        """Resident memory of each process of the running router once its workers have started (their
        CPU at rest) and each has answered a request: rounds of ``per_round`` concurrent requests on
        new connections until every worker holds one of them. Then the CPU the router uses idle."""
        router = self.running
        assert router is not None
        self._settle(router)
        url, port = f"{router.url}/v1/chat/completions", int(router.url.rsplit(":", 1)[1])
        workers, served, sent = set(router.workers()), set[int](), 0
        for _ in range(WARM_ROUNDS):
            statuses, held = asyncio.run(
                _warm_up(url, per_round, lambda: proc.connections_by_pid(sorted(workers), port))
            )
            sent += per_round
            if any(status != 200 for status in statuses):
                raise BenchError(f"{router.name} answered {statuses}; its log:\n{router.log_tail()}")
            served |= {pid for pid, count in held.items() if count}
            if served >= workers:
                break
        else:
            self.warnings.append(
                f"{router.name}: workers {sorted(workers - served)} took none of {sent} warm-up connections; "
                "their memory when ready is before any request"
            )
        self._settle(router)
        memory: dict[str, Any] = {
            "warm_requests": sent,
            "main": _rounded(proc.rss_mib(router.pid), 2),
            "workers": [_rounded(proc.rss_mib(pid), 2) for pid in router.workers()],
        }
        _, window = self.metered(lambda: time.sleep(IDLE_SECONDS))
        memory["idle_cpu_ms_per_s"] = round(window.cpu["router"].seconds * 1000 / IDLE_SECONDS, 1)
        return memory

    def _settle(self, service: Service, timeout: float = 30.0) -> None:
        """Until the service's processes are at rest: at most one clock tick of CPU in half a second
        (Granian's workers import the application after their process starts)."""
        deadline = time.monotonic() + timeout
        last = proc.cpu_snapshot(service.pid)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = proc.cpu_snapshot(service.pid)
            if now.ticks.keys() == last.ticks.keys() and proc.cpu_delta(last, now, clk_tck=1).seconds <= 1:
                return
            last = now
        self.warnings.append(f"{service.name} was still using CPU {timeout:.0f} s after it started")


async def _warm_up(
    url: str, count: int, inspect: Callable[[], dict[int, int]]
) -> tuple[list[int], dict[int, int]]:
    """``count`` concurrent requests, each on a connection of its own; ``inspect`` runs while those
    connections are still open. Returns the statuses and what ``inspect`` returned."""
    connector = aiohttp.TCPConnector(limit=count)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one() -> int:
            async with session.post(url, json=BODY, headers=streams.HEADERS) as answer:
                await answer.read()
                return answer.status

        statuses = list(await asyncio.gather(*(one() for _ in range(count))))
        return statuses, inspect()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    wrk.require()
    RESULTS.mkdir(exist_ok=True)
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
        "cpu_measure": "utime+stime from /proc/<pid>/stat, summed over each service's process group",
        "runs": {},
        "memory_mib": {},
    }
    with contextlib.ExitStack() as stack:
        bench = Bench(args, stack)
        with bench.router(1) as router:
            results["memory_mib"]["1"] = bench.ready(per_round=1)
            router_url = f"{router.url}/v1/chat/completions"
            wrk.run(router_url, 16, WARM_SECONDS, bench.script)
            wrk.run(bench.direct_url, 16, WARM_SECONDS, bench.script)
            for connections in CONNECTIONS:
                direct = bench.wrk(connections, direct=True, label=f"direct @{connections}")
                routed = bench.wrk(connections, direct=False, label=f"router @{connections}")
                results["runs"][str(connections)] = {
                    "direct": direct,
                    "router": routed,
                    "added_p50": round(routed["p50"] - direct["p50"], 3),
                }
            direct_first = streams.first_content_ms(bench.direct_url, args.streams)
            router_first = streams.first_content_ms(router_url, args.streams)
            results["stream_first_chunk_ms"] = {
                "direct": direct_first,
                "router": router_first,
                "added_p50": round(router_first["p50"] - direct_first["p50"], 3),
            }
            results["stream_load"] = {
                "clients": args.stream_clients,
                "seconds": args.seconds,
                "chunks": streams.CHUNKS,
                "direct": bench.stream_load(args.stream_clients, direct=True),
                "router": bench.stream_load(args.stream_clients, direct=False),
            }
            results["memory_mib"]["1"]["workers_peak"] = _peaks(router)
        with bench.floor() as floor:
            wrk.run(floor.url, 16, WARM_SECONDS, bench.script)
            results["floor"] = {
                str(c): bench.wrk(c, direct=False, label=f"floor @{c}", path="/") for c in FLOOR_CONNECTIONS
            }
        with bench.router(2) as router:
            results["memory_mib"]["2"] = bench.ready(per_round=8)
            wrk.run(f"{router.url}/v1/chat/completions", 16, WARM_SECONDS, bench.script)
            results["two_workers"] = {"64": bench.wrk(64, direct=False, label="two workers @64")}
            results["memory_mib"]["2"]["workers_peak"] = _peaks(router)
        results["warnings"] = bench.warnings
        results["outside_cpus"] = {
            "mean": round(sum(bench.outside) / len(bench.outside), 2),
            "max": round(max(bench.outside), 2),
        }
    results["targets"] = [{**target._asdict(), "passed": target.passed} for target in report.targets(results)]
    return results


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so that SIGTERM and SIGHUP stop the servers on the way out as Ctrl-C does


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run and stream load")
    parser.add_argument("--streams", type=int, default=200, help="sequential streams for first-event latency")
    parser.add_argument(
        "--stream-clients", type=int, default=16, help="concurrent clients of the stream load"
    )
    args = parser.parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    started = time.monotonic()
    try:
        results = measure(args)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; the provider and router processes are stopped", file=sys.stderr)
        return 130
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(report.lines(results)))
    print(f"({results['wall_seconds']:.0f} s; figures in {(RESULTS / 'latest.json').relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
