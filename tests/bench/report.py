"""The benchmark's printed report: the table of runs, streams, memory and two workers, then every
target of the issue with its measured value and PASS or MISS."""

from __future__ import annotations

from typing import Any, NamedTuple

# One worker on the 2-core development machine; each compared with the direct baseline of the same run.
TARGET_ADDED_P50_MS = 0.40
TARGET_RPS_1 = 2000.0
TARGET_RPS_64 = 5000.0
TARGET_CPU_US_PER_REQUEST = 200.0  # at 64 connections ("under load")
TARGET_STREAM_ADDED_P50_MS = 0.5
TARGET_CPU_US_PER_STREAM = 500.0
TARGET_RSS_MIB = 100.0  # each worker when ready


OUTSIDE_NOTICE_CPUS = 0.25
DIGITS = {"ms": 3, "req/s": 0, "us": 0, "MiB": 1}


class Target(NamedTuple):
    label: str
    op: str  # "<=" or ">="
    limit: float
    value: float | None
    unit: str

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def line(self) -> str:
        value = "n/a" if self.value is None else f"{self.value:,.{DIGITS.get(self.unit, 1)}f}"
        return (
            f"target {self.label} {self.op} {self.limit:,g} {self.unit}: {value} {self.unit} "
            f"{'PASS' if self.passed else 'MISS'}"
        )


def _num(value: float | None, spec: str = ".0f") -> str:
    return "n/a" if value is None else format(value, spec)


WORKERS = {"1": "one", "2": "two"}


def _mib(*values: float | None) -> str:
    return ", ".join(_num(value, ".1f") for value in values)


def targets(results: dict[str, Any]) -> list[Target]:
    one, many = results["runs"]["1"], results["runs"]["64"]
    first = results["stream_first_chunk_ms"]
    rss = [mib for layout in results["memory_mib"].values() for mib in layout["workers"] if mib is not None]
    return [
        Target("added p50 @1 conn", "<=", TARGET_ADDED_P50_MS, one["added_p50"], "ms"),
        Target("router req/s @1 conn", ">=", TARGET_RPS_1, one["router"]["rps"], "req/s"),
        Target("router req/s @64 conns", ">=", TARGET_RPS_64, many["router"]["rps"], "req/s"),
        Target(
            "router CPU per request @64",
            "<=",
            TARGET_CPU_US_PER_REQUEST,
            many["router"]["router_cpu_us"],
            "us",
        ),
        Target("stream added first-event p50", "<=", TARGET_STREAM_ADDED_P50_MS, first["added_p50"], "ms"),
        Target(
            f"router CPU per {results['stream_load']['chunks']}-chunk stream",
            "<=",
            TARGET_CPU_US_PER_STREAM,
            results["stream_load"]["router"]["router_cpu_us"],
            "us",
        ),
        Target("RSS per worker when ready", "<=", TARGET_RSS_MIB, max(rss) if rss else None, "MiB"),
    ]


def lines(results: dict[str, Any]) -> list[str]:
    """The report as printed, one string per line."""
    out = [
        "",
        f"one router worker; wrk -t1, {results['seconds']} s per run; CPU = utime+stime of every process of "
        "the service (from /proc) / requests completed",
    ]
    head = ["conns", "direct req/s", "p50 ms", "router req/s", "p50 ms", "p99 ms", "added p50 ms"]
    head += ["router CPU us/req", "provider us/req", "errors", "outside CPUs"]
    out.append("{:>5} | {:>12} {:>7} | {:>12} {:>7} {:>7} | {:>12} | {} | {} | {} | {}".format(*head))
    for connections, run in results["runs"].items():
        d, r = run["direct"], run["router"]
        out.append(
            f"{connections:>5} | {d['rps']:>12.0f} {d['p50']:>7.3f} | {r['rps']:>12.0f} {r['p50']:>7.3f} "
            f"{r['p99']:>7.3f} | {run['added_p50']:>12.3f} | {_num(r['router_cpu_us']):>17} | "
            f"{_num(r['provider_cpu_us']):>15} | {d['errors'] + r['errors']:>6.0f} | "
            f"{_num(d.get('outside_cpus'), '.2f'):>5} {_num(r.get('outside_cpus'), '.2f'):>5}"
        )
    for connections, floor in results.get("floor", {}).items():
        added = floor["p50"] - results["runs"][connections]["direct"]["p50"]
        out.append(
            f"floor @{connections} (the same server and the router's upstream client, nothing else): "
            f"{floor['rps']:.0f} req/s, p50 {floor['p50']:.3f} ms (added {added:.3f}), "
            f"CPU {_num(floor['router_cpu_us'])} us/req"
        )
    s = results["stream_first_chunk_ms"]
    out.append(
        f"stream first content event p50/p95 ms (sequential): direct {s['direct']['p50']:.3f}/"
        f"{s['direct']['p95']:.3f}, router {s['router']['p50']:.3f}/{s['router']['p95']:.3f}, "
        f"added p50 {s['added_p50']:.3f}"
    )
    load = results["stream_load"]
    d, r = load["direct"], load["router"]
    out.append(
        f"stream load, {load['clients']} concurrent clients for {load['seconds']} s, {load['chunks']} "
        f"content events a stream: direct {d['streams_per_s']:.0f} streams/s, router "
        f"{r['streams_per_s']:.0f} streams/s; {d['failed'] + r['failed']} failed; outside CPUs "
        f"{_num(d.get('outside_cpus'), '.2f')} {_num(r.get('outside_cpus'), '.2f')}"
    )
    out.append(
        f"  router CPU {_num(r['router_cpu_us'])} us/stream ({r['streams']} streams), provider "
        f"{_num(r['provider_cpu_us'])} us/stream through the router, {_num(d['provider_cpu_us'])} direct"
    )
    for workers, memory in results["memory_mib"].items():
        warm = memory["warm_requests"]
        out.append(
            f"memory, {WORKERS.get(workers, workers)} worker{'s' if workers != '1' else ''}: when ready "
            f"(VmRSS at rest after {warm} request{'s' if warm != 1 else ''}, at least one per worker) "
            f"main process {_mib(memory['main'])} "
            f"MiB, each worker {_mib(*memory['workers'])} MiB; worker peak after the load (VmHWM) "
            f"{_mib(*memory['workers_peak'])} MiB; router idle CPU {memory['idle_cpu_ms_per_s']:.1f} ms/s"
        )
    two, one = results["two_workers"]["64"], results["runs"]["64"]
    out.append(
        f"two router workers @64 conns: {two['rps']:.0f} req/s, p50 {two['p50']:.3f} ms, router CPU "
        f"{_num(two['router_cpu_us'])} us/req (one worker: {one['router']['rps']:.0f} req/s, "
        f"{_num(one['router']['router_cpu_us'])} us/req; direct {one['direct']['rps']:.0f} req/s); "
        f"outside CPUs {_num(two.get('outside_cpus'), '.2f')}"
    )
    outside = results["outside_cpus"]
    out.append(
        f"outside CPUs: CPUs busy with other processes or stolen by the hypervisor during each measured "
        f"run (direct, router); {outside['mean']:.2f} on average, {outside['max']:.2f} at most, of "
        f"{results['cpus']}"
    )
    if outside["max"] > OUTSIDE_NOTICE_CPUS:
        out.append("  (the servers competed for the CPUs: compare figures within one run, or repeat the run)")
    out.extend(f"warning: {warning}" for warning in results["warnings"])
    out.extend(target.line() for target in targets(results))
    return out
