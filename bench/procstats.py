"""Process facts from /proc: the tree under a pid, its CPU time and RSS; CPU pinning."""

import os
from contextlib import contextmanager
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids += [int(k) for k in task.read_text().split()]
        except OSError:
            pass
    return kids


def tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        if Path(f"/proc/{current}").exists():
            pids.append(current)
            todo += _children(current)
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class CpuMeter:
    """CPU used by a set of processes between start() and stop(), as a share of one core."""

    def __init__(self, pids_of):
        self.pids_of = pids_of  # a callable: the tree may grow (server workers)

    def start(self, wall: float) -> None:
        self.wall0, self.cpu0 = wall, cpu_seconds(self.pids_of())

    def stop(self, wall: float) -> float:
        """The share of one core used since start(); the CPU seconds are kept in ``used``."""
        self.used = cpu_seconds(self.pids_of()) - self.cpu0
        return self.used / max(wall - self.wall0, 1e-9)


@contextmanager
def cpus(allowed: set[int] | None):
    """Run the block (and the processes it starts, which inherit the mask) on ``allowed``."""
    if not allowed:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, allowed)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
