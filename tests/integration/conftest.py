"""Integration harness: the simulated providers and the router, each a real process on a real port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.cli import free_port, wait_for_port
from router.mock.bedrock_wire import ACCESS_KEY as BEDROCK_ACCESS_KEY
from router.mock.bedrock_wire import SECRET_KEY as BEDROCK_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
TEST_CATALOG = ROOT / "tests" / "fixtures" / "catalog.yaml"
SECRET_KEY = "sk-test-SECRET-0123456789abcdef"
AZURE_KEY = "azure-test-key-0123456789"
# An Entra ID access token's shape (a JWT); the simulated resource checks no signature.
AZURE_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2NvZ25pdGl2ZXNlcnZpY2VzIn0.c2lnbmF0dXJl"
# An OAuth access token's shape (as `gcloud auth print-access-token` prints one) for Vertex AI.
VERTEX_TOKEN = "ya29.a0AfB_test-vertex-token-0123456789"
MAX_BODY = 64 * 1024
# The machine's own AWS settings would sign the simulated Bedrock's calls another way.
AWS_INHERITED = ("AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")


class Process:
    """A child process whose output goes to a file the tests can read."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("wb")
        # A session of its own, so that stopping it stops its worker processes too.
        self.proc = subprocess.Popen(
            args, env=env, stdout=self._file, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )

    def wait_for_port(self, port: int, timeout: float = 20.0) -> bool:
        """Wait until the process listens on ``port``; give up early if it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if wait_for_port("127.0.0.1", port, timeout=0.2):
                return True
        return False

    def output(self) -> str:
        self._file.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(timeout=5)
        # Workers that outlived their parent go with the group.
        self._signal(signal.SIGKILL)
        self._file.close()

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


class Mock:
    """Control of the simulated providers over their HTTP control API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=5)

    def fault(self, model: str, fault: dict[str, Any], times: int = 1, provider: str = "openai") -> None:
        answer = self.http.post(
            "/__mock__/faults", json={"provider": provider, "model": model, "fault": fault, "times": times}
        )
        answer.raise_for_status()

    def behaviour(self, model: str = "*", provider: str = "openai", **values: float) -> None:
        self.http.post(
            "/__mock__/behaviour", json={"provider": provider, "model": model, **values}
        ).raise_for_status()

    def requests(self, provider: str = "openai") -> list[dict[str, Any]]:
        answer = self.http.get("/__mock__/requests", params={"provider": provider})
        answer.raise_for_status()
        requests: list[dict[str, Any]] = answer.json()["requests"]
        return requests

    def reset(self) -> None:
        self.http.post("/__mock__/reset").raise_for_status()

    def require_key(self, provider: str, key: str | None) -> None:
        self.http.post("/__mock__/key", json={"provider": provider, "key": key}).raise_for_status()


@pytest.fixture(scope="session")
def mock_process(artifacts: Path) -> Iterator[Mock]:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = Process(
        [sys.executable, "-m", "router", "mock", "--port", str(port)], env, artifacts / "mock.log"
    )
    try:
        if not process.wait_for_port(port):
            pytest.fail(f"the simulated providers did not start:\n{process.output()}")
        yield Mock(f"http://127.0.0.1:{port}")
    finally:
        process.stop()


@pytest.fixture()
def mock(mock_process: Mock) -> Mock:
    mock_process.reset()
    return mock_process


class Router:
    def __init__(self, url: str, process: Process) -> None:
        self.url = url
        self.process = process
        self.http = httpx.Client(base_url=url, timeout=15)

    def logs(self) -> str:
        return self.process.output()


def start_router(
    mock: Mock,
    artifacts: Path,
    catalog: Path,
    name: str,
    *,
    env: dict[str, str] | None = None,
    flags: list[str] | None = None,
) -> Router:
    """The router on a free port, its providers pointed at the simulated ones; ``env`` adds to
    (or, with an empty value, removes from) its environment."""
    port = free_port()
    closed = free_port()  # nothing listens here: connections are refused
    extra = env or {}
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "TEST_OPENAI_KEY": SECRET_KEY,
        "ROUTER_OPENAI_BASE_URL": f"{mock.url}/openai/v1",
        "ROUTER_COMPAT_BASE_URL": f"{mock.url}/openai/v1",
        "ROUTER_DEAD_BASE_URL": f"http://127.0.0.1:{closed}/v1",
        "ROUTER_DEAD_ANTHROPIC_BASE_URL": f"http://127.0.0.1:{closed}",
        "ROUTER_DEAD_GOOGLE_BASE_URL": f"http://127.0.0.1:{closed}/v1beta",
        "ROUTER_ANTHROPIC_BASE_URL": f"{mock.url}/anthropic",
        "TEST_ANTHROPIC_KEY": "sk-ant-test-key",
        "ROUTER_GOOGLE_BASE_URL": f"{mock.url}/gemini/v1beta",
        "TEST_GEMINI_KEY": "gemini-test-key",
        "ROUTER_AZURE_BASE_URL": f"{mock.url}/azure",
        "ROUTER_AZURE_LEGACY_BASE_URL": f"{mock.url}/azure",
        "ROUTER_AZURE_ENTRA_BASE_URL": f"{mock.url}/azure",
        "ROUTER_DEAD_AZURE_BASE_URL": f"http://127.0.0.1:{closed}",
        "ROUTER_VERTEX_BASE_URL": f"{mock.url}/vertex",
        "ROUTER_VERTEX_ACCESS_TOKEN": VERTEX_TOKEN,
        "ROUTER_DEAD_VERTEX_BASE_URL": f"http://127.0.0.1:{closed}",
        "ROUTER_DEAD_VERTEX_ACCESS_TOKEN": VERTEX_TOKEN,
        "TEST_AZURE_KEY": AZURE_KEY,
        "TEST_AZURE_TOKEN": AZURE_TOKEN,
        "ROUTER_BEDROCK_BASE_URL": f"{mock.url}/bedrock",
        "ROUTER_DEAD_BEDROCK_BASE_URL": f"http://127.0.0.1:{closed}",
        "AWS_ACCESS_KEY_ID": BEDROCK_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": BEDROCK_SECRET_KEY,
        "ROUTER_MAX_BODY_BYTES": str(MAX_BODY),
        "ROUTER_LOG_FORMAT": "json",
    }
    env.pop("TEST_NEVER_SET_KEY", None)
    for var, value in extra.items():
        if value:
            env[var] = value
        else:
            env.pop(var, None)
    for inherited in (
        *AWS_INHERITED,
        "ROUTER_API_KEY",
        "ROUTER_OPS_KEY",
        "ROUTER_REDIS_URL",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
    ):
        if inherited not in extra:
            env.pop(inherited, None)
    args = [sys.executable, "-m", "router", "serve", "--port", str(port), "--catalog", str(catalog)]
    args.extend(flags or ())
    process = Process(args, env, artifacts / f"{name}.log")
    if not process.wait_for_port(port):
        output = process.output()
        process.stop()
        pytest.fail(f"the router did not start:\n{output}")
    return Router(f"http://127.0.0.1:{port}", process)


@pytest.fixture(scope="session")
def router(mock_process: Mock, artifacts: Path) -> Iterator[Router]:
    started = start_router(mock_process, artifacts, TEST_CATALOG, "router")
    try:
        yield started
    finally:
        started.process.stop()
