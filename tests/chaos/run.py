"""The chaos run from the command line: starts the simulated providers and the router as processes, plays
the breaker, fault and recovery phases, prints the table and the checks, and exits 1 if one fails.

    python -m tests.chaos.run                 # one worker, then two workers sharing breakers in Redis
    python -m tests.chaos.run --short         # the short run pytest does
    python -m tests.chaos.run --soak 600      # rounds for ten minutes; RSS and fd growth checked too

Answers that point at a router defect go to ``tests/artifacts/chaos-problems-<workers>w.jsonl`` (the
request, what the router answered and the upstream faults it met).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from tests.chaos.cluster import Cluster
from tests.chaos.report import Check, checks, problems, problems_text, summary
from tests.chaos.scenario import SHORT, Outcome, Settings, run_scenario

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
MIN_REQUESTS = 5000
SOAK_SETTINGS = Settings(requests=3000, rate=60.0, recovery=300, breaker_models=(), quiesce_s=32.0)


def play(settings: Settings, *, workers: int, redis: bool, artifacts: Path = ARTIFACTS) -> Outcome:
    """One whole run on a cluster of its own."""
    artifacts.mkdir(exist_ok=True)
    name = f"chaos-{workers}w"
    with Cluster(artifacts, workers=workers, redis=redis, name=name) as cluster:
        return asyncio.run(run_scenario(cluster, settings, progress=_progress))


def judge(outcome: Outcome, *, min_requests: int, soak: bool, artifacts: Path = ARTIFACTS) -> list[Check]:
    """Print the report, write the reproductions, return the checks."""
    found = checks(outcome, min_requests=min_requests, soak=soak)
    print(summary(outcome, found), flush=True)
    bad = problems(outcome)
    path = artifacts / f"chaos-problems-{outcome.workers}w.jsonl"
    path.write_text(problems_text(bad) + "\n" if bad else "")
    if bad:
        print(f"{len(bad)} reproductions of suspect answers in {path.relative_to(ROOT)}", flush=True)
    return found


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--short", action="store_true", help="the short run (a few hundred requests)")
    parser.add_argument(
        "--soak", type=float, metavar="SECONDS", help="repeat rounds this long; check RSS and fds"
    )
    parser.add_argument("--workers", type=int, help="only this many workers (2 or more share state in Redis)")
    parser.add_argument("--requests", type=int, help="requests per fault phase")
    parser.add_argument("--rate", type=float, help="requests per second")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    settings = SHORT if args.short else SOAK_SETTINGS if args.soak else Settings()
    if args.soak:
        settings = settings._replace(repeat_until_s=args.soak)
    if args.requests:
        settings = settings._replace(requests=args.requests, recovery=max(args.requests // 10, 50))
    if args.rate:
        settings = settings._replace(rate=args.rate)
    settings = settings._replace(seed=args.seed)
    layouts = [args.workers] if args.workers else [1] if args.soak else [1, 2]
    failed: list[str] = []
    for workers in layouts:
        _progress(f"starting the router with {workers} worker(s)")
        outcome = play(settings, workers=workers, redis=workers > 1)
        min_requests = MIN_REQUESTS if not (args.short or args.requests or args.soak) else 0
        found = judge(outcome, min_requests=min_requests, soak=bool(args.soak))
        failed += [f"{workers} worker(s): {c.name}" for c in found if not c.ok]
        print(flush=True)
    if failed:
        print("FAILED:\n  " + "\n  ".join(failed))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
