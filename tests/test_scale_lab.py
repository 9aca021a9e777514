"""The N-endpoint scale lab: its world is well formed, and fedscan scans it cleanly, dead peers
included (they cost one timeout each, never a sibling)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import trio

from scanner.discovery import make_resolver, parse_nameserver
from scanner.lab.run import LabInfo, run_lab
from scanner.lab.scale import ScaleLab, is_dead, scale_world
from scanner.lab.thread import lab_in_thread
from scanner.scan import Scan, ScanOptions
from scanner.srv import DEFAULT_SERVICES
from scanner.trust import load_ca_file
from scanner.verify import Verifier
from tests.conftest import lab_net

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scale-certs")


def test_world_shape(cert_dir: Path) -> None:
    lab = scale_world(38, cert_dir, dead_fraction=0.2, base_port=30000)
    assert len(lab.domains) == 10  # rounded up to whole domains of four endpoints
    assert len(lab.endpoints) == 40
    assert len(lab.dead) == 8
    assert len(lab.world.listeners) == 40
    assert len(lab.world.silent) == 8  # the dead: accepted by the kernel, never answered
    assert len(lab.world.behaviours) == 32  # the live ones answer after TLS
    places = [(e.host, e.port) for e in lab.endpoints]
    assert len(set(places)) == len(places)
    by_target = Counter((e.service, e.target, e.port) for e in lab.endpoints)
    assert set(by_target.values()) == {2}  # every SRV target is a two-node pool on one port
    assert all(2 <= e.host <= 251 for e in lab.endpoints)


def test_dead_endpoints_are_spread_evenly() -> None:
    assert sum(is_dead(i, 0.2) for i in range(1000)) == 200
    assert [i for i in range(10) if is_dead(i, 0.2)] == [4, 9]
    assert not any(is_dead(i, 0.0) for i in range(100))


def test_bad_sizes_are_refused(cert_dir: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        scale_world(0, cert_dir)
    with pytest.raises(ValueError, match="dead_fraction"):
        scale_world(4, cert_dir, dead_fraction=1.0)
    with pytest.raises(ValueError, match="do not fit"):
        scale_world(400, cert_dir, base_port=65500)


def test_certificates_are_reused(cert_dir: Path) -> None:
    scale_world(8, cert_dir)
    chain = cert_dir / "d00000.bench.test.pem"
    before = chain.stat().st_mtime_ns
    scale_world(8, cert_dir)
    assert chain.stat().st_mtime_ns == before


def test_fedscan_scans_the_scale_lab_cleanly(cert_dir: Path) -> None:
    lab = scale_world(24, cert_dir, base_port=30100)
    with lab_in_thread(net=lab_net(109), world=lab.world) as info:
        proc = subprocess.run(
            [sys.executable, "-m", "scanner", "scan", *info.scan_args(), "--at", "2030-01-01T00:00:00Z",
             "--format", "json"],
            capture_output=True, text=True, timeout=120, check=False,
        )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["endpoint_counts"] == {"OK": 24, "WARNING": 0, "CRITICAL": 0, "UNKNOWN": 0}
    for d in doc["domains"]:
        codes = sorted(f["code"] for s in d["services"] for f in s["findings"])
        assert codes == ["srv-missing"], d["domain"]  # no XMPPS record, informational
        assert len(d["endpoints"]) == 4
        assert len({e["certificate"]["sha256"] for e in d["endpoints"]}) == 1  # one cert per domain


async def _scan_served(lab: ScaleLab, net: str, timeout: float, retain: bool) -> Scan:
    async with trio.open_nursery() as nursery:
        info: LabInfo = await nursery.start(lambda task_status: run_lab(
            net=net, world=lab.world, task_status=task_status))
        options = ScanOptions(services=DEFAULT_SERVICES, timeout=timeout, concurrency=8)
        scan = Scan(
            lab.domains,
            options,
            resolver=make_resolver([parse_nameserver(info.nameserver)]),
            verifier=Verifier(load_ca_file(info.ca_file), NOW, options.policy),
            retain_endpoints=retain,
        )
        await scan.run()
        nursery.cancel_scope.cancel()
    return scan


async def test_dead_peers_time_out_without_hurting_siblings(cert_dir: Path) -> None:
    lab = scale_world(20, cert_dir, dead_fraction=0.2, base_port=30200)
    scan = await _scan_served(lab, lab_net(108), timeout=1.0, retain=True)
    results = scan.report.endpoints
    assert len(results) == 20
    timed_out = {(e.endpoint.address, e.endpoint.port) for e in results
                 if [f.code for f in e.findings] == ["handshake-timeout"]}
    assert timed_out == {(f"{lab_net(108)}.{e.host}", e.port) for e in lab.dead}
    assert scan.report.counts()["OK"] == 16


async def test_streaming_scan_keeps_counts_not_results(cert_dir: Path) -> None:
    lab = scale_world(16, cert_dir, dead_fraction=0.25, base_port=30300)
    scan = await _scan_served(lab, lab_net(107), timeout=1.0, retain=False)
    assert scan.report.endpoints == []  # every domain released once reported
    assert scan.report.counts() == {"OK": 12, "WARNING": 0, "CRITICAL": 4, "UNKNOWN": 0}
    assert scan.report.status.name == "CRITICAL"
    assert scan.report.to_json()["endpoint_counts"]["CRITICAL"] == 4

