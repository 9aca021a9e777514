"""One child process, measured: wall time, CPU (user + sys) and peak RSS, via ``os.wait4``.

Each tool runs under :mod:`bench.child`, which spawns it, ``wait4``s for exactly that process
(so tools never share a ``RUSAGE_CHILDREN`` total) and reports its figures; see there why the
tool is not spawned from this (larger) process directly. The lab's own CPU over the same interval is
read from ``/proc/<pid>/stat``, to show how much of the two cores the servers took.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    name: str
    wall: float
    cpu: float  # user + sys of the child
    max_rss_mb: float
    lab_cpu: float  # the lab process's user + sys during the run
    returncode: int

    def __add__(self, other: Run) -> Run:
        """Two tools run side by side: wall is the longer, CPU adds up, RSS is the larger."""
        return Run(self.name, max(self.wall, other.wall), self.cpu + other.cpu,
                   max(self.max_rss_mb, other.max_rss_mb), max(self.lab_cpu, other.lab_cpu),
                   max(self.returncode, other.returncode))


def proc_cpu(pid: int | None) -> float:
    """user + sys seconds of a running process (0 if unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    rusage_file: Path
    stderr_file: IO[bytes]
    stderr: bytes = b""


def start(argv: Sequence[str], stdout: IO[bytes] | int | None = subprocess.DEVNULL) -> _Child:
    fd, name = tempfile.mkstemp(prefix="fedscan-bench-rusage-", suffix=".json")
    os.close(fd)
    # a file, not a pipe: a chatty tool must never block; closed in wait()
    err = tempfile.TemporaryFile()  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "bench.child", name, *argv], stdout=stdout,
                            stderr=err)
    return _Child(proc, Path(name), err)


def wait(name: str, child: _Child, lab_pid: int | None, lab_cpu0: float) -> Run:
    child.proc.wait()
    child.stderr_file.seek(0)
    child.stderr = child.stderr_file.read()
    child.stderr_file.close()
    data = json.loads(child.rusage_file.read_text() or "{}")
    child.rusage_file.unlink(missing_ok=True)
    if not data:
        raise RuntimeError(f"{name}: the measuring wrapper failed ({child.proc.returncode})")
    return Run(name, data["wall"], data["cpu"], data["max_rss_kb"] / 1024,
               proc_cpu(lab_pid) - lab_cpu0, data["returncode"])


def measure(name: str, argv: Sequence[str], *, lab_pid: int | None = None,
            stdout: IO[bytes] | int | None = subprocess.DEVNULL) -> tuple[Run, bytes]:
    """Run ``argv`` to completion; returns the measurement and its stderr."""
    lab0 = proc_cpu(lab_pid)
    child = start(argv, stdout)
    run = wait(name, child, lab_pid, lab0)
    return run, child.stderr


def measure_side_by_side(name: str, commands: Sequence[Sequence[str]], *,
                         lab_pid: int | None = None) -> tuple[Run, list[bytes]]:
    """Start every command at once; wall until the last ends, CPU summed, RSS the largest."""
    lab0 = proc_cpu(lab_pid)
    children = [start(argv) for argv in commands]
    runs = [wait(name, c, lab_pid, lab0) for c in children]
    total = runs[0]
    for r in runs[1:]:
        total = total + r
    return total, [c.stderr for c in children]
