"""Running trio from the command line: the scan with Ctrl-C handling, and the lab.

The only module that calls ``trio.run``. A SIGINT cancels the scan's nursery cleanly, and the
report keeps every endpoint that had finished, marked ``interrupted``.
"""

from __future__ import annotations

import datetime as dt
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from scanner.results import ScanReport
from scanner.scan import Scan, ScanOptions, Sink
from scanner.verify import TrustStore


def run_scan(
    domains: Sequence[str],
    options: ScanOptions,
    nameservers: Sequence[tuple[str, int]] | None,
    trust: TrustStore,
    at: dt.datetime | None,
    output: str,
) -> ScanReport:
    from scanner.discovery import make_resolver
    from scanner.sinks import FanOut, JsonLines, Progress

    resolver = make_resolver(nameservers, timeout=min(options.timeout, 5.0))
    jsonl = JsonLines(sys.stdout) if output == "jsonl" else None
    progress = Progress() if sys.stderr.isatty() else None
    sinks: list[Sink] = [s for s in (jsonl, progress) if s is not None]
    now = at or dt.datetime.now(dt.UTC)
    # jsonl streams every result as it happens: the report keeps only counts (flat memory)
    scan = Scan(domains, options, resolver=resolver, trust=trust, now=now, sink=FanOut(sinks),
                retain_endpoints=jsonl is None)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_sigint, nursery.cancel_scope, scan.report)
            await scan.run()
            nursery.cancel_scope.cancel()

    if progress is not None:
        with progress:
            trio.run(main)
    else:
        trio.run(main)
    if jsonl is not None:
        jsonl.summary(scan.report)
    return scan.report


async def _stop_on_sigint(scope: trio.CancelScope, report: ScanReport) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            report.interrupted = True
            scope.cancel()
            return


def serve_lab(net: str, dns_port: int, state_file: Path | None) -> None:
    from scanner.lab.run import describe, run_lab, write_state

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            info = await nursery.start(lambda task_status: run_lab(net=net, dns_port=dns_port,
                                                                   task_status=task_status))
            print(describe(info), flush=True)
            if state_file is not None:
                write_state(state_file, info)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            nursery.cancel_scope.cancel()

    trio.run(main)
    print("lab stopped", file=sys.stderr)
