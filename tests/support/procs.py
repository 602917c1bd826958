"""What the kernel says about a process tree: its members, their CPU time and memory.

``callbridge serve`` is a supervisor with media, web (and cache) children, so
the tests and benches that measure a server measure its tree; ``children=False``
measures one process alone (all its threads).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name (which may hold spaces), or None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants, parents before children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in children.get(parent, [])]
        tree += frontier
    return tree


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie waiting to be reaped."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def stop_tree(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM ``process``, then whatever it started that outlives it; SIGKILL after ``timeout``.

    A wrapper (``faketime``, ``taskset`` that forks, ``ip netns exec``) may run
    serve as its child: stopping the wrapper alone orphaned serve, which then
    ticked on for the rest of the suite.
    """
    tree = process_tree(process.pid)
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    left = [pid for pid in tree[1:] if is_running(pid)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in left if is_running(pid)]) and (time.monotonic() < deadline):
        time.sleep(0.05)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def cpu_seconds(pid: int, *, children: bool = True) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` and, unless ``children=False``, its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for member in process_tree(pid) if children else [pid]:
        if (fields := _stat_fields(member)) is not None:
            user += int(fields[11]) / tick
            system += int(fields[12]) / tick
    return user, system


def _status_kib(pid: int, field: str) -> int:
    """Sum of one ``/proc/PID/status`` memory line (``VmRSS``, ``VmHWM``) over the tree, KiB."""
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        if match := re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE):
            total += int(match.group(1))
    return total


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its live descendants (KiB)."""
    return _status_kib(pid, "VmRSS")


def peak_rss_kib(pid: int) -> int:
    """High-water resident memory (VmHWM) of a process and its live descendants (KiB)."""
    return _status_kib(pid, "VmHWM")
