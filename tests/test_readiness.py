"""`fedscan readiness`: the go-live verdict and its evidence, live (healthy and broken Edge),
offline from a certificate or CSR, and escaped in both renderings."""

from __future__ import annotations

import dataclasses
import html
import re
from dataclasses import replace
from pathlib import Path

import pytest

from scanner.cli import run
from scanner.findings import CODES, Status
from scanner.lab.run import LabInfo
from scanner.lab.thread import lab_in_thread
from scanner.lab.zones import SIP, default_world
from scanner.readiness import EndpointRow, Readiness, Remedy
from scanner.readiness_checks import Evidence, Item, Requirement, State, requirements
from scanner.readiness_dns import DnsRow, srv_record_text
from scanner.readiness_html import render_html
from scanner.readiness_markdown import render_markdown
from tests.conftest import CERTS, cert_summary, lab_net
from tests.test_monitor import AT, OWN, write_config

OWN_WITH_PARTNER = OWN + '[[partner]]\ndomain = "litware.test"\n'  # partners are not part of readiness


def test_healthy_edge_is_ready(tmp_path: Path, lab: LabInfo, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "fedscan.toml", lab, OWN_WITH_PARTNER)
    page, md = tmp_path / "r.html", tmp_path / "r.md"
    code = run(["readiness", "--config", str(cfg), *AT, "--html", str(page), "--markdown", str(md)])
    assert code == 0
    assert capsys.readouterr().out == (
        "READY: every required name, usage and record is in place, all 8 endpoints OK\n"
        f"wrote {page}, {md}\n"
    )
    text = md.read_text()
    assert "| SAN | webcon.contoso.test | extra name | present |  |" in text
    assert "| EKU | clientAuth | federation is mutual TLS | present |  |" in text
    assert "litware" not in text
    assert "Nothing to fix." in text
    doc = page.read_text()
    assert doc.startswith("<!DOCTYPE html>") and "@media print" in doc
    assert "<script" not in doc and "http://" not in doc.split("<body>")[0]


def test_broken_edge_is_not_ready_and_says_what_to_publish_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = default_world()
    listeners = tuple(dataclasses.replace(x, cert="lab/edge-missing-xmpp") if x.cert == "edge" else x
                      for x in world.listeners)
    srv = tuple(r for r in world.srv if r.name != SIP + "fabrikam.test")
    broken = dataclasses.replace(world, listeners=listeners, srv=srv)
    md = tmp_path / "r.md"
    with lab_in_thread(net=lab_net(41), world=broken) as lab:
        cfg = write_config(tmp_path / "fedscan.toml", lab, OWN)
        assert run(["readiness", "--config", str(cfg), *AT, "--markdown", str(md)]) == 2
    assert capsys.readouterr().out.splitlines()[0] == (
        "NOT READY: the certificate lacks 1 required entry (contoso.test); 1 DNS record to publish or fix "
        "(_sipfederationtls._tcp.fabrikam.test SRV); 7 of 7 endpoints failing"
    )
    text = md.read_text()
    assert ("| SAN | contoso.test | XMPP namespace of contoso.test: XMPP peers check the bare domain "
            "| MISSING |") in text
    assert ("| SAN | sip.fabrikam.test | SIP namespace of fabrikam.test: SRV target partners check "
            "| present |  |") in text
    assert ("| \\_sipfederationtls.\\_tcp.fabrikam.test SRV | target sip.fabrikam.test. "
            "(port 5061 by convention) | not published | NO |") in text
    assert "```\n_sipfederationtls._tcp.fabrikam.test. 3600 IN SRV 0 0 5061 sip.fabrikam.test.\n```" in text
    assert "### CRITICAL: san-missing" in text
    assert f"**Fix:** {CODES['san-missing'].remedy}" in text
    assert ("publish: \\_sipfederationtls.\\_tcp.fabrikam.test. 3600 IN SRV 0 0 5061 sip.fabrikam.test."
            in text)


def test_offline_certificate_and_csr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "fedscan.toml"
    cfg.write_text(OWN + f'[scan]\nca_file = "{CERTS / "ca-bundle.pem"}"\n')
    assert run(["readiness", "--config", str(cfg), *AT, "--cert", str(CERTS / "edge.pem")]) == 0
    out = capsys.readouterr().out
    # a file says nothing of DNS: the verdict must not claim records are in place
    assert ("**READY** (OK): every required name and usage is in the certificate; DNS records and "
            "endpoints were not checked") in out
    assert "| Key | exportable | every node of a pool installs the same key | not checked |" in out
    assert "## DNS" not in out and "## Endpoints" not in out
    assert run(["readiness", "--config", str(cfg), *AT, "--cert", str(CERTS / "csr-missing-xmpp.csr")]) == 2
    out = capsys.readouterr().out
    assert ("**NOT READY** (CRITICAL): the certificate lacks 3 required entries "
            "(contoso.test, fabrikam.test, clientAuth)") in out
    assert "| CRL distribution point | required | Lync/SfB check revocation | n/a |" in out


def test_the_shipped_example_domains_give_the_issue_srv_records() -> None:
    assert srv_record_text("sip-federation", "contoso.com", "sip.contoso.com") == (
        "_sipfederationtls._tcp.contoso.com. 3600 IN SRV 0 0 5061 sip.contoso.com."
    )
    assert srv_record_text("xmpp-server", "contoso.com", "sip.contoso.com") == (
        "_xmpp-server._tcp.contoso.com. 3600 IN SRV 0 0 5269 sip.contoso.com."
    )


HOSTILE = '<script>alert("x")</script>|`*_[x](javascript:y)'


def hostile_report() -> Readiness:
    return Readiness(
        "2030-01-01T00:00:00Z", f"live scan of {HOSTILE}", Status.CRITICAL, False, (f"lacks {HOSTILE}",),
        HOSTILE, (HOSTILE,), (Requirement(Item.SAN, HOSTILE, HOSTILE, State.MISSING, HOSTILE),),
        (DnsRow(HOSTILE, HOSTILE, HOSTILE, False, HOSTILE),),
        (EndpointRow(HOSTILE, "sip-federation", HOSTILE, 5061, HOSTILE, Status.CRITICAL, HOSTILE,
                     (HOSTILE,)),),
        (Remedy("san-missing", Status.CRITICAL, HOSTILE, HOSTILE, (HOSTILE,)),),
    )


def test_hostile_names_are_escaped_in_html() -> None:
    doc = render_html(hostile_report())
    assert "<script" not in doc
    assert html.escape(HOSTILE) in doc
    assert doc.count('<table class="stack">') == 3


def test_hostile_names_are_escaped_in_markdown() -> None:
    text = render_markdown(hostile_report())
    # the records to publish are a fenced code block, verbatim for copying (renderers show a
    # code block as text); everywhere else the hostile text is escaped
    fence, body = "```", []
    outside = text
    while fence + "\n" in outside:
        before, _, rest = outside.partition(fence + "\n")
        block, _, after = rest.partition("\n" + fence)
        body.append(block)
        outside = before + after
    assert body == [HOSTILE]
    assert re.search(r"(?<!\\)[<>]", outside) is None  # no tag can open: every < is escaped
    assert "\\<script\\>alert(\"x\")\\</script\\>\\|\\`\\*\\_\\[x\\](javascript:y)" in text
    assert "&lt;" not in outside  # readable as itself in the raw file too
    rows = [line for line in text.splitlines() if line.startswith("| SAN |")]
    assert len(rows) == 1 and rows[0].count(" | ") == 4  # the pipe did not add a column


def test_records_to_publish_are_verbatim_in_markdown() -> None:
    """Copied straight into a zone file: no HTML entities inside the code block."""
    line = "sip.fineartschool.test. 3600 IN A <public IP of the Access Edge>"
    row = DnsRow("sip.fineartschool.test A", "an address", "none", False, line)
    report = replace(hostile_report(), dns=(row,))
    text = render_markdown(report)
    assert f"```\n{line}\n```" in text
    assert "&lt;public IP" not in text.split("Publish:")[1].split("```")[1]


def test_a_row_says_which_certificates_it_is_about_when_nodes_differ() -> None:
    """Two certificates on the Edge's endpoints: a SAN missing from one must name that one."""
    from scanner.deployment import Deployment
    from scanner.plan import certificate_plan

    plan = certificate_plan(Deployment.from_input(["northwind.test"]))
    good = Evidence("SHA-256 aaaa… on 2 endpoints", cert_summary(dns_names=("sip.northwind.test",)), (),
                    frozenset())
    stale = Evidence("SHA-256 bbbb… on 1 endpoint", cert_summary(dns_names=("other.test",)), (), frozenset())
    rows = {r.required: r for r in requirements(plan, [good, stale], True) if r.item == "SAN"}
    assert rows["sip.northwind.test"].state == "missing"
    assert rows["sip.northwind.test"].detail == "1 of 2 certificates: SHA-256 bbbb… on 1 endpoint"


def test_repeated_findings_are_one_row_entry_and_one_remediation_line(
    tmp_path: Path, lab: LabInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three names missing from the one certificate all 8 endpoints serve: 'san-missing x3'
    per endpoint, and one remediation line per missing name listing where, not 24 lines."""
    missing = ["missing-1.contoso.test", "missing-2.contoso.test", "missing-3.contoso.test"]
    body = OWN.replace('extra_sans = ["webcon.contoso.test"]',
                       f'extra_sans = ["webcon.contoso.test", {", ".join(map(repr, missing))}]')
    cfg = write_config(tmp_path / "fedscan.toml", lab, body.replace("'", '"'))
    assert run(["readiness", "--config", str(cfg), *AT]) == 2
    md = capsys.readouterr().out
    rows = [line for line in md.splitlines() if line.startswith("| contoso.test | sip-federation")]
    assert rows and all(row.endswith("| CRITICAL | san-missing x3 |") for row in rows)
    for name in missing:
        lines = [line for line in md.splitlines() if line.startswith("- ") and name in line]
        assert lines == [f"- {name} (extra name) is not in the SAN — on 8 endpoints (contoso.test "
                         "sip-federation x2, xmpp-server x2, xmpps-server x2; fabrikam.test sip-federation, "
                         "xmpp-server)"]
