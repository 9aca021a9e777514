"""Acceptance scans against the lab's partners: each case asserts the partner's exact verdict on
the certificate we present (issue 12), through the real CLI, DNS and TLS on loopback."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from scanner.cli import run
from scanner.lab.partners import (
    ACCEPTANCE_CASES,
    PARTNERS,
    AcceptanceCase,
    AcceptanceFiles,
    acceptance_files,
    partner_domains,
)
from scanner.lab.pki import LabPki
from scanner.lab.run import LabInfo, describe
from tests.conftest import all_codes as codes_of

AT = ["--at", "2030-01-01T00:00:00Z"]  # judging the partners' certificates; they judge ours by now


@pytest.fixture(scope="module")
def files(lab: LabInfo) -> AcceptanceFiles:
    """Our certificate as the lab makes it (PFX, PEM with key, variants), beside its PKI."""
    assert lab.certs is not None
    return acceptance_files(LabPki(lab.certs))


def present(files: AcceptanceFiles, what: str) -> list[str]:
    cert, key = files.present(what)
    if key is None:
        return ["--as-edge", str(cert), "--password", "fedscan"]
    return ["--client-cert", str(cert), "--client-key", str(key)]


def scan(capsys: pytest.CaptureFixture[str], lab: LabInfo, domains: list[str],
         *args: str) -> tuple[int, dict[str, Any]]:
    code = run(["scan", *lab.scan_args(domains), *AT, "--timeout", "5", "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)



def finding(endpoint: dict[str, Any], code: str) -> dict[str, Any]:
    return next(f for f in endpoint["findings"] if f["code"] == code)


def endpoint(doc: dict[str, Any], service: str) -> dict[str, Any]:
    return next(e for e in doc["domains"][0]["endpoints"] if e["service"] == service)


@pytest.mark.parametrize("case", ACCEPTANCE_CASES, ids=lambda c: f"{c.domain}:{c.present}")
def test_each_acceptance_case_finds_exactly_its_codes(capsys: pytest.CaptureFixture[str],
                                                      lab: LabInfo, case: AcceptanceCase,
        files: AcceptanceFiles) -> None:
    code, doc = scan(capsys, lab, [case.domain], *case.args(files))
    assert codes_of(doc["domains"][0]) == sorted(case.codes), case.story
    assert doc["status"] == case.status.name
    assert code == int(case.status)
    for e in doc["domains"][0]["endpoints"]:
        assert e["acceptance"] is not None
        if e["tls"] is not None:  # None when a TLS 1.2 partner refused us inside the handshake
            assert e["tls"]["client_certificate_sent"] is True


def test_accepted_by_a_verifying_partner_over_sip_and_xmpp(capsys: pytest.CaptureFixture[str],
                                                           lab: LabInfo, files: AcceptanceFiles) -> None:
    code, doc = scan(capsys, lab, ["adventureworks.test"], *present(files, "edge.pfx"))
    assert code == 0
    sip = endpoint(doc, "sip-federation")["acceptance"]
    assert sip["verdict"] == "accepted"
    assert sip["tls"]["verdict"] == "accepted"
    assert sip["sip"] == {"verdict": "accepted", "from": "contoso.test", "status": 200, "reason": "OK",
                          "provisional": [], "ms_diagnostics": None, "error": None}
    xmpp = endpoint(doc, "xmpp-server")["acceptance"]
    assert xmpp["xmpp"] == {"verdict": "accepted", "from": "contoso.test",
                            "sasl_external_offered": True, "dialback_offered": True,
                            "sasl": "success", "condition": None, "text": None, "error": None}
    assert sip["certificate_sha256"] == xmpp["certificate_sha256"]
    assert len(sip["certificate_sha256"]) == 64


@pytest.mark.parametrize(("cert", "alert"), [
    ("untrusted", "unknown_ca"),
    ("leaf-only", "unknown_ca"),
    ("expired", "certificate_expired"),
    ("serverauth-only", "unsupported_certificate"),
])
def test_tls13_rejection_names_the_alert_and_its_meaning(capsys: pytest.CaptureFixture[str], lab: LabInfo,
                                                        cert: str, alert: str,
        files: AcceptanceFiles) -> None:
    code, doc = scan(capsys, lab, ["adventureworks.test"], "--service", "sip-federation",
                     *present(files, cert))
    assert code == 2
    e = endpoint(doc, "sip-federation")
    f = finding(e, "client-certificate-rejected")
    assert f["severity"] == "critical"
    assert f["details"]["alert"] == alert
    assert f["details"]["phase"] == "after-handshake"
    assert f["details"]["tls_version"] == "TLSv1.3"
    assert alert in f["message"]
    assert e["tls"]["version"] == "TLSv1.3"  # the handshake itself completed: not a server fault
    assert e["acceptance"]["tls"]["verdict"] == "rejected"
    assert e["acceptance"]["tls"]["alert"] == alert
    assert e["acceptance"]["sip"] is None  # nothing was sent into a refused connection
    assert not any(x["code"] == "tls-handshake-failed" for x in e["findings"])


def test_unknown_ca_says_trust_or_intermediate(capsys: pytest.CaptureFixture[str], lab: LabInfo,
        files: AcceptanceFiles) -> None:
    _, doc = scan(capsys, lab, ["margiestravel.test"], *present(files, "edge.pfx"))
    f = finding(endpoint(doc, "sip-federation"), "client-certificate-rejected")
    assert f["details"]["meaning"] == ("the partner does not trust our issuing CA, or we did not send "
                                       "the intermediate certificate")


def test_tls12_rejection_is_inside_the_handshake_never_a_handshake_failure(
        capsys: pytest.CaptureFixture[str], lab: LabInfo, files: AcceptanceFiles) -> None:
    code, doc = scan(capsys, lab, ["humongous.test"], *present(files, "expired"))
    assert code == 2
    e = endpoint(doc, "sip-federation")
    assert [f["code"] for f in e["findings"]] == ["client-certificate-rejected"]
    f = e["findings"][0]
    assert f["details"]["alert"] == "certificate_expired"
    assert f["details"]["phase"] == "handshake"
    assert e["acceptance"]["tls"] == {"verdict": "rejected", "evidence": "alert",
                                      "alert": "certificate_expired",
                                      "meaning": f["details"]["meaning"]}


def test_tls12_partner_accepting_us_answers_options(capsys: pytest.CaptureFixture[str], lab: LabInfo,
        files: AcceptanceFiles) -> None:
    code, doc = scan(capsys, lab, ["humongous.test"], *present(files, "edge.pfx"))
    assert code == 0
    acceptance = endpoint(doc, "sip-federation")["acceptance"]
    assert acceptance["tls"]["evidence"] == "handshake"
    assert acceptance["sip"]["status"] == 200


def test_sip_403_with_ms_diagnostics(capsys: pytest.CaptureFixture[str], lab: LabInfo,
        files: AcceptanceFiles) -> None:
    code, doc = scan(capsys, lab, ["wideworldimporters.test"], *present(files, "edge.pfx"))
    assert code == 2
    e = endpoint(doc, "sip-federation")
    f = finding(e, "sip-options-refused")
    assert f["severity"] == "critical"
    assert (f["details"]["status"], f["details"]["reason"]) == (403, "Forbidden")
    diag = {"code": 1034, "reason": "Previous hop federated peer did not report diagnostic information",
            "source": "sip.wideworldimporters.test"}
    assert f["details"]["ms_diagnostics"] == diag
    assert "ms-diagnostics 1034" in f["message"] and "from sip.wideworldimporters.test" in f["message"]
    assert e["acceptance"]["sip"]["ms_diagnostics"] == diag
    assert e["acceptance"]["tls"]["verdict"] == "accepted"
    assert e["acceptance"]["verdict"] == "refused"


def test_sip_from_is_our_sip_domain(capsys: pytest.CaptureFixture[str], lab: LabInfo,
        files: AcceptanceFiles) -> None:
    """wideworldimporters.test federates with fabrikam.test only: the same certificate, our other domain."""
    code, doc = scan(capsys, lab, ["wideworldimporters.test"], *present(files, "edge.pfx"),
                     "--sip-domain", "fabrikam.test")
    assert code == 0
    assert endpoint(doc, "sip-federation")["acceptance"]["sip"]["from"] == "fabrikam.test"
    # --sip-domain says who we are: the partner's certificate is not judged against our names
    assert not any(f["code"] == "san-missing" for f in endpoint(doc, "sip-federation")["findings"])


def test_dialback_only_partner_is_a_warning(capsys: pytest.CaptureFixture[str], lab: LabInfo,
        files: AcceptanceFiles) -> None:
    code, doc = scan(capsys, lab, ["blueyonder.test"], *present(files, "edge.pfx"),
                     "--service", "xmpp-server")
    assert code == 1
    f = finding(endpoint(doc, "xmpp-server"), "xmpp-cert-auth-refused")
    assert f["severity"] == "warning"
    assert f["details"]["sasl_external_offered"] is False
    assert f["details"]["dialback_offered"] is True


def test_sasl_external_fails_when_the_certificate_does_not_cover_our_domain(
        capsys: pytest.CaptureFixture[str], lab: LabInfo, files: AcceptanceFiles) -> None:
    code, doc = scan(capsys, lab, ["adventureworks.test"], "--service", "xmpp-server",
                     *present(files, "client"),
                     "--from-domain", "contoso.test")
    assert code == 1
    xmpp = endpoint(doc, "xmpp-server")["acceptance"]["xmpp"]
    assert (xmpp["sasl"], xmpp["condition"], xmpp["text"]) == (
        "failure", "not-authorized", "the certificate does not cover contoso.test")
    f = finding(endpoint(doc, "xmpp-server"), "xmpp-cert-auth-refused")
    assert f["severity"] == "warning"  # adventureworks also offers dialback


def test_serverauth_only_certificate_is_presented_with_a_warning(
        capsys: pytest.CaptureFixture[str], lab: LabInfo, files: AcceptanceFiles) -> None:
    code = run(["scan", *lab.scan_args(["adventureworks.test"]), *AT, "--service", "sip-federation",
                *present(files, "serverauth-only")])
    captured = capsys.readouterr()
    assert code == 2
    assert "has no Client Authentication EKU; it is presented anyway" in captured.err
    assert "client-certificate-no-client-auth" in captured.out
    assert "TLS rejected (alert unsupported_certificate)" in captured.out


def test_pem_with_key_and_chain_is_presented_like_the_pfx(capsys: pytest.CaptureFixture[str], lab: LabInfo,
                                                          tmp_path: Path, files: AcceptanceFiles) -> None:
    code, doc = scan(capsys, lab, ["adventureworks.test"], "--as-edge", str(files.dir / "edge-with-key.pem"))
    assert code == 0
    assert endpoint(doc, "sip-federation")["acceptance"]["verdict"] == "accepted"


def test_table_shows_the_verdict_under_the_row(capsys: pytest.CaptureFixture[str], lab: LabInfo,
        files: AcceptanceFiles) -> None:
    run(["scan", *lab.scan_args(["wideworldimporters.test"]), *AT, *present(files, "edge.pfx")])
    out = capsys.readouterr().out
    assert ("partner's verdict on our certificate: REFUSED; TLS accepted (application-data); "
            "SIP OPTIONS as contoso.test: 403 Forbidden (ms-diagnostics 1034)") in out


def test_without_our_certificate_nothing_changes(capsys: pytest.CaptureFixture[str], lab: LabInfo) -> None:
    code, doc = scan(capsys, lab, ["adventureworks.test"], "--service", "sip-federation")
    e = endpoint(doc, "sip-federation")
    assert e["acceptance"] is None
    assert [f["code"] for f in e["findings"]] == ["client-certificate-required"]
    assert code == 1


def test_endpoint_by_address_with_sni_without_dns(capsys: pytest.CaptureFixture[str], lab: LabInfo,
        files: AcceptanceFiles) -> None:
    port = lab.ports["adventureworks.test-sip"]
    code = run(["scan", "--endpoint", f"sip-federation={lab.net}.30:{port}",
                "--sni", "sip.adventureworks.test",
                "--ca-file", str(lab.ca_file), *AT, "--format", "json",
                *present(files, "edge.pfx")])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    (domain,) = doc["domains"]
    assert domain["domain"] == "sip.adventureworks.test"
    assert domain["services"] == []
    (e,) = domain["endpoints"]
    assert (e["service"], e["target"], e["address"], e["port"]) == (
        "sip-federation", "sip.adventureworks.test", f"{lab.net}.30", port)
    assert e["coverage"][0]["name"] == "sip.adventureworks.test"
    assert e["acceptance"]["sip"]["status"] == 200


def test_endpoint_by_name_resolves_it(capsys: pytest.CaptureFixture[str], lab: LabInfo,
        files: AcceptanceFiles) -> None:
    port = lab.ports["adventureworks.test-xmpp"]
    code = run(["scan", "--endpoint", f"xmpp-server=sip.adventureworks.test:{port}",
                "--sni", "adventureworks.test",
                "--nameserver", lab.nameserver, "--ca-file", str(lab.ca_file), *AT, "--format", "json",
                *present(files, "edge.pfx")])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    (e,) = doc["domains"][0]["endpoints"]
    assert (e["xmpp_domain"], e["address"]) == ("adventureworks.test", f"{lab.net}.30")
    assert e["acceptance"]["xmpp"]["sasl"] == "success"


def test_fedscan_lab_lists_every_acceptance_case(lab: LabInfo, files: AcceptanceFiles) -> None:
    text = describe(lab)
    for case in ACCEPTANCE_CASES:
        assert shlex.join(["fedscan", "scan", *lab.scan_args([case.domain]), *case.args(files)]) in text
        assert f"# {case.domain}: {case.story} -> {case.status.name}" in text


# --- [acceptance] in the config: monitor (history) and readiness ---------------------------------


def acceptance_config(tmp_path: Path, lab: LabInfo, cert: Path, key: Path | None = None) -> Path:
    key_line = f'key = "{key}"\n' if key else ""
    body = (
        '[deployment]\nsip_domains = ["contoso.test"]\nxmpp_domains = ["contoso.test"]\n'
        'extra_sans = ["webcon.contoso.test"]\n'
        '[[partner]]\ndomain = "adventureworks.test"\n'
        '[[partner]]\ndomain = "northwind.test"\n'
        f'[acceptance]\ncertificate = "{cert}"\n{key_line}partners = ["adventureworks.test"]\n'
        f'[scan]\nnameservers = ["{lab.nameserver}"]\nca_file = "{lab.ca_file}"\ntimeout = 5\n'
    )
    path = tmp_path / "fedscan.toml"
    path.write_text(body)
    return path


def test_monitor_history_says_the_partner_stopped_accepting_our_certificate(
        capsys: pytest.CaptureFixture[str], lab: LabInfo, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, files: AcceptanceFiles) -> None:
    monkeypatch.setenv("FEDSCAN_PFX_PASSWORD", "fedscan")
    history = tmp_path / "history.jsonl"
    good = acceptance_config(tmp_path, lab, files.pfx)
    run(["monitor", "--config", str(good), *AT, "--history", str(history), "--format", "json"])
    first = json.loads(capsys.readouterr().out)
    partner = next(d for d in first["domains"] if d["domain"] == "adventureworks.test")
    assert {e["acceptance"]["verdict"] for e in partner["endpoints"]} == {"accepted"}
    northwind = next(d for d in first["domains"] if d["domain"] == "northwind.test")
    assert {e["acceptance"] is None for e in northwind["endpoints"]} == {True}  # not listed

    # the renewal came back without the intermediate: the partner now answers unknown_ca
    bad = acceptance_config(tmp_path, lab, *files.present("leaf-only"))
    code = run(["monitor", "--config", str(bad), *AT, "--history", str(history)])
    out = capsys.readouterr().out
    assert code == 2
    lost = [line for line in out.splitlines() if "stopped accepting our certificate" in line]
    assert len(lost) == 2, out  # SIP and XMPP
    assert all("partner adventureworks.test stopped accepting our certificate on sip.adventureworks.test"
               in line and "client-certificate-rejected" in line for line in lost), lost
    record = json.loads(history.read_text().splitlines()[-1])
    assert {v["accepted"] for k, v in record["endpoints"].items()
            if k.startswith("adventureworks.test/")} == {"refused"}


def test_acceptance_config_errors_are_one_line(capsys: pytest.CaptureFixture[str], lab: LabInfo,
                                               tmp_path: Path, files: AcceptanceFiles) -> None:
    path = acceptance_config(tmp_path, lab, files.pfx)
    path.write_text(path.read_text().replace('partners = ["adventureworks.test"]',
                                             'partners = ["wideworldimporters.test"]'))
    assert run(["check-config", str(path)]) == 3
    assert capsys.readouterr().err == (
        "fedscan: error: fedscan.toml: acceptance.partners[0]: wideworldimporters.test is not a [[partner]] "
        "domain\n")


def test_acceptance_wrong_password_in_the_environment_is_exit_3(
        capsys: pytest.CaptureFixture[str], lab: LabInfo, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, files: AcceptanceFiles) -> None:
    monkeypatch.setenv("FEDSCAN_PFX_PASSWORD", "wrong")
    path = acceptance_config(tmp_path, lab, files.pfx)
    assert run(["monitor", "--config", str(path), *AT]) == 3
    assert capsys.readouterr().err == (
        f"fedscan: error: {files.pfx}: wrong PFX password (or not a PFX/PEM file)\n")


def test_readiness_has_an_accepted_by_section(capsys: pytest.CaptureFixture[str], lab: LabInfo,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        files: AcceptanceFiles) -> None:
    monkeypatch.setenv("FEDSCAN_PFX_PASSWORD", "fedscan")
    path = acceptance_config(tmp_path, lab, files.pfx)
    run(["readiness", "--config", str(path), *AT])
    text = capsys.readouterr().out
    section = text.split("## Accepted by", 1)[1].split("\n## ", 1)[0]
    assert "| adventureworks.test | sip-federation |" in section
    assert "| adventureworks.test | xmpp-server |" in section
    assert section.count("| accepted |") == 2
    assert "northwind.test" not in section
    assert "not accepted by" not in text  # both partner endpoints accepted us


def test_partners_without_our_certificate_require_one(capsys: pytest.CaptureFixture[str],
                                                      lab: LabInfo) -> None:
    code, doc = scan(capsys, lab, [p.domain for p in PARTNERS])
    by_domain = {d["domain"]: d for d in doc["domains"]}
    for expected in partner_domains():
        assert codes_of(by_domain[expected.domain]) == sorted(expected.codes), expected.domain
        assert by_domain[expected.domain]["status"] == expected.status.name
    assert code == 1


def test_readiness_refused_by_a_partner_is_not_ready_with_the_remedy(
        capsys: pytest.CaptureFixture[str], lab: LabInfo, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, files: AcceptanceFiles) -> None:
    monkeypatch.setenv("FEDSCAN_PFX_PASSWORD", "fedscan")
    path = acceptance_config(tmp_path, lab, files.pfx)
    path.write_text(path.read_text().replace('[[partner]]\ndomain = "northwind.test"\n',
                                             '[[partner]]\ndomain = "wideworldimporters.test"\n')
                    .replace('partners = ["adventureworks.test"]',
                             'partners = ["adventureworks.test", "wideworldimporters.test"]'))
    assert run(["readiness", "--config", str(path), *AT]) == 2
    text = capsys.readouterr().out
    assert "**NOT READY** (CRITICAL)" in text and "not accepted by wideworldimporters.test" in text
    remediation = text.split("## Remediation", 1)[1]
    assert "### CRITICAL: sip-options-refused" in remediation
    assert "wideworldimporters.test sip-federation sip.wideworldimporters.test" in remediation
