"""The figures of one bench run and their rendering (plain text, pasteable as Markdown)."""

from __future__ import annotations

import platform
import ssl
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import Run

RSS_TARGET_MB = 200  # the census case: N=10,000 with 30 % silent peers
FLOOR_RATIO_TARGET = 1.3  # against "floor + DNS"
SSLYZE_RATIO_TARGET = 10.0  # loopback
SSLYZE_RTT_RATIO_TARGET = 20.0  # RTT 50 ms
SILENT_TARGET = {False: 1.3, True: 2.0}  # wall <= live + this x timeout (N < 10,000 / census)
REST_TARGET = 0.15
IMPORT_TARGET = 0.4


def load() -> str:
    """The load averages (1, 5, 15 min): figures from a shared machine are read beside it."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


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
    healthy_timed_out: int
    endpoints: int  # endpoint results in its output


@dataclass(frozen=True)
class Politeness:
    run: Run
    domains: int
    peak: int  # the most connections the lab's one address had open at once
    accepted: int


@dataclass(frozen=True)
class Target:
    case: str
    target: str
    measured: str
    met: bool | None  # None: not measured in this run


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
    cpu_samples: dict[str, list[float]] = field(default_factory=dict)
    rtt: float = 0.0
    timeout: float = 10.0
    load: str = ""
    load_after: str = ""
    live_timed_out: int | None = None
    subset: str = ""
    politeness: Politeness | None = None

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
                                                    "healthy_timed_out": self.dead.healthy_timed_out},
            "rtt_ms": self.rtt, "load": [self.load, self.load_after],
            "targets": [asdict(t) for t in targets(self)],
        }


def header(f: Figures) -> str:
    m = f.machine
    where = f"RTT {f.rtt:g} ms" if f.rtt else "loopback"
    return (f"fedscan bench: N={f.endpoints}, {where}, --concurrency {f.concurrency}, "
            f"--timeout {f.timeout:g}\n"
            f"machine: {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, {m['openssl']}, "
            f"Linux {m['kernel']}; load average at start {f.load}")


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
    if f.politeness is not None:
        lines.append(_row(f.politeness.run, 2 * f.politeness.domains))
    lines.append("")
    if any(len(v) > 1 for v in f.samples.values()):
        walls = "; ".join(f"{name} {' '.join(f'{w:.2f}' for w in v)}" for name, v in f.samples.items())
        lines.append(f"median of {max(len(v) for v in f.samples.values())} runs each (wall s: {walls})")
    floor, floor_dns, fed, sslyze = (f.named("floor"), f.named("floor + DNS"), f.named("fedscan"),
                                     f.named("sslyze"))
    if floor and fed:
        lines.append(f"fedscan/floor (no DNS) wall: {fed.wall / floor.wall:.2f} x; "
                     f"CPU {fed.cpu / max(floor.cpu, 1e-9):.2f} x")
    if floor_dns and fed:
        lines.append(f"fedscan/(floor + DNS) wall: {fed.wall / floor_dns.wall:.2f} x; "
                     f"CPU {fed.cpu / max(floor_dns.cpu, 1e-9):.2f} x")
    if sslyze and fed:
        lines.append(f"sslyze/fedscan wall: {sslyze.wall / fed.wall:.1f} x; "
                     f"CPU {sslyze.cpu / max(fed.cpu, 1e-9):.1f} x")
    elif f.sslyze_missing:
        lines.append(f"sslyze: not run: {f.sslyze_missing}")
    lines.append(f"leaf fingerprints: {f.fingerprints}")
    if f.live_timed_out is not None:
        lines.append(f"healthy endpoints timed out in the fedscan run (--timeout {f.timeout:g}): "
                     f"{f.live_timed_out} of {n}")
    if f.subset:
        lines.append(f"results at N={n} vs a scan of the first 1000 endpoints alone: {f.subset}")
    if f.dead is not None:
        d = f.dead
        lines.append(f"silent peers: {d.dead} of {n} accept TCP and never answer, --timeout {d.timeout:g}: "
                     f"{d.run.wall:.2f} s; healthy endpoints timed out: {d.healthy_timed_out}; "
                     f"{d.endpoints} endpoint results")
    if f.politeness is not None:
        p = f.politeness
        lines.append(f"politeness: {p.domains} domains ({p.accepted} connections) on one lab address, "
                     f"default options: at most {p.peak} open at once (lab counter), {p.run.wall:.2f} s")
    for name, seconds in f.imports.items():
        lines.append(f"imports, {name}: {seconds:.3f} s (< {IMPORT_TARGET} s: "
                     f"{'met' if seconds < IMPORT_TARGET else 'missed'})")
    lines += render_stages(f)
    lines.append(f"lab: ready in {f.lab_startup:.1f} s; its CPU (last column) runs on the same "
                 f"{f.machine['cpus']} cores as the tool measured")
    lines += ["", "| case | target | measured | |", "|---|---|---|---|"]
    for t in targets(f):
        verdict = "not measured" if t.met is None else ("met" if t.met else "MISSED")
        lines.append(f"| {t.case} | {t.target} | {t.measured} | {verdict} |")
    lines.append(f"load average at start {f.load}, at the end {f.load_after}")
    for name, text in f.errors.items():
        text_lines = text.splitlines() or [""]
        first, last = text_lines[0], text_lines[-1]
        shown = f"{first[:200]} ... {last[:300]}" if len(text_lines) > 1 else first[:300]
        lines.append(f"stderr of {name}: {shown}")
    return "\n".join(lines)


def rest_cpu(f: Figures) -> float | None:
    """fedscan's CPU outside imports, DNS, handshakes and verification (median full run)."""
    st, fed = f.stages, f.named("fedscan")
    if not st or fed is None:
        return None
    return max(fed.cpu - (st["imports"] + st["dns"] + st["handshakes"] + st["verification"]), 0.0)


def targets(f: Figures) -> list[Target]:
    """Issue 15's targets that this run measures, each with its verdict."""
    n = f.handshakes or f.endpoints
    floor, floor_dns, fed, sslyze = (f.named("floor"), f.named("floor + DNS"), f.named("fedscan"),
                                     f.named("sslyze"))
    out: list[Target] = []
    census = n >= 10_000
    if f.rtt:
        if fed and floor:
            versus = f"; sslyze/fedscan {sslyze.wall / fed.wall:.1f} x" if sslyze else ""
            met = fed.wall < floor.wall and (sslyze is not None
                                            and sslyze.wall / fed.wall >= SSLYZE_RTT_RATIO_TARGET)
            out.append(Target(f"N={n}, RTT {f.rtt:g} ms, default options",
                              f"faster than the floor at K={f.concurrency}, >= "
                              f"{SSLYZE_RTT_RATIO_TARGET:.0f} x faster than sslyze",
                              f"fedscan {fed.wall:.2f} s, floor {floor.wall:.2f} s{versus}",
                              met if sslyze else None))
        return out
    if fed and floor_dns and not census:
        wall, cpu = fed.wall / floor_dns.wall, fed.cpu / max(floor_dns.cpu, 1e-9)
        no_dns = (f"; no-DNS floor: wall {fed.wall / floor.wall:.2f} x, CPU "
                  f"{fed.cpu / max(floor.cpu, 1e-9):.2f} x") if floor else ""
        out.append(Target(f"N={n}, loopback", f"wall and CPU <= {FLOOR_RATIO_TARGET} x floor + DNS",
                          f"wall {wall:.2f} x, CPU {cpu:.2f} x{no_dns}",
                          wall <= FLOOR_RATIO_TARGET and cpu <= FLOOR_RATIO_TARGET))
    if f.dead is not None and fed:
        d = f.dead
        k = SILENT_TARGET[census]
        budget = fed.wall + k * d.timeout
        pct = round(100 * d.dead / n)
        measured = f"{d.run.wall:.2f} s (budget {budget:.2f} s = live {fed.wall:.2f} + {k:g} x {d.timeout:g})"
        met = d.run.wall <= budget
        target = f"wall <= live run + {k:g} x timeout"
        if census:
            measured += (f"; RSS {d.run.max_rss_mb:.0f} MB; healthy timed out: {d.healthy_timed_out}"
                         f" (live run at --timeout {f.timeout:g}: {f.live_timed_out})")
            met = (met and d.run.max_rss_mb <= RSS_TARGET_MB and d.healthy_timed_out == 0
                   and f.live_timed_out == 0)
            target += f"; RSS <= {RSS_TARGET_MB} MB; 0 healthy endpoints timed out"
        out.append(Target(f"N={n}, {pct} % silent peers, --timeout {d.timeout:g}", target, measured, met))
    if sslyze and fed and not census:
        ratio = sslyze.wall / fed.wall
        out.append(Target(f"N={n}, loopback, servers requesting a client certificate",
                          f">= {SSLYZE_RATIO_TARGET:.0f} x faster than sslyze", f"{ratio:.1f} x",
                          ratio >= SSLYZE_RATIO_TARGET))
    rest = rest_cpu(f)
    if rest is not None and not census:
        out.append(Target(f'"rest" CPU at N={n}', f"<= {REST_TARGET} s", f"{rest:.2f} s",
                          rest <= REST_TARGET))
    if f.politeness is not None:
        p = f.politeness
        out.append(Target("politeness", "never more than --per-address (default 4) connections to "
                          "one address", f"{p.peak} at once (lab counter, {p.domains} domains)",
                          0 < p.peak <= 4))
    return out


def render_stages(f: Figures) -> list[str]:
    """fedscan's CPU by stage, and what is left for "the rest" (scheduling, results, output)."""
    st, fed = f.stages, f.named("fedscan")
    if not st or fed is None:
        return []
    rest = rest_cpu(f) or 0.0
    return [
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
        f"  rest of the full run      {rest:6.2f} s  (median full run {fed.cpu:.2f} s CPU minus the "
        "above: scheduling, results, JSON, teardown)",
    ]
