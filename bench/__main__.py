"""``make bench`` / ``python -m bench``: the floor, fedscan and sslyze on one loopback lab.

See docs/performance.md for what each figure means and the targets they are held to.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import report, sslyze_runner
from bench.lab import DEFAULT_CERT_DIR, raise_fd_limit
from bench.measure import Run, measure, measure_side_by_side

AT = "2030-01-01T00:00:00Z"  # the corpus' reference time
LIVE_NET = "127.78.0"
DEAD_NET = "127.79.0"  # spills into 127.79.1-.40 at N=10,000 (one address per node)
HOSTED_NET = "127.79.200"
TIMEOUT_CODES = frozenset({"connect-timeout", "handshake-timeout"})


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--endpoints", "-n", type=int, default=int(os.environ.get("N", "1000")),
                   help="lab endpoints (4 per domain; up to 10000)")
    p.add_argument("--concurrency", type=int, default=64, help="handshakes at once, every tool")
    p.add_argument("--timeout", type=float, default=10.0, help="fedscan/floor seconds per endpoint")
    p.add_argument("--dead-fraction", type=float, default=0.2,
                   help="dead-peer run: fraction of endpoints that accept and never answer (0: skip)")
    p.add_argument("--dead-timeout", type=float, default=2.0, help="--timeout of the dead-peer run")
    p.add_argument("--rtt", type=float, default=float(os.environ.get("RTT", "0")),
                   help="milliseconds per round trip the lab adds (every answer, DNS included)")
    p.add_argument("--dns-concurrency", type=int, default=128,
                   help="the floor + DNS's questions at once (fedscan's default)")
    p.add_argument("--hosted", type=int, default=200,
                   help="politeness run: domains on one lab address (0: skip)")
    p.add_argument("--no-sslyze", action="store_true", help="skip sslyze")
    p.add_argument("--sslyze-python", type=Path, default=Path(".venv-sslyze/bin/python"),
                   help="the interpreter of sslyze's own venv (made by `make bench`)")
    p.add_argument("--formats", default="jsonl,json", help="fedscan --format runs (the first is compared)")
    p.add_argument("--repeat", type=int, default=3,
                   help="runs of the floor and of each fedscan format (the median is reported)")
    p.add_argument("--stage-runs", type=int, default=3,
                   help="runs of the per-stage CPU breakdown (the minimum is shown; 0: skip)")
    p.add_argument("--cert-dir", type=Path, default=DEFAULT_CERT_DIR)
    p.add_argument("--workdir", type=Path, default=None, help="keep outputs here (default: a temp dir)")
    p.add_argument("--results", type=Path, default=None, help="also write the figures as JSON")
    return p.parse_args(argv)


class Lab:
    """The scale lab as a child process (its CPU is its own, read from /proc)."""

    def __init__(self, endpoints: int, net: str, dead: float, cert_dir: Path, workdir: Path,
                 *, rtt: float = 0.0, hosted: int = 0) -> None:
        self.state_file = workdir / f"lab-{net}.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.lab", "--endpoints", str(endpoints), "--net", net,
             "--dead", str(dead), "--cert-dir", str(cert_dir), "--state", str(self.state_file),
             "--rtt", str(rtt), "--hosted", str(hosted)],
        )
        self.state: dict[str, Any] = {}
        self.startup = 0.0

    def wait_ready(self, timeout: float = 600.0) -> dict[str, Any]:
        t0 = time.perf_counter()
        while not self.state_file.exists():
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: the lab exited ({self.proc.returncode}) before it was ready")
            if time.perf_counter() - t0 > timeout:
                raise SystemExit("bench: the lab did not start in time")
            time.sleep(0.1)
        self.startup = time.perf_counter() - t0
        self.state = json.loads(self.state_file.read_text())
        return self.state

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fedscan_argv(domains_file: Path, state: dict[str, Any], fmt: str, concurrency: int,
                 timeout: float) -> list[str]:
    """fedscan with its default options but the lab's DNS and CA, the bench's ``--concurrency``
    (default 64, fedscan's own default) and ``--timeout``."""
    return [sys.executable, "-m", "scanner", "scan", "--domains-file", str(domains_file),
            "--nameserver", state["nameserver"], "--ca-file", state["ca_file"], "--at", AT,
            "--format", fmt, "--concurrency", str(concurrency), "--timeout", str(timeout)]


def jsonl_endpoints(output: Path) -> dict[str, dict[str, Any]]:
    """``address:port`` -> the endpoint line of a fedscan ``jsonl`` output (empty if unreadable)."""
    out: dict[str, dict[str, Any]] = {}
    try:
        for line in output.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get("type") == "endpoint":
                out[f"{row['address']}:{row['port']}"] = row
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return out


def timed_out(rows: dict[str, dict[str, Any]], healthy: set[str]) -> int:
    """How many healthy endpoints (``address:port``) a run reports as timed out."""
    return sum(1 for k, row in rows.items() if k in healthy
               and TIMEOUT_CODES & {f.get("code") for f in row.get("findings", [])})


def without_timings(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "timings"}


def fedscan_fingerprints(output: Path, *, fmt: str) -> dict[str, str | None]:
    """``address:port`` -> leaf SHA-256 from a fedscan output; empty if it is unreadable (a
    failed run: the fingerprint line then says MISMATCH and the error is shown)."""
    out: dict[str, str | None] = {}
    try:
        if fmt == "jsonl":
            rows = [json.loads(line) for line in output.read_text().splitlines() if line.strip()]
            endpoints = [r for r in rows if r.get("type") == "endpoint"]
        else:
            doc = json.loads(output.read_text())
            endpoints = [e for d in doc["domains"] for e in d["endpoints"]]
    except (OSError, ValueError, KeyError, TypeError):
        return out
    for e in endpoints:
        out[f"{e['address']}:{e['port']}"] = (e.get("certificate") or {}).get("sha256")
    return out


def import_seconds(argv: Sequence[str]) -> float:
    """Sum of the 'self' column of ``python -X importtime``: all the time spent importing."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True,
                          text=True, check=False)
    total_us = 0
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            field = line.split(":", 1)[1].split("|")[0].strip()
            if field.isdigit():
                total_us += int(field)
    return total_us / 1e6


@dataclass(frozen=True)
class _Job:
    """One tool the bench repeats: how to run it into an output file, how to read its prints."""

    name: str  # as shown in the table
    key: str  # in the fingerprint comparison
    output: str  # file name; each repeat gets its own
    argv: Callable[[Path], list[str]]
    read: Callable[[Path], dict[str, str | None]]
    to_stdout: bool = False  # the output is the tool's stdout (else the tool writes it)

    def measure(self, out: Path, lab_pid: int) -> tuple[Run, bytes, Path]:
        if self.to_stdout:
            with out.open("wb") as fh:
                run, err = measure(self.name, self.argv(out), lab_pid=lab_pid, stdout=fh)
        else:
            run, err = measure(self.name, self.argv(out), lab_pid=lab_pid)
        return run, err, out


def _fedscan_job_argv(domains_file: Path, state: dict[str, Any], fmt: str, args: argparse.Namespace,
                      _out: Path) -> list[str]:
    return fedscan_argv(domains_file, state, fmt, args.concurrency, args.timeout)


def _floor_prints(path: Path) -> dict[str, str | None]:
    try:
        prints: dict[str, str | None] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # the floor failed every repeat: the fingerprint line says MISMATCH
    return prints


def median_run(runs: list[tuple[Run, bytes, Path]]) -> tuple[Run, bytes, Path]:
    """The run with the median wall time among those that exited 0 (all, if none did); with an
    even count, the slower of the two middle ones (the conservative choice). Leaving failed
    runs out can only flatter the median; failures are reported beside it."""
    ok = [r for r in runs if r[0].returncode == 0] or runs
    return sorted(ok, key=lambda r: r[0].wall)[len(ok) // 2]


def stage_figures(state: dict[str, Any], workdir: Path, concurrency: int, timeout: float,
                  runs: int) -> dict[str, float]:
    """:mod:`bench.stages` ``runs`` times, each in a fresh process; the minimum of each figure
    (the stages are short, and a noisy neighbour only ever adds time)."""
    best: dict[str, float] = {}
    state_file = workdir / "stages-state.json"
    state_file.write_text(json.dumps(state))
    for i in range(runs):
        out = workdir / f"stages-{i}.json"
        proc = subprocess.run([sys.executable, "-m", "bench.stages", str(state_file), str(out),
                               "--concurrency", str(concurrency), "--timeout", str(timeout)],
                              capture_output=True, check=False)
        if proc.returncode != 0:
            print(f"bench: stage breakdown failed: {proc.stderr.decode(errors='replace')[-300:]}")
            return best
        for key, value in json.loads(out.read_text()).items():
            best[key] = min(best.get(key, value), value)
        best["runs"] = i + 1
    return best


def compile_bytecode() -> None:
    """Measure fedscan as installed: pip and pipx compile every module's bytecode at install
    time, the checkout's editable install does not, and where ``PYTHONDONTWRITEBYTECODE`` is
    set (CI images, this project's dev machines) every run would compile ~80 modules again:
    0.044 s of CPU per run (measured: imports of a scan 0.289 -> 0.245 s) that no user pays.
    The floor's and sslyze's code is compiled too (sslyze by pip into its venv)."""
    root = Path(__file__).resolve().parent.parent
    for package in ("scanner", "bench"):
        compileall.compile_dir(root / package, quiet=1)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not 1 <= args.endpoints <= 10_000:
        raise SystemExit("bench: --endpoints must be 1..10000")
    raise_fd_limit()
    compile_bytecode()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fedscan-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    formats = [f for f in args.formats.split(",") if f]
    figures = report.Figures(args.endpoints, args.concurrency, report.machine(), rtt=args.rtt,
                             timeout=args.timeout, load=report.load())
    print(report.header(figures), flush=True)

    lab = Lab(args.endpoints, LIVE_NET, 0.0, args.cert_dir, workdir, rtt=args.rtt)
    try:
        state = lab.wait_ready()
        live_jobs(args, figures, state, lab, formats, workdir)
    finally:
        lab.stop()
    if args.dead_fraction > 0 and not args.rtt:
        dead_run(args, figures, formats[0], workdir)
    if args.hosted > 0 and not args.rtt:
        politeness_run(args, figures, workdir)
    figures.load_after = report.load()
    print(report.render(figures), flush=True)
    if args.results is not None:
        args.results.write_text(json.dumps(figures.to_json(), indent=2))
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def live_jobs(args: argparse.Namespace, figures: report.Figures, state: dict[str, Any], lab: Lab,
              formats: list[str], workdir: Path) -> None:
    """The floors, fedscan (median of ``--repeat`` interleaved rounds) and sslyze on the live lab."""
    figures.lab_startup = lab.startup
    n = len(state["endpoints"])
    domains_file = workdir / "domains.txt"
    domains_file.write_text("\n".join(state["domains"]) + "\n")
    targets_file = workdir / "targets.json"
    targets_file.write_text(json.dumps(state["endpoints"]))
    print(f"lab: {n} endpoints, {len(state['domains'])} domains from {LIVE_NET}.0/24, "
          f"ready in {lab.startup:.1f} s (pid {lab.proc.pid})", flush=True)

    # untimed warm-up: bytecode caches, page cache, the lab's first accepts
    subprocess.run([sys.executable, "-m", "scanner", "--help"], capture_output=True, check=False)

    # Each tool `--repeat` times, in interleaved rounds (floor, floor + DNS, jsonl, json, floor,
    # ...), so a noisy neighbour hits all of them; the run with the median wall time is reported.
    def floor_argv(out: Path) -> list[str]:
        return [sys.executable, "-m", "bench.floor", str(targets_file), str(out),
                "--concurrency", str(args.concurrency), "--timeout", str(args.timeout)]

    def floor_dns_argv(out: Path) -> list[str]:
        return [sys.executable, "-m", "bench.floor_dns", str(domains_file), str(targets_file),
                str(out), "--nameserver", state["nameserver"], "--concurrency",
                str(args.concurrency), "--dns-concurrency", str(args.dns_concurrency),
                "--timeout", str(args.timeout)]

    jobs = [_Job("floor", "floor", "floor.json", floor_argv, _floor_prints),
            _Job("floor + DNS", "floor + DNS", "floor-dns.json", floor_dns_argv, _floor_prints)]
    for fmt in formats:
        jobs.append(_Job(f"fedscan --format {fmt}", f"fedscan {fmt}", f"fedscan.{fmt}",
                         functools.partial(_fedscan_job_argv, domains_file, state, fmt, args),
                         functools.partial(fedscan_fingerprints, fmt=fmt), to_stdout=True))
    samples: dict[str, list[tuple[Run, bytes, Path]]] = {job.name: [] for job in jobs}
    for i in range(max(args.repeat, 1)):
        for job in jobs:
            samples[job.name].append(job.measure(workdir / f"{i}-{job.output}", lab.proc.pid))
    prints: dict[str, dict[str, str | None]] = {}
    for job in jobs:
        runs = samples[job.name]
        run, err, out = median_run(runs)
        figures.add(run, n, err)
        figures.samples[job.name] = [r.wall for r, _, _ in runs]
        figures.cpu_samples[job.name] = [r.cpu for r, _, _ in runs]
        failed = [(r, e) for r, e, _ in runs if r.returncode != 0 or b"Traceback" in e]
        if failed:  # shown even when the median run is fine (it is left out of the median)
            r, e = failed[0]
            figures.errors[job.name] = (f"{len(failed)} of {len(runs)} repeats failed, e.g. exit "
                                        f"{r.returncode}: {e.decode(errors='replace').strip()[-1500:]}")
        prints[job.key] = job.read(out)
        if job.key == f"fedscan {formats[0]}" and formats[0] == "jsonl":
            rows = jsonl_endpoints(out)
            figures.live_timed_out = timed_out(rows, {f"{e['address']}:{e['port']}"
                                                      for e in state["endpoints"]})
            if n >= 10_000:
                figures.subset = subset_check(args, state, rows, workdir, lab.proc.pid)

    why_not = None if not args.no_sslyze else "skipped (--no-sslyze)"
    why_not = why_not or sslyze_runner.available(args.sslyze_python)
    if why_not is None:
        cmds = sslyze_runner.commands(state["endpoints"], state["ca_file"], workdir,
                                      args.sslyze_python)
        run, errs = measure_side_by_side("sslyze", cmds, lab_pid=lab.proc.pid)
        figures.add(run, n, b"".join(e for e in errs if b"Traceback" in e))
        prints["sslyze"] = sslyze_runner.fingerprints(workdir)
    else:
        figures.sslyze_missing = why_not
    figures.fingerprints = report.compare_fingerprints(prints, n)
    if args.rtt:
        return  # CPU figures under an artificial delay say nothing new
    figures.imports = {
        "fedscan --help": import_seconds(["-m", "scanner", "--help"]),
        "fedscan scan (1 domain)": import_seconds(
            ["-m", "scanner", "scan", state["domains"][0], "--nameserver", state["nameserver"],
             "--ca-file", state["ca_file"], "--at", AT, "--format", "json"]),
    }
    figures.stages = stage_figures(state, workdir, args.concurrency, args.timeout, args.stage_runs)


def subset_check(args: argparse.Namespace, state: dict[str, Any], rows: dict[str, dict[str, Any]],
                 workdir: Path, lab_pid: int) -> str:
    """Scan the first 1,000 endpoints' domains alone, on the same lab, and compare each result
    with the full run's: a crowd of other endpoints must change nothing but timings."""
    domains = state["domains"][:250]
    dfile = workdir / "domains-1000.txt"
    dfile.write_text("\n".join(domains) + "\n")
    out = workdir / "fedscan-1000.jsonl"
    with out.open("wb") as fh:
        measure("fedscan, first 1000", fedscan_argv(dfile, state, "jsonl", args.concurrency,
                                                    args.timeout), lab_pid=lab_pid, stdout=fh)
    alone = jsonl_endpoints(out)
    same = sum(1 for k, row in alone.items() if k in rows
               and without_timings(rows[k]) == without_timings(row))
    return f"{same}/{len(alone)} endpoints of the first 250 domains identical to a scan of those alone"


def dead_run(args: argparse.Namespace, figures: report.Figures, fmt: str, workdir: Path) -> None:
    dead_lab = Lab(args.endpoints, DEAD_NET, args.dead_fraction, args.cert_dir, workdir)
    try:
        dstate = dead_lab.wait_ready()
        dead = sum(1 for e in dstate["endpoints"] if e["dead"])
        dfile = workdir / "domains-dead.txt"
        dfile.write_text("\n".join(dstate["domains"]) + "\n")
        out = workdir / "fedscan-dead.jsonl"
        with out.open("wb") as fh:
            run, _ = measure(
                f"fedscan, {dead} silent",
                fedscan_argv(dfile, dstate, fmt, args.concurrency, args.dead_timeout),
                lab_pid=dead_lab.proc.pid, stdout=fh)
        healthy = {f"{e['address']}:{e['port']}" for e in dstate["endpoints"] if not e["dead"]}
        rows = jsonl_endpoints(out)
        figures.dead = report.DeadRun(run, dead, args.dead_timeout, timed_out(rows, healthy),
                                      len(rows))
    finally:
        dead_lab.stop()


def politeness_run(args: argparse.Namespace, figures: report.Figures, workdir: Path) -> None:
    """fedscan, default options, against one lab address serving ``--hosted`` domains; the lab
    counts the connections open at once."""
    lab = Lab(0, HOSTED_NET, 0.0, args.cert_dir, workdir, hosted=args.hosted)
    try:
        state = lab.wait_ready()
        dfile = workdir / "domains-hosted.txt"
        dfile.write_text("\n".join(state["domains"]) + "\n")
        run, _ = measure(f"fedscan, {args.hosted} hosted",
                         [sys.executable, "-m", "scanner", "scan", "--domains-file", str(dfile),
                          "--nameserver", state["nameserver"], "--ca-file", state["ca_file"],
                          "--at", AT, "--format", "jsonl"], lab_pid=lab.proc.pid)
    finally:
        lab.stop()
    counter = json.loads(lab.state_file.with_suffix(".counter").read_text())
    figures.politeness = report.Politeness(run, args.hosted, counter["peak"], counter["accepted"])


if __name__ == "__main__":
    sys.exit(main())
