"""`fedscan report html`: the page's content, straight from a real scan of the lab."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from scanner.cli import run
from scanner.findings import CODES
from scanner.lab.run import LabInfo
from scanner.report_html import render_report_html, rows

AT = ["--at", "2030-01-01T00:00:00Z"]


@pytest.fixture(scope="module")
def scan_file(lab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("report") / "scan.json"
    argv = [sys.executable, "-m", "scanner", "scan", *lab.scan_args(), *AT, "--format", "json"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    out.write_text(proc.stdout)
    return out


@pytest.fixture(scope="module")
def doc(scan_file: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(scan_file.read_text())
    return data


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_the_page_states_status_counts_time_and_options(doc: dict[str, Any]) -> None:
    page = render_report_html(doc, source="scan.json")
    assert "<title>fedscan report: CRITICAL, 22 endpoints of 11 domains</title>" in page
    assert '<p class="verdict v-CRITICAL"><strong>CRITICAL</strong>: 22 endpoints of 11 domains</p>' in page
    text = text_of(page)
    for count in ("6 CRITICAL endpoints", "0 UNKNOWN endpoints", "0 WARNING endpoints", "16 OK endpoints",
                  "6 CRITICAL domains", "5 OK domains"):
        assert count in text, count
    assert f"judged as of {doc['evaluated_at']}" in text and f"started {doc['started_at']}" in text
    assert "services sip-federation, xmpp-server, xmpps-server" in text
    assert "timeout 10.0" in text and "warn days 30" in text and "client auth required" in text


def test_expiry_chart_counts_distinct_certificates(doc: dict[str, Any]) -> None:
    text = text_of(render_report_html(doc))
    # litware (served on two endpoints: one certificate) and adatum's stale node are expired;
    # the other eight certificates run until 2040 (3652 days after the judging time)
    assert "10 distinct certificates; warning at 30 days, critical at 14." in text
    assert "expired 2 < 14 days 0 < 30 days 0 < 90 days 0 < 1 year 0 1 year + 8" in text
    assert re.search(r"-3287 2021-01-01T00:00:00Z CN=sip\.(litware|adatum)\.test", text)


def test_every_finding_has_its_remedy_and_places(doc: dict[str, Any]) -> None:
    page = render_report_html(doc)
    for code in ("expired", "san-missing", "eku-client-auth-missing", "srv-target-outside-domain",
                 "pool-certificate-mismatch", "srv-missing"):
        section = page.split(f'id="code-{code}"', 1)[1].split('<div class="code"', 1)[0]
        assert f"<strong>Fix:</strong> {html.escape(CODES[code].remedy)}" in section, code
    expired = page.split('id="code-expired"', 1)[1].split("</div>", 1)[0]
    assert "— 3 places</h3>" in expired and "litware.test sip-federation sip.litware.test" in expired


def test_table_rows_are_every_endpoint_and_each_domain_with_dns_findings(doc: dict[str, Any]) -> None:
    table = rows(doc)
    assert sum(1 for r in table if r[1] != "DNS") == 22
    dns = {r[0]: (r[5], r[7]) for r in table if r[1] == "DNS"}
    assert dns["fineartschool.test"] == ("CRITICAL", ["srv-missing"])
    assert dns["wingtip.test"] == ("CRITICAL", ["srv-target-outside-domain", "srv-missing"])
    assert dns["m365.test"][0] == "OK" and "hosted-microsoft-365" in dns["m365.test"][1]
    assert "contoso.test" not in dns  # no domain-wide finding: no DNS row


def test_only_our_script_may_run(doc: dict[str, Any]) -> None:
    page = render_report_html(doc)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src &#x27;sha256-{digest}&#x27;" in csp.group(1)
    assert "default-src &#x27;none&#x27;" in csp.group(1)
    assert not re.search(r"<(link|img|iframe)\b|https?://[a-z]", page.split('id="fedscan-data"')[0])


def test_cli_writes_the_page_and_exits_with_the_scan_status(
    scan_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    assert run(["report", "html", str(scan_file), "-o", str(page)]) == 2
    assert capsys.readouterr().out == f"wrote {page}: CRITICAL, 22 endpoints of 11 domains\n"
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_cli_reads_shard_jsonl_too(lab: LabInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shard = tmp_path / "shard.jsonl"
    assert run(["scan", *lab.scan_args(["litware.test"]), *AT, "--format", "jsonl"]) == 2
    shard.write_text(capsys.readouterr().out)
    assert run(["report", "html", str(shard), "-o", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().out == f"wrote {tmp_path / 'r.html'}: CRITICAL, 2 endpoints of 1 domains\n"


def test_cli_refuses_what_is_not_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    assert run(["report", "html", str(other), "-o", str(tmp_path / "r.html")]) == 3
    assert capsys.readouterr().err == (
        f"fedscan: error: {other}: not a fedscan report (expected the JSON of `fedscan scan --format json` "
        "or `fedscan report merge`)\n")
    assert run(["report", "html", str(tmp_path / "missing.json"), "-o", str(tmp_path / "r.html")]) == 3
    missing = tmp_path / "missing.json"
    assert capsys.readouterr().err == f"fedscan: error: {missing}: No such file or directory\n"
    assert not (tmp_path / "r.html").exists()
