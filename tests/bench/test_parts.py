"""The benchmark's pure parts: /proc parsing and CPU arithmetic."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bench import proc


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


def test_rss_of_this_process_and_of_none(tmp_path: Path) -> None:
    mib = proc.rss_mib(os.getpid())
    assert mib is not None and mib > 1
    assert proc.rss_mib(123, proc=tmp_path) is None
