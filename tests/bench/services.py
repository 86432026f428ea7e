"""The benchmark's server processes (simulated provider, router): started in a session of their own,
always stopped with every process of their group, and never outliving the benchmark."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from router.cli import wait_for_port
from tests.bench import proc

ROOT = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1


class BenchError(Exception):
    """A failure the benchmark explains in one message (no traceback)."""


def _end_with_parent() -> None:
    """In the child before exec: SIGTERM it when the benchmark dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Service:
    """``with Service("router", args, env, port, log, processes=2) as router: ...``: a server process
    (and its workers) listening on ``port``, stopped with its whole process group on the way out."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], port: int, log: Path, *, processes: int = 1
    ) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.processes = processes
        self._args, self._env, self._port, self._log = args, env, port, log
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The main process, which is also the process group id of all its processes."""
        if self._proc is None:
            raise BenchError(f"{self.name} is not running")
        return self._proc.pid

    def __enter__(self) -> Service:
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

    def start(self, timeout: float = 30.0) -> None:
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                self._args,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
                preexec_fn=_end_with_parent,  # safe: no other thread runs in the benchmark
            )
        deadline = time.monotonic() + timeout
        while not wait_for_port("127.0.0.1", self._port, timeout=0.2):
            self._check_alive(deadline)
        # Granian binds the socket, then starts its workers: wait until they all run.
        while len(self.pids()) < self.processes:
            self._check_alive(deadline)
            time.sleep(0.05)

    def _check_alive(self, deadline: float) -> None:
        assert self._proc is not None
        ended = self._proc.poll()
        if ended is not None or time.monotonic() > deadline:
            state = f"exited with status {ended}" if ended is not None else "did not get ready in time"
            raise BenchError(f"{self.name} {state}; its log ({self._log}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def pids(self) -> list[int]:
        """Every live process of the service (its process group), the main process first."""
        if self._proc is None:
            return []
        main = self._proc.pid
        return sorted((s.pid for s in proc.group_stats(main)), key=lambda pid: (pid != main, pid))

    def workers(self) -> list[int]:
        """The processes other than the main one (Granian's workers)."""
        return [pid for pid in self.pids() if pid != self.pid]

    def stop(self) -> None:
        """SIGTERM to the group, SIGKILL after 10 s, then SIGKILL to whatever of the group is left;
        the main process is reaped (no zombie). Safe to call twice."""
        if self._proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self._proc.wait(timeout=5)
        self._signal(signal.SIGKILL)  # workers that outlived their main process go with the group
        self._proc = None

    def _signal(self, sig: int) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)


def python(*args: str) -> list[str]:
    """The command line of ``python -m router ...`` in this interpreter."""
    return [sys.executable, "-m", "router", *args]
