"""Judges a chaos run: the checks it must pass, the table of every answer's class, and reproductions of
the answers that point at a router defect."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any, Final, NamedTuple

from tests.chaos.breakers import CONSECUTIVE_FAILURES, COOLDOWN_S
from tests.chaos.classify import CLASSES
from tests.chaos.driver import HEALTHY_FAMILIES, Result
from tests.chaos.faultplan import label
from tests.chaos.scenario import Outcome, PhaseRun

RECOVERABLE: Final = ("cut after finish", "trickle")
"""Upstream faults after which the whole answer had arrived: the router owes the client a complete one."""
MIN_SUCCESS: Final = 0.99
ABORT_WITHIN_S: Final = 1.0
MIN_ABORT_SHARE: Final = 0.95
CLOSE_SLACK_S: Final = 2.0
RSS_GROWTH_KIB: Final = 30 * 1024
BAD_CLASSES: Final = ("truncated_success", "hang", "protocol_error")


class Check(NamedTuple):
    name: str
    ok: bool
    measured: str
    limit: str


def checks(outcome: Outcome, *, min_requests: int = 0, soak: bool = False) -> list[Check]:
    """Every assertion of the suite, passed or not."""
    found: list[Check] = []
    running = outcome.router_exit is None
    found.append(
        Check(
            "router running to the end",
            running,
            "yes" if running else f"exited with {outcome.router_exit}",
            "yes",
        )
    )
    every = [r for phase in outcome.phases for r in phase.results]
    if min_requests:
        found.append(
            Check("requests sent", len(every) >= min_requests, str(len(every)), f">= {min_requests}")
        )
    counts = Counter(r.cls for r in every)
    for cls in BAD_CLASSES:
        found.append(Check(cls.replace("_", " "), counts[cls] == 0, str(counts[cls]), "0"))
    healthy, excluded = healthy_results(outcome.phases)
    ok = sum(1 for r in healthy if r.cls == "complete")
    rate = ok / len(healthy) if healthy else 1.0
    found.append(
        Check(
            "success with a healthy candidate (faults on)",
            rate >= MIN_SUCCESS,
            f"{ok}/{len(healthy)} = {rate:.2%} ({excluded} streams cut after output left out)",
            f">= {MIN_SUCCESS:.0%}",
        )
    )
    margin = outcome.workers - 1
    for breaker in outcome.breakers:
        calls = breaker.failed_calls_before_open
        found.append(
            Check(
                f"{breaker.model} breaker opens",
                calls is not None and calls <= CONSECUTIVE_FAILURES + margin,
                f"after {calls} failed calls{_split(breaker.per_worker)}"
                if calls is not None
                else breaker.detail,
                f"<= {CONSECUTIVE_FAILURES}" + (f" + {margin} in flight" if margin else ""),
            )
        )
        delay = breaker.close_delay_s
        found.append(
            Check(
                f"{breaker.model} breaker closes after recovery",
                delay is not None and delay <= COOLDOWN_S + CLOSE_SLACK_S,
                f"{delay:.2f} s" if delay is not None else breaker.detail or "never",
                f"<= {COOLDOWN_S + CLOSE_SLACK_S:g} s",
            )
        )
    for probe in outcome.probes:
        done = sum(1 for r in probe.others if r.cls == "complete")
        refused = Counter(r.detail for r in probe.others if r.cls != "complete")
        found.append(
            Check(
                f"{probe.model} alone, while its half-open probe stalls",
                bool(probe.others) and done == len(probe.others),
                f"{done}/{len(probe.others)} answered"
                + "".join(f", {k} x{v}" for k, v in refused.items())
                + (f" ({probe.detail})" if probe.detail else ""),
                "all answered",
            )
        )
    delays = [a.delay_s for a in outcome.aborts]
    reached = sum(1 for d in delays if d is not None and d <= ABORT_WITHIN_S)
    share = reached / len(delays) if delays else 0.0
    found.append(
        Check(
            f"client aborts reaching the upstream within {ABORT_WITHIN_S:g} s",
            bool(delays) and share >= MIN_ABORT_SHARE,
            f"{reached}/{len(delays)} = {share:.1%} (p95 {_p95(delays)})",
            f">= {MIN_ABORT_SHARE:.0%}",
        )
    )
    for fault in RECOVERABLE:
        met = [r for phase in outcome.phases for r in phase.results if last_fault(phase, r) == fault]
        done = sum(1 for r in met if r.cls == "complete")
        found.append(
            Check(
                f"answers whose upstream met '{fault}' complete",
                done == len(met),
                f"{done}/{len(met)}",
                "100%",
            )
        )
    recovery = [r for phase in outcome.phases if phase.name == "recovery" for r in phase.results]
    done = sum(1 for r in recovery if r.cls == "complete")
    found.append(
        Check("success after the faults stop", done == len(recovery), f"{done}/{len(recovery)}", "100%")
    )
    if soak:
        found += _resource_checks(outcome)
    return found


def _split(per_worker: tuple[int, ...]) -> str:
    return f" ({' + '.join(map(str, per_worker))} by worker)" if per_worker else ""


def _resource_checks(outcome: Outcome) -> list[Check]:
    # The first round warms the router up (pools, caches, the latency statistics); growth counts from it.
    if len(outcome.resources) < 3:
        return [Check("soak rounds", False, f"{len(outcome.resources) - 1}", ">= 2")]
    _, base = outcome.resources[1]
    _, last = outcome.resources[-1]
    if outcome.router_exit is not None or last.processes != base.processes:
        return [
            Check("soak resources", False, f"router processes {base.processes} -> {last.processes}", "same")
        ]
    growth = last.rss_kib - base.rss_kib
    return [
        Check("RSS growth over the soak", growth <= RSS_GROWTH_KIB, f"{growth / 1024:+.1f} MiB", "<= 30 MiB"),
        Check(
            "file descriptor growth over the soak", last.fds <= base.fds, f"{base.fds} -> {last.fds}", "none"
        ),
    ]


def last_fault(phase: PhaseRun, result: Result) -> str:
    """The fault the request's last upstream call met (the one it was answered from), by ``label``.

    OpenAI's own Responses stream (passed through to a Responses client by an OpenAI model) has no
    finish signal before its terminal ``response.completed``: cut before it, the answer is not known
    whole, and the router rightly ends it with ``response.failed``. So there such a cut counts as any
    other cut after output."""
    calls = phase.upstream.get(result.planned.id)
    if not calls:
        return "none"
    fault = label(calls[-1].get("fault"))
    native = result.planned.route == "responses" and str(calls[-1].get("provider")) == "openai"
    return "cut after output (native Responses)" if fault == "cut after finish" and native else fault


def healthy_results(phases: Iterable[PhaseRun]) -> tuple[list[Result], int]:
    """The fault phases' answers to requests with a healthy candidate, less the streams that failed
    after showing output (which no router can recover honestly, unless the whole answer had come),
    and how many those were."""
    kept, excluded = [], 0
    for phase in phases:
        if phase.name != "faults":
            continue
        for result in phase.results:
            if result.planned.family not in HEALTHY_FAMILIES:
                continue
            if result.after_output and last_fault(phase, result) not in RECOVERABLE:
                excluded += 1
                continue
            kept.append(result)
    return kept, excluded


def _p95(values: list[float | None]) -> str:
    known = sorted(v for v in values if v is not None)
    if not known:
        return "n/a"
    missing = len(values) - len(known)
    if missing / len(values) > 0.05:
        return "never"
    if len(known) < 2:
        return f"{known[0] * 1000:.0f} ms"
    return f"{statistics.quantiles([*known, *[float('inf')] * missing], n=20)[-1] * 1000:.0f} ms"


# --- printing -----------------------------------------------------------------------------------------


def table(outcome: Outcome) -> str:
    """Per phase, route and stream: how many answers of each class."""
    header = ["phase", "route", "stream", "n", *[c.replace("_", " ") for c in CLASSES], "after output"]
    rows: list[list[str]] = []
    for name in ("faults", "recovery"):
        results = [r for p in outcome.phases if p.name == name for r in p.results]
        groups: dict[tuple[str, bool], list[Result]] = defaultdict(list)
        for r in results:
            groups[(r.planned.route, r.planned.stream)].append(r)
        for (route, stream), group in sorted(groups.items()):
            counts = Counter(r.cls for r in group)
            after = sum(1 for r in group if r.after_output)
            rows.append([name, route, "yes" if stream else "no", str(len(group)),
                         *[str(counts[c]) for c in CLASSES], str(after)])  # fmt: skip
        if results:
            counts = Counter(r.cls for r in results)
            after = sum(1 for r in results if r.after_output)
            rows.append([name, "all", "", str(len(results)), *[str(counts[c]) for c in CLASSES], str(after)])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)] if rows else []
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def summary(outcome: Outcome, found: list[Check]) -> str:
    """The whole report: configuration, table, families, faults, breakers, aborts, resources, checks."""
    phases = outcome.phases
    seconds = sum(p.seconds for p in phases)
    total = sum(len(p.results) for p in phases)
    parts = [
        f"chaos run: {outcome.workers} worker(s), shared state in Redis: {'yes' if outcome.redis else 'no'}; "
        f"{total} requests in {seconds:.0f} s of load",
        "",
        table(outcome),
        "",
        "fault phase by family (complete / n): " + _families(phases),
        "clean error statuses (fault phase): " + _statuses(phases),
        "failures with a healthy candidate (answer, last upstream fault): " + _healthy_failures(phases),
        "upstream faults met: "
        + ", ".join(f"{k} {v}" for k, v in outcome.faults.most_common() if k != "none"),
    ]
    for b in outcome.breakers:
        opened = (
            f"opened after {b.failed_calls_before_open} failed calls{_split(b.per_worker)}"
            if b.failed_calls_before_open is not None
            else b.detail
        )
        closed = (
            f"closed {b.close_delay_s:.2f} s after the brownout"
            if b.close_delay_s is not None
            else "did not close"
        )
        parts.append(f"breaker {b.model}: {opened}; {closed}")  # fmt: skip
    delays = [a.delay_s for a in outcome.aborts]
    known = sorted(d for d in delays if d is not None)
    if delays:
        median = f"{statistics.median(known) * 1000:.0f} ms" if known else "n/a"
        parts.append(
            f"client aborts: {len(delays)}, seen upstream: {len(known)}, p50 {median}, p95 {_p95(delays)}"
        )
    parts += [f"router resources {when}: {res}" for when, res in outcome.resources]
    parts += ["", "checks:"]
    parts += [f"  {'PASS' if c.ok else 'FAIL'}  {c.name}: {c.measured} (limit {c.limit})" for c in found]
    return "\n".join(parts)


def _families(phases: list[PhaseRun]) -> str:
    groups: dict[str, list[Result]] = defaultdict(list)
    for phase in phases:
        if phase.name == "faults":
            for r in phase.results:
                groups[r.planned.family].append(r)
    return ", ".join(
        f"{family} {sum(1 for r in rs if r.cls == 'complete')}/{len(rs)}"
        for family, rs in sorted(groups.items())
    )


def _healthy_failures(phases: list[PhaseRun]) -> str:
    found = {id(r) for r in healthy_results(phases)[0]}
    counts = Counter(
        f"{r.detail.split(' (')[0]} / {last_fault(p, r)}"
        for p in phases for r in p.results if id(r) in found and r.cls != "complete"
    )  # fmt: skip
    return ", ".join(f"{k} x{v}" for k, v in counts.most_common(12)) or "none"


def _statuses(phases: list[PhaseRun]) -> str:
    counts = Counter(
        r.detail if not r.planned.stream or r.status != 200 else f"stream {r.detail}"
        for p in phases if p.name == "faults" for r in p.results if r.cls == "clean_error"
    )  # fmt: skip
    return ", ".join(f"{k} x{v}" for k, v in counts.most_common(12))


def problems(outcome: Outcome, per_kind: int = 3) -> list[dict[str, Any]]:
    """Reproductions of the answers that point at a router defect: every bad class, failures of a
    request with a healthy candidate (before any output), and failures after the faults stopped;
    a few per kind, each with the request and the upstream faults it met."""
    found: list[dict[str, Any]] = []
    seen: Counter[tuple[str, ...]] = Counter()
    for phase in outcome.phases:
        for r in phase.results:
            why = _why(phase, r)
            if why is None:
                continue
            calls = phase.upstream.get(r.planned.id, [])
            met = [f"{c['provider']}:{_upstream_model(c)}:{label(c.get('fault'))}" for c in calls]
            key = (why, r.planned.route, str(r.planned.stream), r.detail.split("(")[0], *sorted(set(met)))
            seen[key] += 1
            if seen[key] > per_kind:
                continue
            found.append({
                "why": why, "phase": phase.name, "class": r.cls, "detail": r.detail, "status": r.status,
                "message": r.message, "served": r.served, "request": r.planned.describe(), "upstream": met,
                "faults": [c.get("fault") for c in calls if c.get("fault")],
            })  # fmt: skip
    return found


def _why(phase: PhaseRun, r: Result) -> str | None:
    if r.cls in BAD_CLASSES:
        return r.cls
    if r.cls in ("complete", "aborted"):
        return None
    if phase.name == "recovery":
        return "failure after the faults stopped"
    if last_fault(phase, r) in RECOVERABLE:
        return "failure after a whole answer"
    if r.planned.family in HEALTHY_FAMILIES and not r.after_output:
        return "failure with a healthy candidate"
    return None


def _upstream_model(call: dict[str, Any]) -> str:
    body = call.get("body")
    if isinstance(body, dict) and "model" in body:
        return str(body["model"])
    return str(call.get("path", "")).rpartition("/")[2]


def problems_text(found: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(p) for p in found)
