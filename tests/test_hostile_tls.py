"""Hostile TCP and TLS peers, reached through a real `fedscan scan` of the hostile lab world.

One scan (a subprocess, as a user runs it) covers every hostile lab domain at once; each test
then checks one misbehaviour: the exact finding codes of the misbehaving endpoint, that it
finished within its deadline, and that the healthy domain scanned alongside is untouched.
The session fixtures (one lab, one scan for all three hostile test modules) are in conftest.py.
"""

from __future__ import annotations

import json

import pytest

from scanner.cli import run
from scanner.lab.run import LabInfo
from tests.conftest import all_codes
from tests.hostile_support import AT, CASES, SLACK, TIMEOUT, HostileScan, check_case, finding_of

# --- the run as a whole -----------------------------------------------------------------------------


def test_hostile_world_scan_has_no_traceback_and_every_domain_as_expected(
    hostile_scan: HostileScan, hostile_lab: LabInfo
) -> None:
    assert hostile_scan.stderr == ""
    assert hostile_scan.exit_code == 2
    for expected in hostile_lab.domains:
        got = hostile_scan.domain(expected.domain)
        assert all_codes(got) == list(expected.codes), expected.domain
        assert got["status"] == expected.status.name, expected.domain
    # stated here, not derived from the product's severity table: the lab's own expectation
    # (computed from CODES) would move with a severity change and never catch it
    statuses = {d["domain"].removesuffix(".hostile.test"): d["status"] for d in hostile_scan.doc["domains"]}
    assert {label for label, status in statuses.items() if status != "CRITICAL"} == {
        "healthy", "starttls-optional", "truncated", "xn--bcher-kva",  # OK
        "mutual-tls", "mutual-tls-drop", "mutual-tls-reset", "srv-flood",  # WARNING
        "servfail", "dns-timeout", "cname-loop",  # UNKNOWN
    }
    assert [label for label, status in statuses.items() if status == "OK"] == [
        "healthy", "starttls-optional", "truncated", "xn--bcher-kva"]
    assert [label for label, status in statuses.items() if status == "WARNING"] == [
        "mutual-tls", "mutual-tls-drop", "mutual-tls-reset", "srv-flood"]
    assert [label for label, status in statuses.items() if status == "UNKNOWN"] == [
        "servfail", "dns-timeout", "cname-loop"]


def test_hostile_world_scan_ends_within_the_deadline_bound(hostile_scan: HostileScan) -> None:
    # every endpoint in parallel: one DNS lifetime (the DNS timeout case) or one handshake
    # deadline (the stallers), plus interpreter start-up and verification
    assert hostile_scan.wall < 2 * TIMEOUT + 4
    for domain in hostile_scan.doc["domains"]:
        for endpoint in domain["endpoints"]:
            assert endpoint["timings"]["total"] <= TIMEOUT + SLACK, endpoint


# --- TCP ----------------------------------------------------------------------------------------------


def test_refused(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = check_case(hostile_scan, hostile_lab, CASES["refused"])
    assert endpoint["timings"]["total"] < 1.0
    assert endpoint["tls"] is None


def test_accept_then_close(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = check_case(hostile_scan, hostile_lab, CASES["close"])
    f = finding_of(endpoint, "tls-handshake-failed")
    assert f["message"] == ("TLS handshake failed: the server closed the connection without "
                            "answering the ClientHello")
    assert f["details"]["received_bytes"] == 0


def test_accept_then_silence(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = check_case(hostile_scan, hostile_lab, CASES["silent"])
    f = finding_of(endpoint, "handshake-timeout")
    assert f["details"] == {"phase": "tls", "received_bytes": 0}
    assert endpoint["timings"]["total"] >= TIMEOUT - 0.1


def test_reset_mid_handshake(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = check_case(hostile_scan, hostile_lab, CASES["reset"])
    f = finding_of(endpoint, "tls-handshake-failed")
    assert "reset the connection (7 bytes received)" in f["message"]


def test_byte_per_second_drip_hits_the_total_deadline(
    hostile_scan: HostileScan, hostile_lab: LabInfo
) -> None:
    # each read gets a byte within a second, so only a deadline on the whole exchange ends it
    endpoint = check_case(hostile_scan, hostile_lab, CASES["drip"])
    f = finding_of(endpoint, "handshake-timeout")
    assert f["details"]["phase"] == "tls"
    assert 1 <= f["details"]["received_bytes"] <= TIMEOUT + 1


# --- TLS ----------------------------------------------------------------------------------------------


def test_garbage_instead_of_server_hello(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = check_case(hostile_scan, hostile_lab, CASES["garbage"])
    f = finding_of(endpoint, "tls-handshake-failed")
    # a short hex excerpt and a guess, never Python's b'\xa5\xe9...'
    assert f["message"] == ("TLS handshake failed: the server does not speak TLS here: it sent hex "
                            "a5 e9 fd 2c fe 44 59 1d 54 2b 84 55 ... "
                            "(binary data of no protocol fedscan knows)")
    assert f["details"]["reason"] == "WRONG_VERSION_NUMBER"


@pytest.mark.parametrize(("label", "banner", "what"), [
    ("plaintext-sip", "'SIP/2.0 400 Bad Request'", "plaintext SIP"),
    ("plaintext-http", "'HTTP/1.1 400 Bad Request'", "plaintext HTTP"),
])
def test_plaintext_on_the_tls_port(hostile_scan: HostileScan, hostile_lab: LabInfo,
                                   label: str, banner: str, what: str) -> None:
    endpoint = check_case(hostile_scan, hostile_lab, CASES[label])
    f = finding_of(endpoint, "tls-handshake-failed")
    assert f["message"] == ("TLS handshake failed: the server does not speak TLS here: "
                            f"it sent {banner} ({what})")
    assert f["details"]["received"] == banner


def test_handshake_failure_alert(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = check_case(hostile_scan, hostile_lab, CASES["alert"])
    f = finding_of(endpoint, "tls-handshake-failed")
    assert f["details"]["alert"] == "handshake_failure"
    assert f["message"] == "TLS handshake failed: the server sent the alert handshake_failure"


def test_unrecognized_name_says_which_name(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    case = CASES["unknown-name"]
    endpoint = check_case(hostile_scan, hostile_lab, case)
    f = finding_of(endpoint, "tls-name-unrecognized")
    sni = f"sip.{case.domain}"  # SIP peers name the SRV target
    assert f["severity"] == "critical"
    assert f["details"] == {"alert": "unrecognized_name", "sni": sni}
    assert f["message"] == f"the server does not recognise the name {sni} (TLS alert unrecognized_name)"


def test_unrecognized_name_after_starttls_names_the_xmpp_domain(
    hostile_scan: HostileScan, hostile_lab: LabInfo
) -> None:
    case = CASES["unknown-name-xmpp"]
    endpoint = check_case(hostile_scan, hostile_lab, case)
    f = finding_of(endpoint, "tls-name-unrecognized")
    assert f["details"] == {"alert": "unrecognized_name", "sni": case.domain}  # XMPP peers name it


def test_a_warning_alert_is_not_the_reason_a_handshake_failed(
    hostile_scan: HostileScan, hostile_lab: LabInfo
) -> None:
    endpoint = check_case(hostile_scan, hostile_lab, CASES["warning-alert"])
    f = finding_of(endpoint, "tls-handshake-failed")
    assert f["details"]["alert"] is None  # the warning unrecognized_name is not blamed
    assert "unrecognized_name" not in f["message"]
    # ... and what arrived after it is said (the README's claim), not WRONG_VERSION_NUMBER
    assert f["message"].startswith("TLS handshake failed: the server does not speak TLS here: after a TLS "
                                   "alert, it sent hex ")


def test_client_certificate_required(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = check_case(hostile_scan, hostile_lab, CASES["mutual-tls"])
    assert finding_of(endpoint, "client-certificate-required")["severity"] == "warning"
    assert endpoint["certificate"] is not None  # the chain was still captured and judged


@pytest.mark.parametrize(("label", "how"), [("mutual-tls-drop", "closed"), ("mutual-tls-reset", "reset")])
def test_client_certificate_required_by_a_server_that_just_closes(
    hostile_scan: HostileScan, hostile_lab: LabInfo, label: str, how: str
) -> None:
    endpoint = check_case(hostile_scan, hostile_lab, CASES[label])
    f = finding_of(endpoint, "client-certificate-required")
    assert f["details"] == {"alert": None, "connection": how}
    assert f["message"] == (f"the server {how} the connection right after a handshake in which it "
                            "asked for a client certificate and got none (no alert, no session ticket)")
    assert endpoint["tls"]["version"] == "TLSv1.3" and endpoint["certificate"] is not None


@pytest.mark.parametrize("label", ["mutual-tls", "mutual-tls-drop"])
def test_client_certificate_required_then_satisfied_by_client_cert(
    capsys: pytest.CaptureFixture[str], hostile_lab: LabInfo, label: str
) -> None:
    domain = CASES[label].domain
    code = run(["scan", *hostile_lab.scan_args([domain]), *AT, "--format", "json",
                "--timeout", str(TIMEOUT), "--service", "sip-federation",
                "--client-cert", str(hostile_lab.client_cert), "--client-key", str(hostile_lab.client_key)])
    doc = json.loads(capsys.readouterr().out)
    (endpoint,) = doc["domains"][0]["endpoints"]
    # TLS accepts the certificate; the lab server then reads our OPTIONS and hangs up without
    # a SIP answer: only the acceptance probe's warning remains (issue 12)
    assert code == 1
    assert [f["code"] for f in endpoint["findings"]] == ["sip-no-response"]
    assert endpoint["tls"]["client_certificate_sent"] is True
    # no ticket, no alert, no answer: the partner's verdict is unknown, never "accepted"
    assert endpoint["acceptance"]["tls"] == {"verdict": "unknown", "evidence": "silence",
                                             "alert": None, "meaning": None}
    assert endpoint["acceptance"]["verdict"] == "unknown"


def test_hundred_certificate_chain(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = check_case(hostile_scan, hostile_lab, CASES["long-chain"])
    assert len(endpoint["chain"]) == 99  # every served certificate after the leaf, summarised
    untrusted = finding_of(endpoint, "chain-untrusted")
    assert untrusted["message"] == "the chain is longer than 8 certificates"
    assert endpoint["tls"]["version"] == "TLSv1.3"


def test_one_megabyte_certificate(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    # OpenSSL refuses a Certificate message over 100 KiB before reading it: bounded memory
    endpoint = check_case(hostile_scan, hostile_lab, CASES["big-cert"])
    f = finding_of(endpoint, "tls-handshake-failed")
    assert f["details"]["reason"] == "EXCESSIVE_MESSAGE_SIZE"
    assert "100 KiB" in f["message"]
    assert endpoint["certificate"] is None


def test_malformed_der_certificate(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    # served by a hand-written TLS 1.2 server (OpenSSL will not serve broken DER); the message
    # callback captures the Certificate message before OpenSSL rejects it, the verifier judges
    endpoint = check_case(hostile_scan, hostile_lab, CASES["bad-der"])
    unparseable = finding_of(endpoint, "certificate-unparseable")
    assert "not valid X.509 (its DER encoding does not parse" in unparseable["message"]
    assert "ParseError" not in unparseable["message"]  # the parser's text is in the details only
    failed = finding_of(endpoint, "tls-handshake-failed")["message"]
    assert failed == ("TLS handshake failed: what the server sent does not parse (malformed ASN.1: "
                      "usually a certificate that is not valid DER)")
    assert endpoint["certificate"] is None


def test_tls10_only_is_legacy(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = check_case(hostile_scan, hostile_lab, CASES["tls10"])
    assert endpoint["tls"]["version"] == "TLSv1"
    assert endpoint["certificate"] is not None


def test_garbage_on_direct_tls_xmpps(hostile_scan: HostileScan, hostile_lab: LabInfo) -> None:
    endpoint = check_case(hostile_scan, hostile_lab, CASES["garbage-xmpps"])
    f = finding_of(endpoint, "tls-handshake-failed")
    assert f["details"]["received"] == "hex " + "00 " * 11 + "00 ..."
    assert f["message"].endswith("(zero bytes)")
