"""A private Redis server for the tests: its own port, nothing on disk, stopped and restarted at will."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from router.cli import free_port, wait_for_port


class RedisServer:
    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self._proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=self._log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        if not wait_for_port("127.0.0.1", self.port, timeout=10):
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None
            deadline = time.monotonic() + 5
            while wait_for_port("127.0.0.1", self.port, timeout=0.1) and time.monotonic() < deadline:
                time.sleep(0.05)

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()


def redis_server(artifacts: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/run installs it: apt-get install redis-server)")
    server = RedisServer(artifacts / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
