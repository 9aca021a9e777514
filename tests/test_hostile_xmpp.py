"""Hostile XMPP s2s peers, reached through the shared scan of the hostile lab world.

Each XMPP case domain also publishes a healthy SIP federation endpoint, which must come out
clean: a hostile XMPP server never spoils its domain's other endpoints.
"""

from __future__ import annotations

from typing import Any

import pytest

from scanner.lab.run import LabInfo
from tests.hostile_support import (
    CASES,
    TIMEOUT,
    HostileScan,
    check_case,
    finding_of,
)


def xmpp_case(scan: HostileScan, lab: LabInfo, label: str) -> dict[str, Any]:
    case = CASES[label]
    endpoint = check_case(scan, lab, case)
    sip = scan.endpoint(case.domain, "sip-federation")
    assert sip["findings"] == [], "the healthy SIP endpoint of the same domain is untouched"
    return endpoint


def reason(endpoint: dict[str, Any]) -> str:
    value = finding_of(endpoint, "protocol-error")["details"]["reason"]
    assert isinstance(value, str)
    return value


def test_accept_then_close(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    assert reason(xmpp_case(hostile_scan, hostile_lab, "close-xmpp")) == "stream closed before <proceed/>"


def test_drip_hits_the_total_deadline(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = xmpp_case(hostile_scan, hostile_lab, "drip-xmpp")
    assert finding_of(endpoint, "handshake-timeout")["details"]["phase"] == "starttls"
    assert endpoint["timings"]["total"] >= TIMEOUT - 0.1


def test_features_without_starttls(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = xmpp_case(hostile_scan, hostile_lab, "no-starttls")
    assert endpoint["xmpp_features"] == ["{urn:xmpp:features:dialback}dialback"]


def test_starttls_offered_but_not_required_is_info(hostile_scan: HostileScan,
                                                    hostile_lab: LabInfo) -> None:
    endpoint = xmpp_case(hostile_scan, hostile_lab, "starttls-optional")
    (f,) = endpoint["findings"]
    assert f["severity"] == "info"
    assert f["message"] == "starttls-optional.hostile.test: STARTTLS is offered but not required"
    assert f["details"]["features"] == ["{urn:ietf:params:xml:ns:xmpp-tls}starttls",
                                        "{urn:xmpp:features:dialback}dialback"]
    assert endpoint["tls"] is not None and endpoint["certificate"] is not None  # TLS went ahead
    assert hostile_scan.domain("starttls-optional.hostile.test")["status"] == "OK"


def test_starttls_answered_with_failure(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    xmpp_case(hostile_scan, hostile_lab, "starttls-failure")


@pytest.mark.parametrize(("label", "condition", "text"), [
    ("host-unknown", "host-unknown", "not served here"),
    ("policy-violation", "policy-violation", "go away"),
])
def test_stream_error(hostile_scan: HostileScan, hostile_lab: LabInfo, label: str, condition: str,
                      text: str) -> None:
    details = finding_of(xmpp_case(hostile_scan, hostile_lab, label), "stream-error")["details"]
    assert details == {"condition": condition, "text": text}


def test_features_never_sent(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = xmpp_case(hostile_scan, hostile_lab, "no-features")
    assert finding_of(endpoint, "handshake-timeout")["details"]["phase"] == "starttls"


def test_unterminated_features(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = xmpp_case(hostile_scan, hostile_lab, "unterminated")
    assert finding_of(endpoint, "handshake-timeout")["details"]["phase"] == "starttls"
    assert endpoint["xmpp_features"] == []  # a half element is never reported as features


def test_oversized_features_over_the_cap(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = xmpp_case(hostile_scan, hostile_lab, "oversized")
    assert reason(endpoint) == "more than 65536 bytes before TLS (oversized or endless input)"
    assert endpoint["timings"]["total"] < 1.0  # cut off at the cap, not at the deadline


def test_billion_laughs(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = xmpp_case(hostile_scan, hostile_lab, "laughs")
    assert reason(endpoint) == "DOCTYPE is forbidden in XMPP (possible entity expansion attack)"


def test_external_entity(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = xmpp_case(hostile_scan, hostile_lab, "xxe")
    assert "DOCTYPE is forbidden" in reason(endpoint)
    assert "root:" not in str(endpoint)  # nothing of /etc/passwd anywhere


def test_invalid_xml(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = xmpp_case(hostile_scan, hostile_lab, "bad-xml")
    assert reason(endpoint) == "malformed XML: mismatched tag at line 1"


def test_non_xmpp_banner(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    assert reason(xmpp_case(hostile_scan, hostile_lab, "ssh")).startswith(
        "not an XMPP stream (received b'SSH-2.0-OpenSSH")


def test_bytes_after_proceed_are_rejected(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = xmpp_case(hostile_scan, hostile_lab, "inject")
    assert reason(endpoint).startswith("plaintext injection: bytes after <")
    assert endpoint["tls"] is None  # TLS never started on a tainted stream
