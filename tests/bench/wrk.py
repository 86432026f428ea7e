"""Driving an HTTP endpoint with wrk (one thread, N connections, a fixed JSON POST) and reading its
requests/s, latency percentiles, completed requests and errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.bench.services import BenchError

# The body goes in a Lua long string, so it may hold any quote; "]]" cannot appear in compact JSON
# of the benchmark's bodies.
SCRIPT = """
wrk.method = "POST"
wrk.body   = [[%s]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
done = function(summary, latency, requests)
  local fmt = "JSON {\\"p50\\": %%f, \\"p90\\": %%f, \\"p99\\": %%f, "
  fmt = fmt .. "\\"requests\\": %%d, \\"errors\\": %%d}\\n"
  io.write(string.format(fmt,
    latency:percentile(50) / 1000.0, latency:percentile(90) / 1000.0, latency:percentile(99) / 1000.0,
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")

MISSING = (
    "wrk is not installed: the benchmark drives the servers with it. Install it with "
    "`sudo apt-get install wrk` (Debian/Ubuntu) or `brew install wrk` (macOS), then run `make bench` again."
)


def require() -> None:
    """Fail with an explanation when wrk is not on the PATH."""
    if shutil.which("wrk") is None:
        raise BenchError(MISSING)


def write_script(directory: Path, body: dict[str, Any]) -> Path:
    """The Lua script that posts ``body`` and prints the summary as one ``JSON {...}`` line."""
    text = json.dumps(body, separators=(",", ":"))
    if "]]" in text:
        raise ValueError("the body must not contain ']]'")
    script = directory / "bench.lua"
    script.write_text(SCRIPT % text)
    return script


def parse(output: str) -> dict[str, float]:
    """wrk's stdout -> ``{"rps", "p50", "p90", "p99" (ms), "requests", "errors"}``."""
    rps = _RPS.search(output)
    if rps is None or "JSON " not in output:
        raise ValueError(f"unexpected wrk output:\n{output}")
    stats: dict[str, float] = json.loads(output.split("JSON ", 1)[1].splitlines()[0])
    return {"rps": float(rps.group(1)), **stats}


def run(url: str, connections: int, seconds: int, script: Path) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}) on {url}:\n{done.stderr or done.stdout}")
    try:
        return parse(done.stdout)
    except ValueError as exc:
        raise BenchError(str(exc)) from None
