"""The processes of a chaos run: the simulated providers, a private Redis when asked, and the router
(``--workers N``), each on a free port; plus their control clients and the router's resource use."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import aiohttp

from router.cli import free_port
from tests.integration.conftest import Process
from tests.redis_server import RedisServer

HERE = Path(__file__).resolve().parent
CATALOG = HERE / "catalog.yaml"
KEYS = {"CHAOS_OPENAI_KEY": "sk-chaos", "CHAOS_ANTHROPIC_KEY": "sk-ant-chaos", "CHAOS_GEMINI_KEY": "chaos"}


class Resources(NamedTuple):
    """Resident memory and open file descriptors summed over the router's processes."""

    rss_kib: int
    fds: int
    processes: int

    def __str__(self) -> str:
        return f"{self.rss_kib / 1024:.1f} MiB RSS, {self.fds} fds in {self.processes} processes"


class Cluster:
    """``with Cluster(artifacts, workers=2, redis=True) as cluster: ...`` starts everything, stops it all."""

    def __init__(
        self, artifacts: Path, *, workers: int = 1, redis: bool = False, name: str = "chaos"
    ) -> None:
        self.artifacts = artifacts
        self.workers = workers
        self.name = name
        self.redis = RedisServer(artifacts / f"{name}-redis.log") if redis else None
        self.mock_url = ""
        self.router_url = ""
        self._mock: Process | None = None
        self._router: Process | None = None

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        port = free_port()
        self._mock = Process(
            [sys.executable, "-m", "tests.chaos.mockproc", "--port", str(port)],
            env,
            self.artifacts / f"{self.name}-mock.log",
        )
        if not self._mock.wait_for_port(port):
            raise RuntimeError(f"the simulated providers did not start:\n{self._mock.output()}")
        self.mock_url = f"http://127.0.0.1:{port}"
        if self.redis is not None:
            self.redis.start()
        port = free_port()
        self._router = Process(
            [sys.executable, "-m", "router", "serve", "--port", str(port), "--catalog", str(CATALOG),
             "--workers", str(self.workers)],
            self._router_env(),
            self.artifacts / f"{self.name}-router.log",
        )  # fmt: skip
        if not self._router.wait_for_port(port, timeout=30):
            raise RuntimeError(f"the router did not start:\n{self._router.output()}")
        self.router_url = f"http://127.0.0.1:{port}"
        self._wait_for_workers()

    def _router_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
        env |= KEYS | {
            "PYTHONUNBUFFERED": "1",
            "ROUTER_OPENAI_BASE_URL": f"{self.mock_url}/openai/v1",
            "ROUTER_ANTHROPIC_BASE_URL": f"{self.mock_url}/anthropic",
            "ROUTER_GOOGLE_BASE_URL": f"{self.mock_url}/gemini/v1beta",
            "ROUTER_LOG_FORMAT": "json",
            "ROUTER_LOG_LEVEL": "warning",
        }
        if self.redis is not None:
            env["ROUTER_REDIS_URL"] = self.redis.url
        return env

    def _wait_for_workers(self, timeout: float = 30.0) -> None:
        """Until every worker process runs (Granian starts them after the socket is bound)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.router_pids()) >= self.workers + (1 if self.workers > 1 else 0):
                return
            time.sleep(0.1)

    def stop(self) -> None:
        for process in (self._router, self._mock):
            if process is not None:
                process.stop()
        self._router = self._mock = None
        if self.redis is not None:
            self.redis.stop()

    def router_exit(self) -> int | None:
        """The router's exit status if it has ended (``None`` while it runs)."""
        return self._router.proc.poll() if self._router is not None else None

    def router_log(self) -> str:
        return self._router.output() if self._router is not None else ""

    def router_pids(self) -> list[int]:
        """The router's main process and all its descendants."""
        if self._router is None:
            return []
        return process_tree(self._router.proc.pid)

    def worker_of(self, client_port: int) -> int | None:
        """The router process that accepted the connection from ``client_port``."""
        router_port = int(self.router_url.rpartition(":")[2])
        for found in sockets(self.router_pids()):
            if found.remote_port == client_port and found.local_port == router_port:
                return found.pid
        return None

    def resources(self) -> Resources:
        rss = fds = 0
        pids = self.router_pids()
        for pid in pids:
            rss += _rss_kib(pid)
            fds += _fd_count(pid)
        return Resources(rss, fds, len(pids))


class Socket(NamedTuple):
    local_port: int
    remote_port: int
    pid: int


def sockets(pids: list[int]) -> list[Socket]:
    """The TCP sockets the processes ``pids`` hold, from ``/proc``."""
    inodes: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes[target[8:-1]] = pid
        except OSError:
            continue
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                owner = inodes.get(fields[9])
                if owner is not None:
                    local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
                    found.append(Socket(local, remote, owner))
    return found


def port_owners(pids: list[int]) -> dict[int, int]:
    """Local TCP port -> the process (of ``pids``) holding that socket: tells which worker made an
    upstream call that the mock logged from that port."""
    return {s.local_port: s.pid for s in sockets(pids)}


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants, from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


# --- control clients ---------------------------------------------------------------------------------


class MockControl:
    """The simulated providers' ``/__mock__`` API."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._http = session
        self._url = url + "/__mock__"

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        async with self._http.request(method, self._url + path, json=payload) as answer:
            body = await answer.json()
            if answer.status != 200:
                raise RuntimeError(f"{method} /__mock__{path}: {answer.status} {body}")
            return body

    async def fault(
        self,
        provider: str,
        model: str,
        fault: dict[str, Any],
        *,
        times: int | None = None,
        for_s: float | None = None,
        ratio: float = 1.0,
    ) -> None:
        payload: dict[str, Any] = {"provider": provider, "model": model, "fault": fault, "ratio": ratio}
        if times is not None:
            payload["times"] = times
        if for_s is not None:
            payload["for_s"] = for_s
        await self._call("POST", "/faults", payload)

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    async def behaviour(self, provider: str, model: str, **values: float) -> None:
        await self._call("POST", "/behaviour", {"provider": provider, "model": model, **values})

    async def requests(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await self._call("GET", "/requests"))["requests"]
        return found

    async def clear_requests(self) -> None:
        await self._call("DELETE", "/requests")


async def breaker_states(url: str) -> dict[str, dict[str, Any]]:
    """Every model's breaker from ``/model-health``, asked on a new connection (so, with several
    workers, of whichever worker takes it)."""
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True), timeout=aiohttp.ClientTimeout(total=5)
        ) as session,
        session.get(url + "/model-health") as answer,
    ):
        body = await answer.json()
    return {m["id"]: m["breaker"] for m in body["models"] if m.get("breaker") is not None}
