"""Running trio from the command line: the scan with Ctrl-C handling.

The only module that calls ``trio.run``. A SIGINT cancels the scan's nursery cleanly, and the
report keeps every endpoint that had finished, marked ``interrupted``. Before a scan the
open-file limit is raised (:func:`shared_limits`): a census holds thousands of connections;
and the garbage collector is tuned for a run that allocates millions of short-lived objects
(:func:`scanner.limits.census_gc`).
"""

from __future__ import annotations

import datetime as dt
import signal
from collections.abc import Callable, Sequence

import trio

from scanner.limits import census_gc
from scanner.results import ScanReport
from scanner.scan import Scan, ScanOptions, Shared, Sink
from scanner.tlsa import TlsaAnswer
from scanner.verify import TrustStore, Verifier


def shared_limits(options: ScanOptions, notify: Callable[[str], None] | None = None) -> Shared:
    """The run's limits, after raising the soft ``RLIMIT_NOFILE`` to the hard limit; if the
    descriptors then bound the run below ``--connections``, ``notify`` is told so once."""
    from scanner.limits import raise_nofile_limit

    soft, _ = raise_nofile_limit()
    return Shared.for_options(options, nofile=soft, notify=notify)


def run_scan(
    domains: Sequence[str],
    options: ScanOptions,
    nameservers: Sequence[tuple[str, int]] | None,
    trust: TrustStore,
    at: dt.datetime | None,
    *,
    sink: Sink | None = None,
    retain_endpoints: bool = True,
    notify: Callable[[str], None] | None = None,
) -> ScanReport:
    """One scan, Ctrl-C aware. Where results go while it runs is the caller's choice (``sink``),
    and so is where a notice goes (``notify``: the open-file limit binds the run): this layer
    does I/O with peers, never with the user."""
    from scanner.discovery import make_resolver

    resolver = make_resolver(nameservers, timeout=min(options.timeout, 5.0))
    now = at or dt.datetime.now(dt.UTC)
    verifier = Verifier(trust, now, options.policy)
    scan = Scan(domains, options, resolver=resolver, verifier=verifier, sink=sink,
                retain_endpoints=retain_endpoints, shared=shared_limits(options, notify))
    run_scans([scan])
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

    with census_gc():
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


def lookup_published_tlsa(
    resolver: tuple[str, int], domains: Sequence[str], services: Sequence[str], *,
    timeout: float = 5.0,
) -> list[TlsaAnswer]:
    """The TLSA published now for ``domains`` (``fedscan cert --dane``, ``readiness --cert``)."""
    from scanner.dane_dns import DaneResolver, published_tlsa

    return trio.run(published_tlsa, DaneResolver(resolver, timeout=timeout), domains, services)
