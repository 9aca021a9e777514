"""The figures of one bench run and their rendering (plain text, pasteable as Markdown)."""

from __future__ import annotations

import platform
import ssl
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import Run

RSS_TARGET_MB = 150
FLOOR_RATIO_TARGET = 1.3
SSLYZE_RATIO_TARGET = 10.0
IMPORT_TARGET = 0.4


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": model,
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "kernel": platform.release(),
    }


@dataclass(frozen=True)
class DeadRun:
    run: Run
    dead: int
    timeout: float
    budget: float


@dataclass
class Figures:
    endpoints: int
    concurrency: int
    machine: dict[str, str]
    lab_startup: float = 0.0
    runs: list[Run] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    sslyze_missing: str | None = None
    fingerprints: str = ""
    imports: dict[str, float] = field(default_factory=dict)
    dead: DeadRun | None = None
    handshakes: int = 0
    stages: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)  # wall of every repeat

    def add(self, run: Run, handshakes: int, stderr: bytes) -> None:
        self.runs.append(run)
        self.handshakes = handshakes
        text = stderr.decode(errors="replace").strip()
        if text:
            self.errors[run.name] = text[-2000:]

    def named(self, prefix: str) -> Run | None:
        return next((r for r in self.runs if r.name.startswith(prefix)), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoints": self.endpoints,
            "concurrency": self.concurrency,
            "machine": self.machine,
            "lab_startup_s": self.lab_startup,
            "runs": [asdict(r) for r in self.runs],
            "sslyze_missing": self.sslyze_missing,
            "fingerprints": self.fingerprints,
            "imports_s": self.imports,
            "stages_cpu_s": self.stages,
            "wall_samples_s": self.samples,
            "errors": self.errors,
            "dead": None if self.dead is None else {**asdict(self.dead.run), "dead": self.dead.dead,
                                                    "timeout": self.dead.timeout,
                                                    "budget": self.dead.budget},
        }


def header(f: Figures) -> str:
    m = f.machine
    return (f"fedscan bench: N={f.endpoints}, concurrency {f.concurrency}\n"
            f"machine: {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, {m['openssl']}, "
            f"Linux {m['kernel']}")


def compare_fingerprints(prints: dict[str, dict[str, str | None]], expected: int) -> str:
    """One line: do all tools report the same leaf for every endpoint?"""
    reference_name = "floor"
    reference = prints[reference_name]
    complete = sum(1 for v in reference.values() if v)
    parts = [f"{reference_name}: {complete}/{expected} endpoints with a leaf"]
    ok = complete == expected
    for name, got in prints.items():
        if name == reference_name:
            continue
        same = sum(1 for k, v in reference.items() if v and got.get(k) == v)
        parts.append(f"{name}: {same}/{complete} identical")
        ok = ok and same == complete
    return ("OK, " if ok else "MISMATCH, ") + "; ".join(parts)


def _row(r: Run, n: int) -> str:
    rate = n / r.wall if r.wall > 0 else 0.0
    return (f"| {r.name:<24} | {r.wall:8.2f} | {r.cpu:8.2f} | {rate:8.0f} | {r.max_rss_mb:6.1f} "
            f"| {r.lab_cpu:9.2f} | {r.returncode:>4} |")


def render(f: Figures) -> str:
    n = f.handshakes or f.endpoints
    lines = [
        "",
        f"| tool (N={n:<5})            |   wall s |    CPU s | endpts/s | RSS MB | lab CPU s | exit |",
        "|--------------------------|---------:|---------:|---------:|-------:|----------:|-----:|",
    ]
    lines += [_row(r, n) for r in f.runs]
    if f.dead is not None:
        lines.append(_row(f.dead.run, n))
    lines.append("")
    if any(len(v) > 1 for v in f.samples.values()):
        walls = "; ".join(f"{name} {' '.join(f'{w:.2f}' for w in v)}" for name, v in f.samples.items())
        lines.append(f"median of {max(len(v) for v in f.samples.values())} runs each (wall s: {walls})")
    floor, fed, sslyze = f.named("floor"), f.named("fedscan"), f.named("sslyze")
    if floor and fed:
        ratio = fed.wall / floor.wall
        verdict = "meets" if ratio <= FLOOR_RATIO_TARGET else "MISSES"
        lines.append(f"fedscan/floor wall: {ratio:.2f} x ({verdict} <= {FLOOR_RATIO_TARGET} x); "
                     f"CPU {fed.cpu / max(floor.cpu, 1e-9):.2f} x")
    if sslyze and fed:
        ratio = sslyze.wall / fed.wall
        verdict = "meets" if ratio >= SSLYZE_RATIO_TARGET else "MISSES"
        lines.append(f"sslyze/fedscan wall: {ratio:.1f} x ({verdict} >= {SSLYZE_RATIO_TARGET:.0f} x); "
                     f"CPU {sslyze.cpu / max(fed.cpu, 1e-9):.1f} x")
    elif f.sslyze_missing:
        lines.append(f"sslyze: not run: {f.sslyze_missing}")
    for r in f.runs:
        if r.name.startswith("fedscan"):
            verdict = "meets" if r.max_rss_mb <= RSS_TARGET_MB else "over"
            lines.append(f"{r.name}: peak RSS {r.max_rss_mb:.1f} MB ({verdict} the {RSS_TARGET_MB} MB "
                         "target set for N=10000)")
    lines.append(f"leaf fingerprints: {f.fingerprints}")
    if f.dead is not None:
        d = f.dead
        verdict = "meets" if d.run.wall <= d.budget else "MISSES"
        lines.append(f"dead peers: {d.dead} of {n} silent, --timeout {d.timeout:g}: {d.run.wall:.2f} s "
                     f"({verdict} the budget {d.budget:.2f} s = (live + timeout x ceil(dead/concurrency))"
                     " x 1.1)")
    for name, seconds in f.imports.items():
        verdict = "meets" if seconds < IMPORT_TARGET else "MISSES"
        lines.append(f"imports, {name}: {seconds:.3f} s ({verdict} < {IMPORT_TARGET} s)")
    lines += render_stages(f)
    lines.append(f"lab: ready in {f.lab_startup:.1f} s; its CPU (last column) runs on the same "
                 f"{f.machine['cpus']} cores as the tool measured")
    for name, text in f.errors.items():
        text_lines = text.splitlines() or [""]
        first, last = text_lines[0], text_lines[-1]
        shown = f"{first[:200]} ... {last[:300]}" if len(text_lines) > 1 else first[:300]
        lines.append(f"stderr of {name}: {shown}")
    return "\n".join(lines)


def render_stages(f: Figures) -> list[str]:
    """fedscan's CPU by stage, and what the 1.3 x target leaves for everything but handshakes."""
    st, fed, floor = f.stages, f.named("fedscan"), f.named("floor")
    if not st or fed is None:
        return []
    parts = st["imports"] + st["dns"] + st["handshakes"] + st["verification"]
    lines = [
        "",
        f"fedscan CPU by stage (one after another in one process; min of {st.get('runs', 1):.0f} such "
        "runs; bench/stages.py):",
        f"  start-up imports          {st['imports']:6.2f} s",
        f"  DNS discovery             {st['dns']:6.2f} s  ({st['questions']:.0f} questions, "
        f"{st['dns'] / max(st['questions'], 1) * 1e6:.0f} us each)",
        f"  handshakes                {st['handshakes']:6.2f} s  ({st['endpoints']:.0f} endpoints; "
        f"the floor's same handshakes in-process: {st['floor_handshakes']:.2f} s)",
        f"  verification              {st['verification']:6.2f} s  ({st['chains']:.0f} chains, "
        f"{st['distinct_leaves']:.0f} distinct leaves)",
        f"  rest of the full run      {max(fed.cpu - parts, 0.0):6.2f} s  (full run {fed.cpu:.2f} s "
        "CPU minus the above: scheduling, results, JSON)",
    ]
    if floor is not None:
        allowed = FLOOR_RATIO_TARGET * floor.wall
        lines.append(
            f"  the {FLOOR_RATIO_TARGET} x target allows {allowed:.2f} s of wall; fedscan is CPU-bound, "
            f"so its CPU must fit in it: handshakes and imports alone take "
            f"{st['handshakes'] + st['imports']:.2f} s")
    return lines
