"""`fedscan monitor`: suppressions (pure), the two views in one run, cron silence, exit codes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from scanner.cli import run
from scanner.config_model import Suppression
from scanner.findings import Finding, Status, finding
from scanner.lab.run import LabInfo
from scanner.monitor import MonitorResult, apply_suppressions, render_text
from scanner.results import DomainResult, EndpointResult, ScanReport, ServiceResult
from scanner.srv import Endpoint
from tests.conftest import cert_summary

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
AT = ["--at", "2030-01-01T00:00:00Z"]


# ------------------------------------------------------------------------ builders (shared)


def endpoint(
    domain: str,
    findings: Sequence[Finding] = (),
    *,
    service: str = "sip-federation",
    target: str | None = None,
    address: str = "192.0.2.10",
    sha256: str | None = "aa" * 32,
    not_after: str = "2030-03-02T00:00:00Z",
) -> EndpointResult:
    ep = Endpoint(domain, service, target or f"sip.{domain}", 5061, address, 0, 0, None)
    cert = None if sha256 is None else cert_summary(
        sha256=sha256, not_after=not_after, subject=f"CN={ep.target}", subject_cns=(ep.target,),
    )
    return EndpointResult(ep, tuple(findings), None, cert, (), (), {})


def report(*domains: DomainResult, now: dt.datetime = NOW) -> ScanReport:
    return ScanReport(started=now, evaluated_at=now, domains=list(domains), finished=now)


def domain(name: str, *endpoints: EndpointResult, dns: Sequence[Finding] = ()) -> DomainResult:
    services = [ServiceResult("sip-federation", (), tuple(dns), False)]
    return DomainResult(name, services, list(endpoints))


def write_config(path: Path, lab: LabInfo, body: str) -> Path:
    path.write_text(body + f'\n[scan]\nnameservers = ["{lab.nameserver}"]\nca_file = "{lab.ca_file}"\n')
    return path


OWN = """
[deployment]
sip_domains = ["contoso.test", "fabrikam.test"]
xmpp_domains = ["contoso.test", "fabrikam.test"]
extra_sans = ["webcon.contoso.test"]
"""


# ------------------------------------------------------------------------ suppressions (pure)


def test_suppressed_finding_leaves_the_status_but_is_listed_with_its_reason() -> None:
    expired = finding("expired", "the certificate expired")
    raw = report(domain("litware.test", endpoint("litware.test", [expired])))
    rule = Suppression("expired", "decommissioned next week", dt.date(2030, 1, 1), "partner[0].suppress[0]")
    filtered, hidden = apply_suppressions(raw, {"litware.test": [rule]}, dt.date(2030, 1, 1))
    assert raw.status is Status.CRITICAL
    assert filtered.status is Status.OK
    assert [(s.domain, s.finding.code, s.suppression.reason) for s in hidden] == [
        ("litware.test", "expired", "decommissioned next week")
    ]
    assert hidden[0].to_json()["until"] == "2030-01-01"


def test_expired_suppression_hides_nothing_and_warns_naming_code_and_domain() -> None:
    expired = finding("expired", "the certificate expired")
    raw = report(domain("litware.test", endpoint("litware.test", [expired])))
    rule = Suppression("expired", "they promised", dt.date(2029, 12, 31), "partner[0].suppress[0]")
    filtered, hidden = apply_suppressions(raw, {"litware.test": [rule]}, dt.date(2030, 1, 1))
    assert hidden == []
    assert filtered.status is Status.CRITICAL
    lapsed = filtered.domains[0].findings
    assert [(f.code, f.severity.value) for f in lapsed] == [("suppression-expired", "warning")]
    assert lapsed[0].message == (
        "the suppression of expired for litware.test lapsed after 2029-12-31 (they promised)"
    )
    assert lapsed[0].details["suppressed_code"] == "expired"
    assert lapsed[0].details["domain"] == "litware.test"


def test_suppression_applies_to_dns_findings_and_only_its_domain() -> None:
    missing = finding("srv-missing", "no SRV record")
    raw = report(domain("a.test", dns=[missing]), domain("b.test", dns=[missing]))
    rule = Suppression("srv-missing", "SIP not used", None, "partner[0].suppress[0]")
    filtered, hidden = apply_suppressions(raw, {"a.test": [rule]}, dt.date(2030, 1, 1))
    assert [d.status for d in filtered.domains] == [Status.OK, Status.CRITICAL]
    assert len(hidden) == 1 and hidden[0].endpoint is None


def test_text_output_is_silent_when_all_is_well() -> None:
    ok = MonitorResult(report(domain("a.test", endpoint("a.test"))))
    assert render_text(ok, verbose=False) == ""
    assert render_text(ok, verbose=True).endswith(
        "Overall: OK — 1 endpoint of 1 domain: 1 OK\n"  # the same summary line as scan and merge
    )


# ------------------------------------------------------------------------ against the lab


def test_monitor_is_silent_and_exits_0_for_a_healthy_deployment(
    tmp_path: Path, lab: LabInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path / "fedscan.toml", lab, OWN)
    assert run(["monitor", "--config", str(cfg), *AT]) == 0
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", "")


def test_own_edge_identities_apply_only_to_deployment_domains(
    tmp_path: Path, lab: LabInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    # northwind as a partner: its SIP endpoint is fine for *its* names; only XMPP lacks its domain.
    cfg = write_config(tmp_path / "fedscan.toml", lab, OWN + '[[partner]]\ndomain = "northwind.test"\n')
    assert run(["monitor", "--config", str(cfg), *AT, "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    by_domain = {d["domain"]: d for d in doc["domains"]}
    assert list(by_domain) == ["contoso.test", "fabrikam.test", "northwind.test"]
    northwind = {
        e["service"]: [f["code"] for f in e["findings"]] for e in by_domain["northwind.test"]["endpoints"]
    }
    assert northwind == {"sip-federation": [], "xmpp-server": ["san-missing"]}
    contoso_sip = by_domain["contoso.test"]["endpoints"][0]
    assert sorted(c["name"] for c in contoso_sip["coverage"]) == [
        "contoso.test", "fabrikam.test", "sip.contoso.test", "sip.fabrikam.test", "webcon.contoso.test",
    ]
    assert doc["monitor"]["changes"] == [] and doc["monitor"]["suppressed"] == []
    assert doc["endpoint_counts"] == {"OK": 9, "WARNING": 0, "CRITICAL": 1, "UNKNOWN": 0}


def test_suppressions_from_the_config_in_a_real_run(
    tmp_path: Path, lab: LabInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (
        '[[partner]]\ndomain = "northwind.test"\nservices = ["sip-federation", "xmpp-server"]\n'
        '[[partner.suppress]]\ncode = "san-missing"\nreason = "XMPP goes away in March"\nuntil = 2030-03-31\n'
        '[[partner]]\ndomain = "litware.test"\nservices = ["sip-federation"]\n'
        '[[partner.suppress]]\ncode = "expired"\nreason = "they promised"\nuntil = 2029-12-31\n'
    )
    cfg = write_config(tmp_path / "fedscan.toml", lab, body)
    assert run(["monitor", "--config", str(cfg), *AT, "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    suppressed = doc["monitor"]["suppressed"]
    rows = [(s["domain"], s["service"], s["finding"]["code"], s["reason"], s["until"]) for s in suppressed]
    assert rows == [
        ("northwind.test", "xmpp-server", "san-missing", "XMPP goes away in March", "2030-03-31")
    ]
    northwind, litware = doc["domains"]
    assert northwind["status"] == "OK"
    assert [f["code"] for f in litware["findings"]] == ["suppression-expired"]
    assert litware["status"] == "CRITICAL"  # the lapsed suppression hides nothing

    # verbose text lists the suppressed finding with its reason
    assert run(["monitor", "--config", str(cfg), *AT, "-v"]) == 2
    text = capsys.readouterr().out
    assert "Suppressed:\n  northwind.test xmpp-server sip.northwind.test:" in text
    assert ": san-missing — XMPP goes away in March until 2030-03-31\n" in text
    assert "WARNING  litware.test (domain): suppression-expired:" in text


def test_bad_config_is_exit_3_and_a_plugin_line_under_nagios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "fedscan.toml"
    cfg.write_text("[thresholds]\nwarn_days = 'many'\n")
    assert run(["monitor", "--config", str(cfg)]) == 3
    assert capsys.readouterr().err == (
        "fedscan: error: fedscan.toml: thresholds.warn_days: expected an integer, got \"many\"\n"
    )
    assert run(["monitor", "--config", str(cfg), "--format", "nagios"]) == 3
    assert capsys.readouterr().out == (
        'FEDSCAN UNKNOWN - fedscan.toml: thresholds.warn_days: expected an integer, got "many"\n'
    )


def test_missing_config_file_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["monitor", "--config", "/nonexistent/fedscan.toml"]) == 3
    assert capsys.readouterr().err == "fedscan: error: /nonexistent/fedscan.toml: No such file or directory\n"



def test_a_finding_shared_by_one_certificate_is_one_line_naming_every_endpoint() -> None:
    """The own-Edge view: one certificate behind many endpoints lacks a name once, not N times."""
    from scanner.findings import finding
    from scanner.monitor import problem_lines

    missing = finding("san-missing", "webcon.contoso.test (web conferencing) is not in the SAN")
    other = finding("san-missing", "webcon.contoso.test (web conferencing) is not in the SAN")
    doc = report(
        domain("contoso.test",
               endpoint("contoso.test", [missing], address="192.0.2.10"),
               endpoint("contoso.test", [missing], service="xmpp-server", address="192.0.2.10")),
        domain("fabrikam.test", endpoint("fabrikam.test", [missing], address="192.0.2.10"),
               endpoint("fabrikam.test", [other], address="192.0.2.11", sha256="bb" * 32)),
    )
    assert problem_lines(doc) == [
        "CRITICAL contoso.test sip-federation sip.contoso.test:5061 [192.0.2.10] and 2 more with the "
        "same certificate (contoso.test xmpp-server sip.contoso.test:5061 [192.0.2.10]; fabrikam.test "
        "sip-federation sip.fabrikam.test:5061 [192.0.2.10]): san-missing: webcon.contoso.test (web "
        "conferencing) is not in the SAN",
        "CRITICAL fabrikam.test sip-federation sip.fabrikam.test:5061 [192.0.2.11]: san-missing: "
        "webcon.contoso.test (web conferencing) is not in the SAN",
    ]
