"""A live scan of the lab's public chains as really served (issue 11): over TLS, from real
handshakes, each domain reports exactly its certificate finding with the severity an
administrator acts on (the codes of every lab domain are also checked in test_scan_lab)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from scanner.cli import run
from scanner.lab.run import LabInfo
from scanner.lab.thread import lab_in_thread
from scanner.lab.zones import REAL_CHAINS, REAL_CHAINS_NET, real_chains_world

AT = ["--at", "2030-01-01T00:00:00Z"]
DOMAINS = [f"{name}.test" for name in REAL_CHAINS]
CERT_CODES = {"srv-missing", "srv-service-disabled"}  # DNS facts of these domains, not under test


@pytest.fixture(scope="module")
def lab() -> Iterator[LabInfo]:
    with lab_in_thread(net=REAL_CHAINS_NET, world=real_chains_world()) as info:
        yield info


def scan(capsys: pytest.CaptureFixture[str], lab: LabInfo, *args: str) -> tuple[int, dict[str, Any]]:
    code = run(["scan", *lab.scan_args(DOMAINS), *AT, "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def certificate_findings(doc: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    out = {}
    for domain in doc["domains"]:
        [endpoint] = domain["endpoints"]  # one SIP endpoint each
        out[domain["domain"]] = sorted(
            (f["code"], f["severity"]) for f in endpoint["findings"] if f["code"] not in CERT_CODES
        )
    return out


EXPECTED = {
    "relecloud.test": [("chain-client-auth-not-permitted", "critical")],
    "woodgrove.test": [("chain-unused-expired", "warning")],
    "treyresearch.test": [("weak-signature", "critical")],
    "lucerne.test": [("leaf-is-ca", "critical")],
    "cohovineyard.test": [("expired", "critical"), ("validity-fractional-seconds", "warning")],
    "alpineskihouse.test": [("serial-not-positive", "info")],
}


def test_live_scan_reports_exactly_each_chain_finding(
    capsys: pytest.CaptureFixture[str], lab: LabInfo
) -> None:
    code, doc = scan(capsys, lab)
    assert certificate_findings(doc) == EXPECTED
    assert code == 2
    by_domain = {d["domain"]: d for d in doc["domains"]}
    for expected in lab.domains:  # the world's stories: every code, and each domain's status
        got = by_domain[expected.domain]
        codes = [f["code"] for part in (got, *got["services"], *got["endpoints"]) for f in part["findings"]]
        assert (sorted(codes), got["status"]) == (sorted(expected.codes), expected.status.name)


def test_live_scan_names_the_ca_and_the_unused_certificate(
    capsys: pytest.CaptureFixture[str], lab: LabInfo
) -> None:
    _, doc = scan(capsys, lab)
    found = {
        (d["domain"], f["code"]): f
        for d in doc["domains"]
        for e in d["endpoints"]
        for f in e["findings"]
    }
    ca = found[("relecloud.test", "chain-client-auth-not-permitted")]
    assert ca["details"]["subject"] == "CN=Fedscan Lab Server-Only CA,O=Fedscan Lab PKI"
    unused = found[("woodgrove.test", "chain-unused-expired")]
    assert unused["details"]["issuer"] == "CN=Fedscan Lab Legacy Root CA,O=Fedscan Lab PKI"
    assert "Fedscan Lab SHA-1 CA" in found[("treyresearch.test", "weak-signature")]["message"]
    assert "expired today" in found[("cohovineyard.test", "expired")]["message"]


def test_live_scan_with_client_auth_optional_makes_the_chain_finding_a_warning(
    capsys: pytest.CaptureFixture[str], lab: LabInfo
) -> None:
    code, doc = scan(capsys, lab, "--client-auth", "optional")
    assert certificate_findings(doc)["relecloud.test"] == [("chain-client-auth-not-permitted", "warning")]
    assert code == 2  # the other domains are still critical


def test_live_scan_keeps_stderr_to_fedscan(lab: LabInfo) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scanner", "scan", *lab.scan_args(["alpineskihouse.test"]), *AT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "serial-not-positive" in proc.stdout
