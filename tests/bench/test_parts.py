"""The benchmark's pure parts: /proc parsing, CPU arithmetic, wrk output, stream events, the report."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from tests.bench import proc, report, streams, wrk

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:19556/openai/v1/chat/completions
  1 threads and 2 connections
  Latency Distribution
     50%  463.00us
     99%    0.87ms
  4763 requests in 1.10s, 3.77MB read
Requests/sec:   4331.39
Transfer/sec:      3.43MB
JSON {"p50": 0.463000, "p90": 0.584000, "p99": 0.874000, "requests": 4763, "errors": 0}
"""


def stat_line(pid: int, comm: str, ppid: int, pgrp: int, utime: int, stime: int) -> str:
    # Fields 3.. of proc(5): state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime ...
    return f"{pid} ({comm}) S {ppid} {pgrp} {pgrp} 0 -1 4194560 10 0 0 0 {utime} {stime} 7 9 20 0 4 0 5\n"


# --- /proc -------------------------------------------------------------------------------------------


def test_parse_stat_reads_the_fields_after_the_command_name_even_when_it_holds_spaces_and_parens() -> None:
    stat = proc.parse_stat(stat_line(4242, "python (x) -m router", 1, 4242, 1500, 250))
    assert stat == proc.Stat(pid=4242, ppid=1, pgrp=4242, utime=1500, stime=250)


def test_parse_stat_of_this_process() -> None:
    stat = proc.parse_stat(Path(f"/proc/{os.getpid()}/stat").read_text())
    assert (stat.pid, stat.ppid, stat.pgrp) == (os.getpid(), os.getppid(), os.getpgrp())


def test_parse_status_kib() -> None:
    text = "Name:\tpython\nVmHWM:\t   83640 kB\nVmRSS:\t   81200 kB\nThreads:\t4\n"
    assert proc.parse_status_kib(text, "VmRSS") == 81200
    assert proc.parse_status_kib(text, "VmHWM") == 83640
    assert proc.parse_status_kib(text, "VmSwap") is None


def test_group_stats_keeps_the_group_and_skips_other_entries(tmp_path: Path) -> None:
    for pid, pgrp in ((100, 100), (101, 100), (102, 7), (103, 100)):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(stat_line(pid, "router", 1, pgrp, pid, 1))
    (tmp_path / "self").mkdir()
    (tmp_path / "104").mkdir()  # a process that ended while the directory was listed: no stat file
    (tmp_path / "105").mkdir()
    (tmp_path / "105" / "stat").write_text("garbage")
    assert [s.pid for s in proc.group_stats(100, tmp_path)] == [100, 101, 103]
    assert proc.cpu_snapshot(100, tmp_path).ticks == {100: 101, 101: 102, 103: 104}


def test_cpu_delta_sums_every_process_and_counts_a_new_one_whole() -> None:
    before = proc.CpuSnapshot({10: 1000, 11: 500})
    after = proc.CpuSnapshot({10: 1150, 11: 530, 12: 20})
    delta = proc.cpu_delta(before, after, clk_tck=100)
    assert delta.seconds == pytest.approx(2.0)  # (150 + 30 + 20) ticks
    assert delta.started == {12} and delta.ended == frozenset()


def test_cpu_delta_reports_a_process_that_ended() -> None:
    delta = proc.cpu_delta(proc.CpuSnapshot({10: 100, 11: 100}), proc.CpuSnapshot({10: 200}), clk_tck=100)
    assert delta.seconds == pytest.approx(1.0)
    assert delta.ended == {11} and delta.started == frozenset()


def test_cpu_per_request_in_microseconds() -> None:
    assert proc.per_unit_us(2.5, 10_000) == pytest.approx(250.0)
    assert proc.per_unit_us(0.0, 10) == 0.0
    assert proc.per_unit_us(1.0, 0) is None


def test_machine_busy_counts_work_and_steal_not_idle_nor_iowait() -> None:
    text = "cpu  476165 693 70940 1064049 2908 0 11075 2782 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n"
    assert proc.parse_machine_busy(text) == 476165 + 693 + 70940 + 0 + 11075 + 2782
    with pytest.raises(ValueError):
        proc.parse_machine_busy("cpu0 1 2 3 4 5 6 7 8\n")
    assert proc.machine_busy_seconds() > 0


def test_outside_load_is_what_the_machine_did_besides_the_benchmark() -> None:
    # 10 s in which the machine was busy 14 CPU-seconds, 11 of them the benchmark's: 0.3 CPUs outside.
    assert proc.outside_cpus(busy=14.0, ours=11.0, wall=10.0) == pytest.approx(0.3)
    assert proc.outside_cpus(busy=10.0, ours=10.04, wall=10.0) == 0.0  # tick rounding: never negative
    assert proc.outside_cpus(busy=1.0, ours=0.0, wall=0.0) == 0.0


def test_own_cpu_grows_with_work() -> None:
    before = proc.own_cpu_seconds()
    sum(i * i for i in range(200_000))
    assert proc.own_cpu_seconds() >= before


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 500 1 0 100
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 501 1 0 20 4
   2: 0100007F:1F90 0100007F:D432 01 00000000:00000000 00:00000000 00000000  1000        0 502 1 0 20 4
   3: 0100007F:1F90 0100007F:D433 06 00000000:00000000 00:00000000 00000000     0        0 0 3 0
   4: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 503 1 0 20 4
"""


def test_parse_tcp_table() -> None:
    rows = proc.parse_tcp_table(TCP)
    assert rows[0] == (8080, "0A", "500") and rows[1] == (8080, "01", "501") and rows[4][0] == 0xD431


def test_connections_by_pid_counts_the_accepted_connections_each_worker_holds(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(TCP)
    sockets = {10: ["500"], 11: ["501", "502"], 12: [], 13: ["503"]}  # main (listener), workers, client
    for pid, inodes in sockets.items():
        (tmp_path / str(pid) / "fd").mkdir(parents=True)
        (tmp_path / str(pid) / "fd" / "0").symlink_to("/dev/null")
        for fd, inode in enumerate(inodes, start=3):
            (tmp_path / str(pid) / "fd" / str(fd)).symlink_to(f"socket:[{inode}]")
    assert proc.connections_by_pid([11, 12], 8080, tmp_path) == {11: 2, 12: 0}
    assert proc.connections_by_pid([10, 13, 99], 8080, tmp_path) == {10: 0, 13: 0, 99: 0}


def test_rss_of_this_process_and_of_none(tmp_path: Path) -> None:
    mib = proc.rss_mib(os.getpid())
    assert mib is not None and mib > 1
    assert proc.rss_mib(123, proc=tmp_path) is None


# --- wrk ---------------------------------------------------------------------------------------------


def test_parse_wrk_output() -> None:
    assert wrk.parse(WRK_OUTPUT) == {
        "rps": 4331.39,
        "p50": 0.463,
        "p90": 0.584,
        "p99": 0.874,
        "requests": 4763,
        "errors": 0,
    }


def test_parse_wrk_output_without_the_summary_is_an_error() -> None:
    with pytest.raises(ValueError, match="unexpected wrk output"):
        wrk.parse("unable to connect to 127.0.0.1:9 Connection refused\n")


def test_the_script_carries_the_body_verbatim(tmp_path: Path) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": 'it\'s "quoted"'}]}
    text = wrk.write_script(tmp_path, body).read_text()
    assert (
        """wrk.body   = [[{"model":"m","messages":[{"role":"user","content":"it's \\"quoted\\""}]}]]"""
        in text
    )
    with pytest.raises(ValueError):
        wrk.write_script(tmp_path, {"content": "a]]b"})


# --- streams -----------------------------------------------------------------------------------------


def test_content_of_stream_lines() -> None:
    router = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"lorem "},"finish_reason":null}]}\n'
    assert streams.content_of(router) == "lorem "
    spaced = b'data:{"choices": [{"delta": {"content": "ipsum"}}], "object": "chat.completion.chunk"}'
    assert streams.content_of(spaced) == "ipsum"
    role = b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null}}]}\n'
    finish = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n'
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":4}}\n'
    for line in (role, finish, usage, b"data: [DONE]\n", b"\n", b": keep-alive\n", b"data: {not json\n"):
        assert streams.content_of(line) is None, line
    assert streams.is_done(b"data: [DONE]\n") and not streams.is_done(router)


def test_the_stream_body_asks_the_simulated_provider_for_twenty_pieces() -> None:
    from router.mock.textgen import Prompt, plan_reply

    text = streams.BODY["messages"][0]["content"]
    reply = plan_reply(Prompt(user_text=text, prompt_chars=len(text)), "00")
    assert len(reply.pieces) == streams.CHUNKS == 20


def test_percentile_nearest_rank() -> None:
    samples = [float(i) for i in range(1, 201)]
    assert streams.percentile(samples, 0.95) == 190.0
    assert streams.percentile(samples, 0.5) == 100.0
    assert streams.percentile([3.0], 0.95) == 3.0


# --- report ------------------------------------------------------------------------------------------


def _wrk_run(rps: float, p50: float, cpu: float | None = None) -> dict[str, Any]:
    run: dict[str, Any] = {"rps": rps, "p50": p50, "p90": p50, "p99": p50 * 2, "requests": rps * 10}
    run |= {"errors": 0, "provider_cpu_us": 150.0}
    if cpu is not None:
        run["router_cpu_us"] = cpu
    return run


RESULTS: dict[str, Any] = {
    "seconds": 10,
    "runs": {
        str(c): {"direct": _wrk_run(5000, 0.3), "router": _wrk_run(rps, p50, cpu), "added_p50": p50 - 0.3}
        for c, rps, p50, cpu in ((1, 2100, 0.65, 240.0), (16, 4000, 3.0, 190.0), (64, 4800, 12.0, 180.0))
    },
    "stream_first_chunk_ms": {"direct": {"p50": 0.8, "p95": 1.0}, "router": {"p50": 1.2, "p95": 1.6}},
    "stream_load": {
        "clients": 16,
        "seconds": 10,
        "chunks": 20,
        "direct": {"streams": 9000, "failed": 0, "streams_per_s": 900.0, "provider_cpu_us": 400.0},
        "router": {"streams": 4000, "failed": 0, "streams_per_s": 400.0, "router_cpu_us": 520.0}
        | {"provider_cpu_us": 420.0},
    },
    "memory_mib": {
        "1": {"warm_requests": 1, "main": 56.0, "workers": [80.0], "workers_peak": [82.0]}
        | {"idle_cpu_ms_per_s": 0.0},
        "2": {"warm_requests": 16, "main": 57.0, "workers": [79.0, 101.5], "workers_peak": [80.0, 102.0]}
        | {"idle_cpu_ms_per_s": 5.0},
    },
    "two_workers": {"64": _wrk_run(6000, 9.0, 210.0)},
    "floor": {"1": _wrk_run(1900, 0.55, 300.0), "64": _wrk_run(11000, 5.5, 70.0)},
    "warnings": ["router @64: wrk counted 3 errors"],
    "outside_cpus": {"mean": 0.31, "max": 0.72},
    "cpus": 2,
}
RESULTS["stream_first_chunk_ms"]["added_p50"] = 0.4


def test_targets_compare_each_figure_with_its_limit() -> None:
    found = {t.label: t for t in report.targets(RESULTS)}
    assert found["added p50 @1 conn"].value == pytest.approx(0.35) and found["added p50 @1 conn"].passed
    assert found["router req/s @1 conn"].passed
    assert not found["router req/s @64 conns"].passed
    assert found["router CPU per request @64"].value == 180.0 and found["router CPU per request @64"].passed
    assert found["stream added first-event p50"].passed
    assert not found["router CPU per 20-chunk stream"].passed
    rss = found["RSS per worker when ready"]
    assert rss.value == 101.5 and not rss.passed  # the largest worker of either layout


def test_a_missing_figure_is_a_miss() -> None:
    assert not report.Target("x", "<=", 1.0, None, "us").passed
    assert report.Target("x", "<=", 1.0, None, "us").line() == "target x <= 1 us: n/a us MISS"
    assert (
        report.Target("y", ">=", 5000, 5123.4, "req/s").line() == "target y >= 5,000 req/s: 5,123 req/s PASS"
    )


def test_report_lines_show_every_figure_and_target() -> None:
    results = copy.deepcopy(RESULTS)
    results["runs"]["1"]["router"]["router_cpu_us"] = None  # no request completed
    text = "\n".join(report.lines(results))
    assert "router CPU us/req" in text and "provider us/req" in text
    assert "  n/a |" in text  # the figure that could not be computed
    assert "router CPU 520 us/stream (4000 streams)" in text
    assert "each worker 79.0, 101.5 MiB" in text
    assert "two router workers @64 conns: 6000 req/s" in text
    assert "floor @1 (the same server and the router's upstream client, nothing else): 1900 req/s" in text
    assert "p50 0.550 ms (added 0.250), CPU 300 us/req" in text
    assert "warning: router @64: wrk counted 3 errors" in text
    assert "0.31 on average, 0.72 at most, of 2" in text and "competed for the CPUs" in text
    assert text.count("target ") == 7 and "MISS" in text and "PASS" in text
