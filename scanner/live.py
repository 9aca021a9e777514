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

    if progress is not None:
        with progress:
            run_scans([scan])
    else:
        run_scans([scan])
    if jsonl is not None:
        jsonl.summary(scan.report)
    return scan.report


def run_scans(scans: Sequence[Scan]) -> bool:
    """Run scans concurrently in one ``trio.run``; SIGINT/SIGTERM stop them cleanly, each
    report keeping what finished and marked interrupted. Returns whether that happened."""
    interrupted = False

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
            async with trio.open_nursery() as scanning:
                for scan in scans:
                    scanning.start_soon(scan.run)
            nursery.cancel_scope.cancel()

    async def _stop_on_signal(scope: trio.CancelScope) -> None:
        nonlocal interrupted
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                interrupted = True
                for scan in scans:
                    scan.report.interrupted = True
                scope.cancel()
                return

    trio.run(main)
    if interrupted:  # what had not finished was not checked: UNKNOWN, never a silent OK
        for scan in scans:
            for domain in scan.report.domains:
                domain.interrupted = not domain.finished
    return interrupted


def resolve_addresses(
    hosts: Sequence[str], nameservers: Sequence[tuple[str, int]] | None, timeout: float = 5.0
) -> dict[str, tuple[str, ...] | None]:
    """A and AAAA of each host (readiness asks what it reports on): the addresses, ``()`` when
    none is published, ``None`` when DNS could not answer."""
    from scanner.discovery import make_resolver, resolve_hosts
    from scanner.srv import Outcome

    resolver = make_resolver(nameservers, timeout=timeout)

    async def main() -> dict[str, tuple[str, ...] | None]:
        found = await resolve_hosts(resolver, hosts, trio.CapacityLimiter(16))
        out: dict[str, tuple[str, ...] | None] = {}
        for host, lookups in found.items():
            values = tuple(v for lookup in lookups for v in lookup.values)
            failed = all(lookup.outcome is Outcome.ERROR for lookup in lookups)
            out[host] = None if failed and not values else values
        return out

    return trio.run(main)


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
