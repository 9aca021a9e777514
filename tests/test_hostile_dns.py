"""Hostile and broken DNS, reached through the shared scan of the hostile lab world, and the
forms of a domain name a user may type (IDN, upper case, trailing dot)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scanner.lab.hostile import HEALTHY_DOMAIN, IDN_UNICODE, SRV_FLOOD
from scanner.lab.run import LabInfo
from scanner.srv import DEFAULT_SRV_CAP
from tests.conftest import all_codes
from tests.hostile_support import (
    AT,
    CASES,
    TIMEOUT,
    HostileScan,
    codes,
)


def sip_service(scan: HostileScan, lab: LabInfo, label: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sip-federation service result and its domain, after the common checks."""
    case = CASES[label]
    domain = scan.domain(case.domain)
    expected = next(d for d in lab.domains if d.domain == case.domain)
    assert all_codes(domain) == list(expected.codes)
    assert domain["status"] == expected.status.name
    service = next(s for s in domain["services"] if s["service"] == "sip-federation")
    assert codes(service["findings"]) == sorted(case.codes)
    assert scan.domain(HEALTHY_DOMAIN)["status"] == "OK"
    return service, domain


@pytest.mark.parametrize(("label", "reason"), [
    ("servfail", "SERVFAIL"), ("dns-timeout", "Timeout"), ("cname-loop", "The CNAME chain is too long")])
def test_dns_failure_is_dns_error_unknown(hostile_scan: HostileScan, hostile_lab: LabInfo,
                                          label: str, reason: str) -> None:
    service, domain = sip_service(hostile_scan, hostile_lab, label)
    (finding,) = service["findings"]
    assert finding["severity"] == "unknown"
    assert reason in finding["details"]["reason"]
    assert domain["endpoints"] == []


def test_truncated_udp_answer_is_retried_over_tcp(hostile_scan: HostileScan,
                                                  hostile_lab: LabInfo) -> None:
    _, domain = sip_service(hostile_scan, hostile_lab, "truncated")
    (endpoint,) = domain["endpoints"]
    assert endpoint["findings"] == []
    assert endpoint["tls"] is not None


def test_500_srv_records_are_capped_and_reported(hostile_scan: HostileScan,
                                                 hostile_lab: LabInfo) -> None:
    service, domain = sip_service(hostile_scan, hostile_lab, "srv-flood")
    (finding,) = service["findings"]
    assert finding["details"]["published"] == SRV_FLOOD
    assert finding["details"]["cap"] == DEFAULT_SRV_CAP
    assert len(service["srv"]) == DEFAULT_SRV_CAP
    assert len(domain["endpoints"]) == 1  # all records name one target and port: one handshake
    assert domain["endpoints"][0]["findings"] == []


def test_target_without_address(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    service, domain = sip_service(hostile_scan, hostile_lab, "no-address")
    assert service["findings"][0]["details"]["target"] == f"sip.{CASES['no-address'].domain}"
    assert domain["endpoints"] == []


def test_dns_timeout_is_bounded_by_the_lifetime(hostile_scan: HostileScan) -> None:
    # the resolver's lifetime is min(--timeout, 5 s); the whole scan waited about that long
    assert hostile_scan.wall < 2 * TIMEOUT + 4


@pytest.mark.parametrize("typed", [
    IDN_UNICODE,  # BÜCHER.HOSTILE.TEST.
    "bücher.hostile.test",
    "XN--BCHER-KVA.HOSTILE.TEST",
    "xn--bcher-kva.hostile.test.",
])
def test_idn_uppercase_and_trailing_dot_scan_the_same_domain(
    capsys: pytest.CaptureFixture[str], hostile_lab: LabInfo, typed: str
) -> None:
    from scanner.cli import run

    code = run(["scan", typed, *hostile_lab.scan_args([]), *AT, "--format", "json",
                "--timeout", str(TIMEOUT)])
    doc = json.loads(capsys.readouterr().out)
    (domain,) = doc["domains"]
    assert code == 0
    assert domain["domain"] == "xn--bcher-kva.hostile.test"
    assert all_codes(domain) == ["srv-fallback", "srv-missing"]
    (endpoint,) = domain["endpoints"]
    assert endpoint["target"] == "sip.xn--bcher-kva.hostile.test"
    assert endpoint["findings"] == []
