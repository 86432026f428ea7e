"""Benchmark: direct vs through-router throughput and added latency; streaming first-chunk latency.

Starts the simulated OpenAI provider and the router (one Granian worker) as separate processes, drives
them with wrk at 1, 16 and 64 connections (non-streaming) and measures time to the first content chunk
of streams with a sequential client. Writes ``bench-results/latest.json`` and prints a table with the
targets: added p50 at one connection <= 0.6 ms, >= 2,500 req/s through the router at 64 connections.

    python -m tests.bench.run [--seconds 10] [--streams 200]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from router.cli import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "tests" / "fixtures" / "catalog.yaml"
RESULTS = ROOT / "bench-results"
BODY = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "Say hello words=12"}]}
CONNECTIONS = (1, 16, 64)
TARGET_ADDED_P50_MS = 0.6
TARGET_RPS_64 = 2500.0

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body   = '%s'
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


def start(args: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    process = subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    if not wait_for_port("127.0.0.1", port, timeout=30):
        process.kill()
        sys.exit(f"{args[3]} did not start; see {log}")
    return process


def wrk(url: str, connections: int, seconds: int, script: Path) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    stats = json.loads(out.split("JSON ", 1)[1].splitlines()[0])
    return {"rps": rps, **stats}


def first_chunk_ms(url: str, count: int) -> dict[str, float]:
    body = {**BODY, "stream": True}
    samples: list[float] = []
    with httpx.Client(timeout=10) as client:
        for i in range(count + 10):
            started = time.perf_counter()
            seen = False
            with client.stream("POST", url, json=body) as answer:
                for line in answer.iter_lines():
                    if not seen and '"content":"' in line and '"content":""' not in line:
                        seen = True
                        if i >= 10:  # the first requests warm connections up
                            samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"p50": statistics.median(samples), "p95": samples[int(len(samples) * 0.95) - 1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--streams", type=int, default=200, help="streams for first-chunk latency")
    args = parser.parse_args()

    RESULTS.mkdir(exist_ok=True)
    mock_port, router_port = free_port(), free_port()
    mock_url = f"http://127.0.0.1:{mock_port}"
    env = {
        **os.environ,
        "TEST_OPENAI_KEY": "bench-key",
        "ROUTER_OPENAI_BASE_URL": f"{mock_url}/openai/v1",
        "ROUTER_LOG_LEVEL": "info",
    }
    py = sys.executable
    mock = start([py, "-m", "router", "mock", "--port", str(mock_port)], env, mock_port, RESULTS / "mock.log")
    serve = [py, "-m", "router", "serve", "--port", str(router_port), "--catalog", str(CATALOG)]
    router = start(serve, env, router_port, RESULTS / "router.log")
    try:
        direct_url = f"{mock_url}/openai/v1/chat/completions"
        router_url = f"http://127.0.0.1:{router_port}/v1/chat/completions"
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
            handle.write(WRK_SCRIPT % json.dumps(BODY))
            script = Path(handle.name)
        wrk(router_url, 16, 2, script)  # warm-up
        wrk(direct_url, 16, 2, script)
        results: dict[str, Any] = {"seconds": args.seconds, "runs": {}}
        for connections in CONNECTIONS:
            direct = wrk(direct_url, connections, args.seconds, script)
            routed = wrk(router_url, connections, args.seconds, script)
            results["runs"][str(connections)] = {"direct": direct, "router": routed}
        results["stream_first_chunk_ms"] = {
            "direct": first_chunk_ms(direct_url, args.streams),
            "router": first_chunk_ms(router_url, args.streams),
        }
    finally:
        router.terminate()
        mock.terminate()
        router.wait(10)
        mock.wait(10)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    return report(results)


def report(results: dict[str, Any]) -> int:
    print(f"\none router worker; wrk -t1, {results['seconds']} s per run")
    head = ("conns", "direct req/s", "p50 ms", "router req/s", "p50 ms", "p99 ms", "added p50 ms")
    print("{:>5} | {:>12} {:>7} | {:>12} {:>7} {:>7} | {:>12} | errors".format(*head))
    for connections, run in results["runs"].items():
        d, r = run["direct"], run["router"]
        print(
            f"{connections:>5} | {d['rps']:>12.0f} {d['p50']:>7.3f} | {r['rps']:>12.0f} {r['p50']:>7.3f} "
            f"{r['p99']:>7.3f} | {r['p50'] - d['p50']:>12.3f} | {d['errors'] + r['errors']}"
        )
    s = results["stream_first_chunk_ms"]
    print(
        f"stream first chunk p50/p95 ms: direct {s['direct']['p50']:.3f}/{s['direct']['p95']:.3f}, "
        f"router {s['router']['p50']:.3f}/{s['router']['p95']:.3f}"
    )
    one, many = results["runs"]["1"], results["runs"]["64"]
    added = one["router"]["p50"] - one["direct"]["p50"]
    ok_latency = added <= TARGET_ADDED_P50_MS
    ok_rps = many["router"]["rps"] >= TARGET_RPS_64
    print(
        f"target added p50 @1 <= {TARGET_ADDED_P50_MS} ms: {added:.3f} ms {'PASS' if ok_latency else 'MISS'}"
    )
    rps = many["router"]["rps"]
    print(f"target router req/s @64 >= {TARGET_RPS_64:.0f}: {rps:.0f} {'PASS' if ok_rps else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
