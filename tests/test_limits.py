"""Limits of a scan (scanner.limits): the open-file limit and politeness per address.

Not timed tests of speed (that is ``make bench``): they prove what a user relies on. At most
``--per-address`` connections are ever open to one address (counted by the lab, in the
kernel's view), waiting for that slot is not charged to an endpoint's deadline, the soft
``RLIMIT_NOFILE`` is raised to the hard limit, and when descriptors bound the run the scan
stays within them and says so once.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from scanner.discovery import make_resolver, parse_nameserver
from scanner.lab.run import LabInfo, lab_address
from scanner.lab.scale import HostedLab, hosted_world
from scanner.lab.thread import lab_in_thread
from scanner.limits import FD_RESERVE, GC_YOUNG, Budget, Pace, census_gc, raise_nofile_limit
from scanner.live import run_scans
from scanner.results import ScanReport
from scanner.scan import Scan, ScanOptions, Shared
from scanner.srv import DEFAULT_SERVICES
from scanner.trust import load_ca_file
from scanner.verify import Verifier
from tests.conftest import NOW, lab_net

NET = lab_net(106)
DOMAINS = 200
RTT = 0.01  # each answer 10 ms late: connections last long enough to overlap
TIMEOUT = 0.5


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> HostedLab:
    return hosted_world(DOMAINS, tmp_path_factory.mktemp("hosted-certs"), rtt=RTT, base_port=30400,
                        request_client_cert=False)


@pytest.fixture(scope="module")
def hosted_lab(hosted: HostedLab) -> Iterator[LabInfo]:
    with lab_in_thread(net=NET, world=hosted.world) as info:
        yield info


def _scan(lab: LabInfo, hosted: HostedLab, options: ScanOptions,
          shared: Shared | None = None) -> tuple[Scan, float]:
    hosted.counter.reset()
    scan = Scan(hosted.domains, options,
                resolver=make_resolver([parse_nameserver(lab.nameserver)]),
                verifier=Verifier(load_ca_file(lab.ca_file), NOW, options.policy), shared=shared)
    begin = time.monotonic()
    trio.run(scan.run)
    return scan, time.monotonic() - begin


def test_hosted_lab_is_one_address_for_every_domain(hosted: HostedLab) -> None:
    assert len(hosted.domains) == DOMAINS
    assert set(hosted.world.hosts.values()) == {(hosted.host,)}
    assert {listener.host for listener in hosted.world.listeners} == {hosted.host}


def test_per_address_cap_holds_and_waiting_for_it_is_not_charged(
    hosted: HostedLab, hosted_lab: LabInfo
) -> None:
    options = ScanOptions(services=DEFAULT_SERVICES, timeout=TIMEOUT)
    assert options.per_address == 4  # politeness is on by default
    scan, elapsed = _scan(hosted_lab, hosted, options)
    endpoints = scan.report.endpoints
    assert len(endpoints) == 2 * DOMAINS == hosted.counter.accepted
    assert {e.endpoint.address for e in endpoints} == {lab_address(NET, hosted.host)}
    assert hosted.counter.peak == 4  # the cap is reached, never passed
    # 400 endpoints through 4 slots take far longer than one endpoint's timeout, yet none
    # timed out: the deadline starts when the endpoint has its slot
    assert elapsed > 2 * TIMEOUT
    assert scan.report.counts() == {"OK": 400, "WARNING": 0, "CRITICAL": 0, "UNKNOWN": 0}
    # ... and the run takes what 4 endpoints at a time take, not more (pipelined, not serial)
    busy = sum(e.timings["total"] for e in endpoints)
    assert elapsed <= busy / 4 * 1.5 + 1.0, (elapsed, busy)


def test_no_cap_when_per_address_is_zero(hosted: HostedLab, hosted_lab: LabInfo) -> None:
    options = ScanOptions(services=DEFAULT_SERVICES, timeout=5.0, per_address=0, connections=16)
    scan, _ = _scan(hosted_lab, hosted, options)
    assert 4 < hosted.counter.peak <= 16  # --connections bounds it instead
    assert scan.report.counts()["OK"] == 400


def test_budget_fits_descriptors() -> None:
    roomy = Budget.plan(4096, 128, nofile=1 << 20)
    assert (roomy.connections, roomy.dns, roomy.fd_bound) == (4096, 128, False)
    tight = Budget.plan(4096, 128, nofile=FD_RESERVE + 400)
    assert (tight.connections, tight.dns, tight.fd_bound) == (300, 100, True)
    assert tight.connections + tight.dns + FD_RESERVE <= tight.nofile
    assert "open-file limit is 464" in tight.notice()
    tiny = Budget.plan(4096, 128, nofile=10)  # never zero: a tiny limit scans slowly
    assert (tiny.connections, tiny.dns) == (1, 1)


def test_descriptor_limit_bounds_the_run(hosted: HostedLab, hosted_lab: LabInfo) -> None:
    notices: list[str] = []
    options = ScanOptions(services=DEFAULT_SERVICES, timeout=5.0, per_address=0)
    shared = Shared.for_options(options, nofile=FD_RESERVE + 40, notify=notices.append)
    assert shared.limits.budget.connections == 30
    scan, _ = _scan(hosted_lab, hosted, options, shared)
    assert hosted.counter.peak <= 30
    assert shared.limits.peak_connections <= 30
    assert len(notices) <= 1  # said at most once (whether it bound depends on timing here)
    assert scan.report.counts()["OK"] == 400


async def test_the_notice_comes_once_when_descriptors_bind() -> None:
    from scanner.limits import Limits

    notices: list[str] = []
    limits = Limits.create(connections=4096, work=64, per_address=0, dns=128, timeout=10,
                           nofile=FD_RESERVE + 3, notify=notices.append)
    assert limits.budget.connections == 2 and limits.budget.fd_bound
    opened = []

    async def endpoint(hold: trio.Event) -> None:
        pace = await limits.open("192.0.2.1")
        opened.append(pace)
        await hold.wait()
        limits.close(pace)

    hold = trio.Event()
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(endpoint, hold)
        await trio.testing.wait_all_tasks_blocked()
        assert len(opened) == 2  # never more connections than the descriptors allow
        assert notices == [limits.budget.notice()]  # said once, though three waited
        hold.set()
    assert len(opened) == 5 and len(notices) == 1


def test_soft_limit_is_raised_to_the_hard_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, hard)
    code = ("import resource; from scanner.limits import raise_nofile_limit; "
            "print(raise_nofile_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard)),
    )
    assert proc.stdout.strip() == f"({hard}, {hard}) ({hard}, {hard})"
    assert raise_nofile_limit()[0] == resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_cli_stays_within_a_low_hard_limit_and_says_so_once(
    hosted: HostedLab, hosted_lab: LabInfo, tmp_path: Path
) -> None:
    limit = FD_RESERVE + 3  # hard limit too: fedscan cannot raise it
    budget = Budget.plan(4096, 128, nofile=limit)
    assert budget.connections == 2  # 40 endpoints of >= 10 ms each want more: it binds
    hosted.counter.reset()
    proc = subprocess.run(
        [sys.executable, "-m", "scanner", "scan", *hosted_lab.scan_args(hosted.domains[:20]), "--at",
         "2030-01-01T00:00:00Z", "--format", "jsonl", "--per-address", "0", "--timeout", "5"],
        capture_output=True, text=True, timeout=120, check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)),
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout[-3000:]
    notices = [line for line in proc.stderr.splitlines() if "open-file limit" in line]
    assert notices == [f"fedscan: {budget.notice()}"]
    assert hosted.counter.peak <= budget.connections
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert summary["endpoint_counts"]["OK"] == 40


def test_census_gc_tunes_the_collector_and_puts_it_back() -> None:
    """During a scan the young generation is collected every GC_YOUNG allocations and what
    existed at the start is frozen; afterwards the caller's settings are back exactly."""
    before = gc.get_threshold()
    with census_gc():
        assert gc.get_threshold() == (GC_YOUNG, *before[1:])
        assert gc.get_freeze_count() > 10_000  # the modules' objects: never traversed again
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_census_gc_restores_after_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(KeyboardInterrupt), census_gc():
        raise KeyboardInterrupt
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_census_gc_leaves_a_callers_own_freeze_frozen() -> None:
    """A library caller that froze its objects (before forking workers, say) finds them
    still frozen after a scan: gc.unfreeze would have thawed them with ours."""
    mine: list[list[int]] = [[]]  # a tracked container: frozen ones are not in gc.get_objects()

    def frozen() -> bool:
        return all(o is not mine for o in gc.get_objects())

    assert not frozen()
    gc.freeze()
    try:
        with census_gc():
            assert frozen()
        assert frozen()  # gc.unfreeze() would have put it back in the collected generations
    finally:
        gc.unfreeze()
    assert not frozen()


def test_scans_run_under_census_gc() -> None:
    """run_scans (the one caller of trio.run for scans) runs every scan with the tuned
    collector: what the scan itself sees is GC_YOUNG."""
    seen: list[int] = []

    class Probe:
        report = ScanReport(started=NOW, evaluated_at=NOW, domains=[], options={})

        async def run(self) -> ScanReport:
            seen.append(gc.get_threshold()[0])
            return self.report

    assert run_scans([Probe()]) is False  # type: ignore[list-item]
    assert seen == [GC_YOUNG]
    assert gc.get_threshold()[0] != GC_YOUNG


def test_an_endpoint_is_freed_when_it_ends_not_at_the_next_collection(
    hosted: HostedLab, hosted_lab: LabInfo
) -> None:
    """Each endpoint's connection (TLS stream, OpenSSL state, buffers, its pace) goes by
    reference counting the moment the endpoint is done. Left in a reference cycle it waits for
    the collector: at N=10,000 that held ~150 MB more at once (docs/performance.md)."""
    options = ScanOptions(services=DEFAULT_SERVICES, timeout=5.0)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds goes to gc.garbage, not away
    try:
        scan, _ = _scan(hosted_lab, hosted, options)
        gc.collect()
        ours = [o for o in gc.garbage if isinstance(o, Pace)
                or (isinstance(o, trio.SSLStream) and not o.server_side)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert scan.report.counts()["OK"] == 400
    assert ours == []
