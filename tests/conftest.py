"""Fixtures every test folder shares: the artifacts folder and a private Redis server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_server import RedisServer, redis_server

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def artifacts() -> Iterator[Path]:
    path = ROOT / "tests" / "artifacts"
    path.mkdir(exist_ok=True)
    yield path


@pytest.fixture(scope="session")
def shared_redis(artifacts: Path) -> Iterator[RedisServer]:
    """A Redis server of the tests' own (not the machine's), so a test may stop and restart it."""
    yield from redis_server(artifacts)
