"""CPU time and resident memory of a process group, read from ``/proc`` (Linux only).

The router runs as a Granian main process and its workers, all in one process group (the benchmark
starts each service in a session of its own), so "the router's CPU" is the sum of ``utime + stime``
over the group's members; a run's share is the difference of two snapshots.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import NamedTuple

PROC = Path("/proc")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Stat(NamedTuple):
    """The fields of ``/proc/<pid>/stat`` the benchmark uses; CPU times in clock ticks."""

    pid: int
    ppid: int
    pgrp: int
    utime: int
    stime: int


class CpuSnapshot(NamedTuple):
    """CPU ticks (user + system) of each process of a group at one moment."""

    ticks: dict[int, int]


class CpuDelta(NamedTuple):
    """CPU seconds a group used between two snapshots, and the processes that came or went meanwhile
    (a process that ended took its CPU time with it: the figure is then a lower bound)."""

    seconds: float
    started: frozenset[int]
    ended: frozenset[int]


def parse_stat(text: str) -> Stat:
    """Parse one ``/proc/<pid>/stat`` line. The command name (field 2) is in parentheses and may hold
    spaces and parentheses itself, so the other fields are counted from the last ``)``."""
    head, _, tail = text.rpartition(")")
    pid = int(head.split("(", 1)[0])
    rest = tail.split()  # rest[0] is field 3 (state); field n is rest[n - 3]
    return Stat(pid=pid, ppid=int(rest[1]), pgrp=int(rest[2]), utime=int(rest[11]), stime=int(rest[12]))


def parse_status_kib(text: str, key: str) -> int | None:
    """The value in KiB of a ``Key:  1234 kB`` line of ``/proc/<pid>/status`` (``None`` when absent)."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    return None


def group_stats(pgrp: int, proc: Path = PROC) -> list[Stat]:
    """Every live process of process group ``pgrp``."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = parse_stat((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # ended while we looked
        if stat.pgrp == pgrp:
            found.append(stat)
    return sorted(found)


def cpu_snapshot(pgrp: int, proc: Path = PROC) -> CpuSnapshot:
    return CpuSnapshot({s.pid: s.utime + s.stime for s in group_stats(pgrp, proc)})


def cpu_delta(before: CpuSnapshot, after: CpuSnapshot, clk_tck: int = CLK_TCK) -> CpuDelta:
    """CPU seconds used between ``before`` and ``after``: a process that started meanwhile counts whole."""
    ticks = sum(value - before.ticks.get(pid, 0) for pid, value in after.ticks.items())
    return CpuDelta(
        seconds=ticks / clk_tck,
        started=frozenset(after.ticks.keys() - before.ticks.keys()),
        ended=frozenset(before.ticks.keys() - after.ticks.keys()),
    )


def per_unit_us(cpu_seconds: float, count: int) -> float | None:
    """Microseconds of CPU per request (or stream); ``None`` when nothing completed."""
    return cpu_seconds * 1e6 / count if count > 0 else None


def parse_machine_busy(text: str) -> int:
    """Ticks the machine's CPUs spent busy, from ``/proc/stat``'s first line: user, nice, system, irq,
    softirq and steal (time a hypervisor gave to others counts too: it is contention all the same)."""
    fields = text.split("\n", 1)[0].split()
    if fields[0] != "cpu":
        raise ValueError(f"not the total line of /proc/stat: {fields[:1]}")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
    return user + nice + system + irq + softirq + steal


def machine_busy_seconds(proc: Path = PROC, clk_tck: int = CLK_TCK) -> float:
    return parse_machine_busy((proc / "stat").read_text()) / clk_tck


def own_cpu_seconds() -> float:
    """CPU of this process and of its children already reaped (the wrk runs)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def outside_cpus(busy: float, ours: float, wall: float) -> float:
    """Average CPUs used by processes outside the benchmark over ``wall`` seconds in which the machine
    was ``busy`` CPU-seconds and the benchmark (its servers, clients and wrk) used ``ours``."""
    return max(0.0, busy - ours) / wall if wall > 0 else 0.0


def parse_tcp_table(text: str) -> list[tuple[int, str, str]]:
    """``/proc/net/tcp`` or ``tcp6`` -> (local port, state in hex, socket inode) for each socket."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9:
            found.append((int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]))
    return found


ESTABLISHED = "01"


def connections_by_pid(pids: list[int], local_port: int, proc: Path = PROC) -> dict[int, int]:
    """How many established TCP connections on ``local_port`` each process of ``pids`` holds: which
    of a router's workers accepted the connections a client keeps open."""
    owner: dict[str, int] = {}
    for pid in pids:
        try:
            fds = list((proc / str(pid) / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                owner[target[8:-1]] = pid
    counts = dict.fromkeys(pids, 0)
    for table in ("tcp", "tcp6"):
        try:
            rows = parse_tcp_table((proc / "net" / table).read_text())
        except OSError:
            continue
        for port, state, inode in rows:
            if port == local_port and state == ESTABLISHED and inode in owner:
                counts[owner[inode]] += 1
    return counts


def rss_mib(pid: int, key: str = "VmRSS", proc: Path = PROC) -> float | None:
    """Resident memory (or another ``/proc/<pid>/status`` size such as ``VmHWM``) in MiB."""
    try:
        kib = parse_status_kib((proc / str(pid) / "status").read_text(), key)
    except OSError:
        return None
    return None if kib is None else kib / 1024
