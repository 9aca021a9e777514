"""DANE end to end: the lab signs its zones, a real unbound validates, fedscan asks unbound.

Each lab domain of :func:`scanner.lab.dane.dane_world` is one situation (secure match, key
changed under a stale TLSA, unusable records, unsigned zone, broken signature, no TLSA, the
XMPP no-SRV fallback); each test asserts the exact finding an administrator relies on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from scanner.cli import run
from scanner.lab.dane import dane_world
from scanner.lab.pki import LabPki
from scanner.lab.run import LabInfo
from scanner.lab.thread import lab_in_thread
from tests.conftest import all_codes, lab_net
from tests.dane_env import unbound_for

NET = lab_net(16)


@pytest.fixture(scope="module")
def dane_lab() -> Iterator[LabInfo]:
    with lab_in_thread(net=NET, world=dane_world()) as info:
        yield info


@pytest.fixture(scope="module")
def resolver(dane_lab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with unbound_for(dane_lab, tmp_path_factory.mktemp("unbound")) as address:
        yield address


@pytest.fixture(scope="module")
def report(dane_lab: LabInfo, resolver: str) -> dict[str, Any]:
    return scan(dane_lab, "--dnssec-resolver", resolver)


def scan(lab: LabInfo, *args: str, domains: list[str] | None = None) -> dict[str, Any]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run(["scan", *lab.scan_args(domains), "--format", "json", *args])
    doc: dict[str, Any] = json.loads(out.getvalue())
    doc["_exit"] = code
    return doc


def endpoint(report: dict[str, Any], domain: str, service: str) -> dict[str, Any]:
    [d] = [d for d in report["domains"] if d["domain"] == domain]
    [e] = [e for e in d["endpoints"] if e["service"] == service]
    found: dict[str, Any] = e
    return found


def dane_findings(e: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in e["findings"] if f["code"].startswith("dane-") or f["code"] == "dns-error"]


def spki_311(lab: LabInfo, stem: str) -> str:
    """The 3 1 1 record of a lab certificate (the lab makes its PKI: nothing is hard-coded)."""
    assert lab.certs is not None
    cert = x509.load_pem_x509_certificates(LabPki(lab.certs).chain(stem).read_bytes())[0]
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "3 1 1 " + hashlib.sha256(spki).hexdigest()



def test_every_dane_lab_domain_reports_exactly_its_findings(
    report: dict[str, Any], dane_lab: LabInfo
) -> None:
    by_domain = {d["domain"]: d for d in report["domains"]}
    for expected in dane_lab.domains:
        got = by_domain[expected.domain]
        assert (expected.domain, all_codes(got)) == (expected.domain, sorted(expected.codes))
        assert (expected.domain, got["status"]) == (expected.domain, expected.status.name)
    assert report["_exit"] == 2


def test_secure_dane_ee_match(report: dict[str, Any], dane_lab: LabInfo) -> None:
    e = endpoint(report, "contoso.test", "sip-federation")
    [f] = dane_findings(e)
    assert f["code"] == "dane-ok" and f["severity"] == "info"
    assert "TLSA DANE-EE(3) SPKI(1) SHA2-256(1) matches the leaf certificate" in f["message"]
    dane = e["dane"]
    assert dane["status"] == "match"
    assert dane["dnssec"] == "secure" and dane["srv_dnssec"] == "secure"
    assert dane["tlsa_name"] == f"_{e['port']}._tcp.sip.contoso.test"
    assert dane["records"][0]["record"] == spki_311(dane_lab, "edge")


def test_secure_dane_ta_matches_the_served_intermediate(report: dict[str, Any]) -> None:
    [f] = dane_findings(endpoint(report, "contoso.test", "xmpp-server"))
    assert f["code"] == "dane-ok"
    assert "DANE-TA(2) Cert(0) SHA2-256(1) matches the issuer certificate 1" in f["message"]


def test_key_change_under_a_stale_tlsa_is_critical(report: dict[str, Any], dane_lab: LabInfo) -> None:
    e = endpoint(report, "fabrikam.test", "sip-federation")
    [f] = dane_findings(e)
    assert (f["code"], f["severity"]) == ("dane-mismatch", "critical")
    assert f["details"]["published"] == [spki_311(dane_lab, "lab/edge-previous")]  # the old key
    assert f["details"]["served"] == spki_311(dane_lab, "edge")  # what to publish now
    assert "DANE-validating peers refuse the connection" in f["message"]
    assert e["status"] == "CRITICAL" and e["dane"]["status"] == "mismatch"


def test_unusable_records_beside_a_good_one(report: dict[str, Any]) -> None:
    e = endpoint(report, "fabrikam.test", "xmpp-server")
    assert [f["code"] for f in dane_findings(e)] == ["dane-partial", "dane-ok"]
    partial = dane_findings(e)[0]
    assert [u["problem"] for u in partial["details"]["unusable"]] == [
        "unknown matching type 9", "unknown certificate usage 7",
    ]
    assert e["status"] == "WARNING"


def test_tlsa_in_an_unsigned_zone_is_ignored_by_peers(report: dict[str, Any]) -> None:
    e = endpoint(report, "northwind.test", "sip-federation")
    [f] = dane_findings(e)
    assert (f["code"], f["severity"]) == ("dane-insecure", "warning")
    assert "DANE peers ignore it" in f["message"]
    assert e["dane"]["dnssec"] == "insecure" and e["dane"]["srv_dnssec"] == "insecure"
    # the record would match: insecure is about DNSSEC, not about the key
    assert e["dane"]["records"][0]["matched"] == "leaf certificate"


def test_bogus_signature_is_dns_error_never_ok(report: dict[str, Any]) -> None:
    e = endpoint(report, "tailspin.test", "sip-federation")
    [f] = dane_findings(e)
    assert (f["code"], f["severity"]) == ("dns-error", "unknown")
    assert "SERVFAIL from the validating resolver" in f["message"]
    assert f["details"]["rdtype"] == "TLSA"
    assert e["dane"]["status"] == "error" and e["dane"]["dnssec"] == "bogus"
    assert e["dane"]["records"] == []


def test_signed_zone_without_tlsa_is_proven_absent(report: dict[str, Any]) -> None:
    e = endpoint(report, "proseware.test", "sip-federation")
    assert dane_findings(e) == []
    # unbound validated the NSEC denial: "no TLSA" is itself DNSSEC-secure
    assert e["dane"]["status"] == "no-tlsa" and e["dane"]["dnssec"] == "secure"
    assert e["status"] == "OK"


def test_xmpp_fallback_tlsa_lives_at_5269_of_the_domain(report: dict[str, Any]) -> None:
    e = endpoint(report, "fourthcoffee.test", "xmpp-server")
    assert e["dane"]["tlsa_name"] == "_5269._tcp.fourthcoffee.test"
    assert e["dane"]["srv_name"] is None
    assert [f["code"] for f in dane_findings(e)] == ["dane-ok"]
    [sha512] = dane_findings(endpoint(report, "fourthcoffee.test", "sip-federation"))
    assert "DANE-EE(3) Cert(0) SHA2-512(2)" in sha512["message"]


def test_a_resolver_that_does_not_validate_never_gives_ok(dane_lab: LabInfo) -> None:
    # the lab's own authoritative server sets no AD bit: declared "validating", it proves
    # nothing, so every published TLSA is insecure and no endpoint gets dane-ok
    doc = scan(dane_lab, "--dnssec-resolver", dane_lab.nameserver,
               domains=["contoso.test", "tailspin.test"])
    codes = [c for d in doc["domains"] for c in all_codes(d)]
    assert "dane-ok" not in codes
    assert codes.count("dane-insecure") == 3


def test_without_a_validating_resolver_dane_is_not_checked(
    dane_lab: LabInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = scan(dane_lab, domains=["fabrikam.test"])
    e = endpoint(doc, "fabrikam.test", "sip-federation")
    assert e["dane"]["status"] == "not-checked" and e["dane"]["checked"] is False
    assert dane_findings(e) == []  # a stale TLSA cannot be judged without DNSSEC
    run(["scan", *dane_lab.scan_args(["fabrikam.test"]), "--service", "sip-federation"])
    out = capsys.readouterr().out
    assert "DANE: not checked (no validating resolver declared: give --dnssec-resolver)" in out


def test_table_names_the_tlsa_verdict(dane_lab: LabInfo, resolver: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["scan", *dane_lab.scan_args(["proseware.test", "fabrikam.test"]),
                "--service", "sip-federation", "--dnssec-resolver", resolver])
    out = capsys.readouterr().out
    assert code == 2
    assert "DANE  no TLSA at _" in out and "._tcp.sip.proseware.test (DANE not in use)" in out
    assert "dane-mismatch" in out


def test_bad_dnssec_resolver_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(["scan", "contoso.test", "--dnssec-resolver", "resolver.example"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("fedscan: error: ") and "is not an IP address" in err
    assert err.count("\n") == 1


def renewal(lab: LabInfo, resolver: str, stem: str, *domains: str) -> tuple[int, list[dict[str, Any]]]:
    import contextlib
    import io

    assert lab.certs is not None
    dane = [a for d in domains for a in ("--dane", d)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run(["cert", str(LabPki(lab.certs).chain(stem)), "--ca-file", str(lab.ca_file), *dane,
                    "--dnssec-resolver", resolver, "--format", "json"])
    findings: list[dict[str, Any]] = json.loads(out.getvalue())["files"][0]["findings"]
    return code, [f for f in findings if f["code"].startswith("dane-") or f["code"] == "dns-error"]


def test_renewal_with_a_new_key_says_publish_first_then_rotate(dane_lab: LabInfo, resolver: str) -> None:
    # contoso.test's SIP TLSA names the key of "edge": a renewal onto another key breaks it
    code, found = renewal(dane_lab, resolver, "lab/edge-previous", "contoso.test")
    assert code == 2
    mismatch = [f for f in found if f["code"] == "dane-mismatch"]
    assert len(mismatch) == 1
    assert mismatch[0]["details"]["publish"] == spki_311(dane_lab, "lab/edge-previous")
    assert "beside the current record now, wait two TTLs, install" in mismatch[0]["message"]
    # the DANE-TA record of the issuing CA survives any key from the same CA
    assert [f["code"] for f in found if "DANE-TA(2)" in f["message"]] == ["dane-ok"]


def test_renewal_keeping_the_key_still_matches(dane_lab: LabInfo, resolver: str) -> None:
    code, found = renewal(dane_lab, resolver, "edge", "contoso.test")
    assert code == 0
    assert [f["code"] for f in found] == ["dane-ok", "dane-ok"]


def test_renewal_check_needs_a_validating_resolver(capsys: pytest.CaptureFixture[str],
                                                  dane_lab: LabInfo) -> None:
    assert dane_lab.certs is not None
    assert run(["cert", str(LabPki(dane_lab.certs).chain("edge")), "--dane", "contoso.test"]) == 3
    assert capsys.readouterr().err == (
        "fedscan: error: --dane needs --dnssec-resolver IP[:PORT]: only a validating resolver's "
        "answer says whether peers use the TLSA\n")


def dane_config(path: Path, lab: LabInfo, resolver: str | None) -> Path:
    line = f'dnssec_resolver = "{resolver}"\n' if resolver else ""
    path.write_text('[deployment]\nsip_domains = ["contoso.test", "fabrikam.test"]\n'
                    'xmpp_domains = ["contoso.test", "fabrikam.test"]\n'
                    'extra_sans = ["webcon.contoso.test"]\n'
                    f'\n[scan]\nnameservers = ["{lab.nameserver}"]\nca_file = "{lab.ca_file}"\n{line}')
    return path


def test_readiness_has_a_dane_section(dane_lab: LabInfo, resolver: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = dane_config(tmp_path / "fedscan.toml", dane_lab, resolver)
    md = tmp_path / "ready.md"
    assert run(["readiness", "--config", str(cfg), "--markdown", str(md)]) == 2
    capsys.readouterr()
    section = md.read_text().split("## DANE\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "TLSA |" not in line]
    assert len(rows) == 4  # contoso SIP + XMPP, fabrikam SIP + XMPP
    assert sum("| CRITICAL | MISMATCH" in r for r in rows) == 1
    assert any("fabrikam.test sip-federation" in r and "CRITICAL" in r for r in rows)
    assert sum("| OK | ok: DANE-" in r for r in rows) == 2
    # the XMPP record set matches but carries unusable records: the row says so, as a warning
    assert sum("| WARNING | ok: DANE-EE(3)" in r and "unusable (dane-partial)" in r for r in rows) == 1


def test_readiness_without_a_resolver_says_dane_was_not_checked(
    dane_lab: LabInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = dane_config(tmp_path / "fedscan.toml", dane_lab, None)
    md = tmp_path / "ready.md"
    run(["readiness", "--config", str(cfg), "--markdown", str(md)])
    capsys.readouterr()
    assert "## DANE\n\nDANE not checked: no validating resolver declared" in md.read_text()


def test_readiness_cert_checks_the_renewal_against_published_tlsa(
    dane_lab: LabInfo, resolver: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dane_lab.certs is not None
    cfg = dane_config(tmp_path / "fedscan.toml", dane_lab, resolver)
    md = tmp_path / "ready.md"
    new = LabPki(dane_lab.certs).chain("lab/edge-previous")
    assert run(["readiness", "--config", str(cfg), "--cert", str(new), "--markdown", str(md)]) == 2
    capsys.readouterr()
    text = md.read_text()
    section = text.split("## DANE\n", 1)[1].split("\n## ", 1)[0]
    assert "will not match this key" in section  # contoso.test's SIP TLSA names the old key
    assert "### CRITICAL: dane-mismatch" in text


def test_monitor_exports_the_dane_gauge(dane_lab: LabInfo, resolver: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = dane_config(tmp_path / "fedscan.toml", dane_lab, resolver)
    prom = tmp_path / "fedscan.prom"
    run(["monitor", "--config", str(cfg), "--prometheus-textfile", str(prom)])
    capsys.readouterr()
    lines = [line for line in prom.read_text().splitlines() if line.startswith("fedscan_dane_status{")]
    by_place = {(line.split('domain="')[1].split('"')[0], line.split('service="')[1].split('"')[0]):
                line.rsplit(" ", 1)[1] for line in lines}
    assert by_place == {("contoso.test", "sip-federation"): "0", ("contoso.test", "xmpp-server"): "0",
                        ("fabrikam.test", "sip-federation"): "2", ("fabrikam.test", "xmpp-server"): "0"}


async def test_a_silent_validating_resolver_is_dns_error_within_its_deadline() -> None:
    import socket

    import trio

    from scanner.dane import assess
    from scanner.dane_dns import DaneResolver
    from scanner.tlsa import Security

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind(("127.0.0.1", 0))
        resolver = DaneResolver(silent.getsockname(), timeout=0.5)
        with trio.fail_after(3):
            answer = await resolver.tlsa("_5061._tcp.sip.contoso.test")
    assert answer.security is Security.ERROR
    assert answer.reason.startswith("no answer from 127.0.0.1:")
    [f] = assess(answer, (), pkix_valid=False).findings
    assert (f.code, f.severity) == ("dns-error", "unknown")
