"""The short chaos run (a few hundred requests, the same classifier and checks as ``make chaos``): the
router and the simulated providers as real processes, faults of every kind injected while the load runs.

It expects the correct behaviour; ``tests/artifacts/chaos-problems-<n>w.jsonl`` holds a reproduction of
each suspect answer when it fails.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.chaos.report import summary
from tests.chaos.run import judge, play
from tests.chaos.scenario import SHORT


def _run(artifacts: Path, workers: int) -> None:
    outcome = play(SHORT, workers=workers, redis=workers > 1, artifacts=artifacts)
    found = judge(outcome, min_requests=0, soak=False, artifacts=artifacts)
    failed = [c for c in found if not c.ok]
    assert not failed, "\n" + summary(outcome, found)


@pytest.mark.timeout(240)
def test_short_chaos_run(artifacts: Path) -> None:
    _run(artifacts, workers=1)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_short_chaos_run_two_workers_sharing_breakers_in_redis(artifacts: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    _run(artifacts, workers=2)
