"""Hostile strings stay text: a lab peer whose certificate subject and SAN carry HTML and script,
quotes, backslashes, newlines and terminal escapes (ANSI colour, OSC title, OSC 8 hyperlink,
bell), whose XMPP stream error text carries markup and a bidi override, and whose SRV target
holds a quote and a backslash, is scanned; every renderer shows the text and runs nothing.
(The page in a real browser: tests/test_interop_chromium.py.)"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.findings import Status
from scanner.lab.behaviours import Scripted, stream_error_reply
from scanner.lab.pki import HOSTILE_CN, HOSTILE_TEXT, lab_pki
from scanner.lab.run import LabInfo
from scanner.lab.thread import lab_in_thread
from scanner.lab.zones import SIP, XMPP, XMPPS, LabDomain, LabWorld, Listener, Srv
from tests.conftest import lab_net

DOMAIN = "hostile-strings.test"
ERROR_TEXT = '<img src=x onerror="document.title=\'pwned\'"> "q" \u202eevil\u202c [x](javascript:1) | \\'
ODD_TARGET = 'odd\\"q\\\\b.' + DOMAIN  # zone-file text: the label is  odd"q\b
AT = ["--at", "2030-01-01T00:00:00Z"]
# what no terminal output may hold: C0 controls but newline, DEL, C1 controls, bidi controls
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def strings_world() -> LabWorld:
    listeners = (
        Listener("hs-sip", "sip", 10, "lab/hostile-strings"),
        Listener("hs-xmpps", "xmpps", 10, "lab/hostile-strings"),
        Listener("hs-xmpp", "xmpp", 11, "lab/hostile-strings", (DOMAIN,)),
    )
    srv = (Srv(SIP + DOMAIN, f"sip.{DOMAIN}", "hs-sip"), Srv(XMPP + DOMAIN, f"xmpp.{DOMAIN}", "hs-xmpp"),
           Srv(XMPPS + DOMAIN, ODD_TARGET, "hs-xmpps"))
    hosts: dict[str, tuple[int, ...]] = {f"sip.{DOMAIN}": (10,), f"xmpp.{DOMAIN}": (11,), ODD_TARGET: (10,)}
    domain = LabDomain(DOMAIN, "a peer whose certificate and errors carry markup and terminal escapes",
                       Status.CRITICAL, ())
    return LabWorld(listeners, srv, hosts, (domain,),
                    behaviours={"hs-xmpp": Scripted(stream_error_reply("host-unknown", ERROR_TEXT))})


@pytest.fixture(scope="module")
def strings_lab() -> Iterator[LabInfo]:
    with lab_in_thread(net=lab_net(47), world=strings_world()) as info:
        yield info


def fedscan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scanner", *args], capture_output=True, text=True,
                          check=False, timeout=120, env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"})


def test_the_scan_json_keeps_every_string_exactly(strings_lab: LabInfo) -> None:
    proc = fedscan("scan", *strings_lab.scan_args(), *AT, "--format", "json")
    doc = json.loads(proc.stdout)
    (d,) = doc["domains"]
    subjects = {e["certificate"]["subject"] for e in d["endpoints"] if e["certificate"]}
    assert any("\x1b[31mred" in s and "\\<script\\>" in s for s in subjects)  # RFC 4514 text
    targets = {e["target"] for e in d["endpoints"]}
    assert 'odd\\"q\\\\b.hostile-strings.test' in targets  # dnspython's text form of the odd label
    found = [f for e in d["endpoints"] for f in e["findings"]]
    assert {"condition": "host-unknown", "text": ERROR_TEXT} in [f["details"] for f in found]
    assert any(HOSTILE_CN in f["message"] for f in found)  # cn-not-in-san names the CN


def test_the_table_holds_no_raw_control_character(strings_lab: LabInfo) -> None:
    proc = fedscan("scan", *strings_lab.scan_args(), *AT)
    assert proc.returncode == 2, proc.stderr
    out = proc.stdout
    assert not RAW_CONTROL.findall(out)
    # the CN: newline and escapes shown, not obeyed (rich itself drops the bell)
    assert 'the subject CN <script>alert("cn")</script>\'\\␊␛[31mred␛]0;t.test is not repeated' in out
    assert out.count("\n") == len(out.splitlines())  # no line forged by a peer's newline


def test_cert_and_merge_and_monitor_text_hold_no_raw_control_character(
    strings_lab: LabInfo, tmp_path: Path
) -> None:
    pem = str(lab_pki().chain("lab/hostile-strings"))
    proc = fedscan("cert", pem, "--ca-file", str(strings_lab.ca_file), *AT, "--sip-domain", DOMAIN)
    assert "subject   CN=" in proc.stdout and not RAW_CONTROL.findall(proc.stdout)
    assert "[md](javascript:alert(1)) *bold*␊second line" in proc.stdout  # markup not interpreted
    shard = tmp_path / "s.jsonl"
    shard.write_text(fedscan("scan", *strings_lab.scan_args(), *AT, "--format", "jsonl").stdout)
    merged = fedscan("report", "merge", str(shard), "--format", "table")
    assert DOMAIN in merged.stdout and not RAW_CONTROL.findall(merged.stdout)
    cfg = tmp_path / "fedscan.toml"
    cfg.write_text(f'[[partner]]\ndomain = "{DOMAIN}"\n[scan]\nnameservers = ["{strings_lab.nameserver}"]\n'
                   f'ca_file = "{strings_lab.ca_file}"\n')
    prom = tmp_path / "fedscan.prom"
    for fmt in ("text", "nagios"):
        out = fedscan("monitor", "--config", str(cfg), *AT, "--format", fmt, "--verbose",
                      "--prometheus-textfile", str(prom)).stdout
        assert "odd" in out and not RAW_CONTROL.findall(out), out
    nagios = fedscan("monitor", "--config", str(cfg), *AT, "--format", "nagios").stdout
    assert nagios.splitlines()[0].count("|") == 1  # the perfdata separator, and no other


def test_the_textfile_parses_with_prometheus_client(strings_lab: LabInfo, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    cfg = tmp_path / "fedscan.toml"
    cfg.write_text(f'[[partner]]\ndomain = "{DOMAIN}"\n[scan]\nnameservers = ["{strings_lab.nameserver}"]\n'
                   f'ca_file = "{strings_lab.ca_file}"\n')
    prom = tmp_path / "fedscan.prom"
    fedscan("monitor", "--config", str(cfg), *AT, "--prometheus-textfile", str(prom))
    families = list(text_string_to_metric_families(prom.read_text()))
    targets = {s.labels.get("target") for f in families for s in f.samples}
    assert 'odd\\"q\\\\b.hostile-strings.test' in targets  # quote and backslash round-trip
    assert {f"sip.{DOMAIN}", f"xmpp.{DOMAIN}"} <= targets


def test_the_markdown_and_html_readiness_escape_the_subject(strings_lab: LabInfo, tmp_path: Path) -> None:
    cfg = tmp_path / "fedscan.toml"
    cfg.write_text(f'[deployment]\nsip_domains = ["{DOMAIN}"]\nxmpp_domains = ["{DOMAIN}"]\n'
                   f'[scan]\nca_file = "{strings_lab.ca_file}"\n')
    md, page = tmp_path / "r.md", tmp_path / "r.html"
    fedscan("readiness", "--config", str(cfg), *AT, "--cert", str(lab_pki().chain("lab/hostile-strings")),
            "--markdown", str(md), "--html", str(page))
    text = md.read_text()
    assert not RAW_CONTROL.findall(text)
    assert "\\<script\\>alert(\"cn\")\\</script\\>" in text  # Markdown shows it, no renderer runs it
    doc = page.read_text()
    assert "<script" not in doc and "&lt;script&gt;alert(&quot;cn&quot;)&lt;/script&gt;" in doc
    assert HOSTILE_CN and HOSTILE_TEXT  # the strings under test, for the reader


def test_visible_maps_one_character_to_one() -> None:
    from scanner.safe_text import one_line, visible

    text = "a\x1b[2Jb\x07c\nd\x7fe\x9bf\u202eg\u2066h\ti"
    assert visible(text) == "a␛[2Jb␇c␊d␡e\ufffdf\ufffdg\ufffdh␉i" and len(visible(text)) == len(text)
    assert one_line("x\r\ny\nz\tw") == "x y z w"
    assert visible("Zürich — ok") == "Zürich — ok"


def test_a_partner_s_sip_reason_phrase_and_xmpp_text_stay_text() -> None:
    """Issue 12's verdicts carry peer words (a SIP reason phrase, ms-diagnostics, an XMPP error
    text) into the table, monitor text and the Nagios line: no raw control character gets out."""
    import io

    from rich.console import Console

    from scanner.acceptance_model import Acceptance, SipVerdict, TlsVerdict, XmppVerdict, sip_findings
    from scanner.monitor import problem_lines
    from scanner.results import DomainResult, EndpointResult, ScanReport
    from scanner.scan_table import render_scan
    from scanner.srv import Endpoint

    evil = "Forbidden\x1b]0;owned\x07\x1b[31m<b>\nInjected: yes\u202e"
    sip = SipVerdict("contoso.test", 403, evil, ms_diagnostics={"code": 1034, "reason": evil, "source": evil})
    xmpp = XmppVerdict("contoso.test", False, True, None, "not-authorized", evil)
    ep = Endpoint("partner.test", "sip-federation", "sip.partner.test", 5061, "192.0.2.7", 0, 0, None)
    acceptance = Acceptance("aa" * 32, TlsVerdict("accepted", "session-ticket"), sip, xmpp,
                            tuple(sip_findings(sip, "sip.partner.test")))
    result = EndpointResult(ep, acceptance.findings, None, None, (), (), {"total": 0.1}, (),
                            acceptance=acceptance)
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    report = ScanReport(started=now, evaluated_at=now,
                        domains=[DomainResult("partner.test", [], [result])], finished=now)
    out = io.StringIO()
    render_scan(Console(file=out, width=100, force_terminal=False, color_system=None), report, width=100)
    table = out.getvalue()
    assert "Forbidden" in table and "owned" in table  # shown ...
    assert not any(ord(c) < 32 and c != "\n" for c in table)  # ... as text
    assert "\x1b" not in table and "\u202e" not in table
    assert not any(line.startswith("Injected") for line in table.splitlines())
    for line in problem_lines(report):
        assert not any(ord(c) < 32 for c in line) and "\u202e" not in line, line
