"""Where live results go while a scan runs: JSON lines on stdout, a progress bar on stderr.

Both are :class:`scanner.scan.Sink` implementations; the scan knows nothing of output.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

from scanner.results import DomainResult, EndpointResult, ScanReport
from scanner.scan import ScanOptions, Sink
from scanner.verify import TrustStore

if TYPE_CHECKING:
    from scanner.resume import Resumed  # only with --resume: not imported by every scan


def notice(text: str) -> None:
    """A one-time notice of the run (e.g. the open-file limit bounds it): one line on stderr."""
    sys.stderr.write(f"fedscan: {text}\n")
    sys.stderr.flush()


class FanOut(Sink):
    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)

    def endpoints_planned(self, count: int) -> None:
        for s in self.sinks:
            s.endpoints_planned(count)

    def endpoint_done(self, result: EndpointResult) -> None:
        for s in self.sinks:
            s.endpoint_done(result)

    def domain_done(self, result: DomainResult) -> None:
        for s in self.sinks:
            s.domain_done(result)


def silence_stdout() -> None:
    """Point fd 1 at /dev/null once its reader has gone, so that no later write or the
    interpreter's final flush raises BrokenPipeError (or prints "Exception ignored")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class JsonLines(Sink):
    """One line per endpoint the moment it finishes, one per domain, then a summary line.

    Each line has a ``type`` ("endpoint", "domain", "summary") so that shards concatenate.
    """

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.reader_left = False

    def _write(self, obj: dict[str, Any]) -> None:
        self._emit(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")

    def _emit(self, text: str, *, flush: bool = True) -> None:
        if self.reader_left:
            return
        try:
            self.out.write(text)
            if flush:
                self.out.flush()
        except BrokenPipeError:
            # `fedscan scan ... | head`: the reader has what it wanted. Not an error: the scan
            # finishes (its status is the exit code) and writes nothing more.
            self.reader_left = True
            silence_stdout()

    def copy(self, lines: Iterable[str]) -> None:
        """Lines of an earlier output, unchanged (``--resume``: the domains it finished);
        flushed once at the end, not per line."""
        for line in lines:
            if self.reader_left:
                return
            self._emit(line, flush=False)
        self._emit("")

    def endpoint_done(self, result: EndpointResult) -> None:
        self._write({"type": "endpoint", **result.to_json()})

    def domain_done(self, result: DomainResult) -> None:
        self._write({"type": "domain", **result.to_json_head(),
                     "endpoint_count": len(result.endpoints)})

    def summary(self, report: ScanReport) -> None:
        self._write({"type": "summary", **report.to_json_head()})


class Progress(Sink):
    """A rich progress bar on stderr; the total grows as discovery finds endpoints."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(
            TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(stderr=True), transient=True,
        )
        self.task = self.bar.add_task("scan", total=0)

    def __enter__(self) -> Progress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def endpoints_planned(self, count: int) -> None:
        total = self.bar.tasks[0].total or 0
        self.bar.update(self.task, total=total + count)

    def endpoint_done(self, result: EndpointResult) -> None:
        self.bar.advance(self.task)


def scan_for_output(
    domains: Sequence[str],
    options: ScanOptions,
    nameservers: Sequence[tuple[str, int]] | None,
    trust: TrustStore,
    at: dt.datetime | None,
    output: str,
    resumed: Resumed | None = None,
) -> ScanReport:
    """``fedscan scan``: the scan with the live outputs its format needs (JSON lines as
    endpoints finish, a progress bar on a terminal). ``resumed`` (``jsonl`` only): the lines
    an earlier run finished are written first, and its domains count in the summary."""
    from scanner.live import run_scan

    jsonl = JsonLines(sys.stdout) if output == "jsonl" else None
    if jsonl is not None and resumed is not None:
        jsonl.copy(resumed.lines)
    progress = Progress() if sys.stderr.isatty() else None
    sinks: list[Sink] = [s for s in (jsonl, progress) if s is not None]
    # jsonl streams every result as it happens: the report keeps only counts (flat memory)
    with progress if progress is not None else contextlib.nullcontext():
        report = run_scan(domains, options, nameservers, trust, at, sink=FanOut(sinks),
                          retain_endpoints=jsonl is None, notify=notice)
    if resumed is not None:
        report.domains[:0] = resumed.domains
    if jsonl is not None:
        jsonl.summary(report)
    return report
