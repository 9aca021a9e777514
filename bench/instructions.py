"""Instructions, not seconds: fedscan and the floor + DNS counted by valgrind's callgrind.

``python -m bench.instructions [--domains 50]`` (``make bench-instructions``): on a lab of its
own, each tool scans one domain (4 endpoints: start-up, imports, one of everything) and then
``--domains`` domains, under ``valgrind --tool=callgrind``; the difference, divided by the
extra endpoints, is the tool's instructions per endpoint. The same commands then run at full
speed (the minimum CPU of ``--repeat`` runs) to give instructions per CPU second.

Why: CPU seconds on a shared two-core machine move by 10 % between runs, and say nothing of
*what* is slow. Instruction counts are exact and repeatable (the trio task steps and TLS calls
of a run are the same under valgrind as at full speed: docs/performance.md), so a change can
be judged from one pair of runs, and the two figures side by side separate the work a tool
does from the speed at which the machine runs it: OpenSSL's handshake arithmetic retires
several instructions per cycle, the Python interpreter's dispatch about one, so the same
count of Python instructions costs more time than the floor's mostly-OpenSSL ones.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.__main__ import AT, Lab, compile_bytecode
from bench.lab import DEFAULT_CERT_DIR, raise_fd_limit

NET = "127.77.0"  # a lab of its own: never the live bench's 127.78.0
VALGRIND_TIMEOUT = "600"  # seconds per endpoint under valgrind: it runs ~50 x slower
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


@dataclass(frozen=True)
class Count:
    """One tool's figures: instructions for one domain and for ``domains``, and CPU seconds."""

    name: str
    one: int  # instructions, 1 domain
    many: int  # instructions, ``domains`` domains
    cpu_many: float  # CPU seconds at full speed, ``domains`` domains (minimum of the runs)
    endpoints_one: int
    endpoints_many: int

    @property
    def per_endpoint(self) -> float:
        return (self.many - self.one) / max(self.endpoints_many - self.endpoints_one, 1)

    def at(self, endpoints: int) -> float:
        """Instructions a run of ``endpoints`` endpoints would count (start-up + per endpoint)."""
        return self.one + self.per_endpoint * (endpoints - self.endpoints_one)

    @property
    def per_cpu_second(self) -> float:
        return self.many / self.cpu_many if self.cpu_many else 0.0


def instructions(argv: Sequence[str]) -> int:
    """The instructions callgrind counted for ``argv`` (a Python command), all of the process."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        capture_output=True, text=True, check=False)
    found = _REFS.search(proc.stderr)
    if proc.returncode not in (0, 1, 2) or found is None:  # fedscan exits 1/2 for findings
        raise SystemExit(f"bench: valgrind run failed ({proc.returncode}): {proc.stderr[-400:]}")
    return int(found.group(1).replace(",", ""))


def cpu_seconds(argv: Sequence[str], repeat: int) -> float:
    """The least user + system CPU of ``repeat`` full-speed runs of ``argv``."""
    best = float("inf")
    for _ in range(repeat):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        best = min(best, usage.ru_utime + usage.ru_stime)
    return best


def _commands(state: dict[str, Any], workdir: Path, domains: list[str], tag: str,
              timeout: str) -> dict[str, list[str]]:
    wanted = set(domains)
    domains_file = workdir / f"domains-{tag}.txt"
    domains_file.write_text("\n".join(domains) + "\n")
    targets_file = workdir / f"targets-{tag}.json"
    targets_file.write_text(json.dumps([t for t in state["endpoints"] if t["domain"] in wanted]))
    return {
        "fedscan --format jsonl": [
            sys.executable, "-m", "scanner", "scan", "--domains-file", str(domains_file),
            "--nameserver", state["nameserver"], "--ca-file", state["ca_file"], "--at", AT,
            "--format", "jsonl", "--timeout", timeout],
        "floor + DNS": [
            sys.executable, "-m", "bench.floor_dns", str(domains_file), str(targets_file),
            str(workdir / f"floor-{tag}.json"), "--nameserver", state["nameserver"],
            "--timeout", timeout],
    }


def measure(state: dict[str, Any], workdir: Path, domains: int, repeat: int) -> list[Count]:
    names = state["domains"]
    one, many = names[:1], names[:domains]
    per_domain = len(state["endpoints"]) // len(names)
    slow_one = _commands(state, workdir, one, "1", VALGRIND_TIMEOUT)
    slow_many = _commands(state, workdir, many, str(domains), VALGRIND_TIMEOUT)
    fast_many = _commands(state, workdir, many, f"{domains}-fast", "10")
    counts = []
    for name in slow_one:
        print(f"  {name}: 1 domain, {domains} domains under callgrind ...", flush=True)
        counts.append(Count(name, instructions(slow_one[name]), instructions(slow_many[name]),
                            cpu_seconds(fast_many[name], repeat), per_domain,
                            per_domain * domains))
    return counts


def render(counts: list[Count], n: int) -> str:
    rows = ["| tool | 1 domain (G instr.) | per endpoint (M instr.) | "
            f"N={n} (G instr., est.) | CPU s, {counts[0].endpoints_many} endpoints | G instr. per CPU s |",
            "|---|---:|---:|---:|---:|---:|"]
    for c in counts:
        rows.append(f"| {c.name} | {c.one / 1e9:.2f} | {c.per_endpoint / 1e6:.2f} | "
                    f"{c.at(n) / 1e9:.2f} | {c.cpu_many:.2f} | {c.per_cpu_second / 1e9:.2f} |")
    fed, floor = counts
    rows.append("")
    rows.append(f"fedscan/(floor + DNS), instructions at N={n}: {fed.at(n) / floor.at(n):.2f} x "
                f"(per endpoint {fed.per_endpoint / floor.per_endpoint:.2f} x, start-up "
                f"{fed.one / floor.one:.2f} x); CPU at {fed.endpoints_many} endpoints: "
                f"{fed.cpu_many / floor.cpu_many:.2f} x")
    extra = fed.many - floor.many
    extra_cpu = fed.cpu_many - floor.cpu_many
    if extra > 0 and extra_cpu > 0:
        rows.append(f"fedscan's instructions beyond the floor's ran at {extra / extra_cpu / 1e9:.2f} G "
                    f"per CPU s; the floor's own at {floor.per_cpu_second / 1e9:.2f}")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    p.add_argument("--domains", type=int, default=50, help="domains of the counted run (4 endpoints each)")
    p.add_argument("--repeat", type=int, default=5, help="full-speed runs per tool (the least CPU is kept)")
    p.add_argument("--cert-dir", type=Path, default=DEFAULT_CERT_DIR)
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("bench: valgrind is not installed (Debian: apt-get install valgrind)")
    if not 2 <= args.domains <= 2500:
        raise SystemExit("bench: --domains must be 2..2500")
    raise_fd_limit()
    compile_bytecode()
    workdir = Path(tempfile.mkdtemp(prefix="fedscan-instr-"))
    lab = Lab(4 * args.domains, NET, 0.0, args.cert_dir, workdir)
    try:
        state = lab.wait_ready()
        print(f"lab: {len(state['endpoints'])} endpoints, {len(state['domains'])} domains "
              f"from {NET}.0/24", flush=True)
        started = time.perf_counter()
        counts = measure(state, workdir, args.domains, args.repeat)
    finally:
        lab.stop()
    print(render(counts, 1000))
    print(f"({time.perf_counter() - started:.0f} s; outputs in {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
