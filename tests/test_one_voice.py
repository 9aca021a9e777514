"""Issue 14: one voice across commands, tables that fit the terminal, output that survives a pipe.

Real scans of the lab through the CLI: the 80-column table fits 80 columns and keeps every
word, piped output is complete, `| head` is not an error, the summary line and the severity
words are the same in scan, monitor and report merge, and empty results say so.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scanner.cli import run
from scanner.findings import CODES
from scanner.lab.run import LabInfo
from scanner.lab.zones import OWN_EDGE_ARGS, OWN_EDGE_DOMAINS
from tests.conftest import lab_net
from tests.test_monitor import AT, write_config


def _scan_table(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, lab: LabInfo,
                columns: str | None, *args: str, domains: list[str] | None = None) -> tuple[int, str]:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    code = run(["scan", *lab.scan_args(domains), *AT, *args])
    return code, capsys.readouterr().out


def _words(text: str) -> str:
    return " ".join(text.split())


def test_the_table_fits_80_columns_and_keeps_every_word(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, lab: LabInfo
) -> None:
    code, text = _scan_table(capsys, monkeypatch, lab, "80")
    assert code == 2
    assert max(len(line) for line in text.splitlines()) <= 80
    monkeypatch.setenv("COLUMNS", "80")
    assert run(["scan", *lab.scan_args(), *AT, "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    words = _words(text)
    for d in doc["domains"]:
        assert d["domain"] in text
        for e in d["endpoints"]:
            for f in e["findings"]:
                assert _words(f["message"]) in words, f["message"]  # folded, never cut
    assert _words(text).endswith("Overall: CRITICAL — 22 endpoints of 11 domains: 16 OK, 6 CRITICAL; "
                                 "3 domains with DNS or pool findings")  # wrapped, whole


def test_piped_output_has_no_width_limit(lab: LabInfo) -> None:
    """No terminal and no COLUMNS (cron mail, a file): lines as long as they need to be."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    extra = [f"--extra-san=a-rather-long-name-{i}-that-the-certificate-lacks.contoso.test" for i in range(3)]
    proc = subprocess.run([sys.executable, "-m", "scanner", "scan", *lab.scan_args(list(OWN_EDGE_DOMAINS)),
                           *OWN_EDGE_ARGS, *extra, *AT], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == 2 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    group = [line for line in lines if "on 8 endpoints" in line]
    assert group == ["    certificate " + group[0].split("certificate ")[1]]  # one line, whole
    assert group[0].endswith("(contoso.test sip-federation x2, xmpp-server x2, xmpps-server x2; "
                             "fabrikam.test sip-federation, xmpp-server):")
    # the shared certificate's findings are said once, not on each of the 8 endpoints
    for i in range(3):
        name = f"a-rather-long-name-{i}-that-the-certificate-lacks.contoso.test"
        assert sum(name in line for line in lines) == 1
    assert sum("same certificate as contoso.test" in line for line in lines) == 7


def test_closed_pipe_exits_with_the_status_silently(lab: LabInfo) -> None:
    base = [sys.executable, "-m", "scanner", "scan", *lab.scan_args(["litware.test", "contoso.test"]), *AT]
    for fmt in ("jsonl", "table", "json"):
        proc = subprocess.Popen([*base, "--format", fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        if fmt == "jsonl":
            proc.stdout.readline()  # `| head -1`: one line, then the reader leaves
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        assert proc.wait(timeout=60) == 2, fmt  # litware is CRITICAL: the status, not 1 or 3
        assert err == b"", (fmt, err)


def test_problems_only(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                       lab: LabInfo) -> None:
    code, text = _scan_table(capsys, monkeypatch, lab, "200", "-q",
                             domains=["contoso.test", "litware.test", "fourthcoffee.test"])
    assert code == 2
    assert "contoso.test" not in text and "fourthcoffee" not in text
    assert "INFO" not in text
    rows = [line for line in text.splitlines() if line.startswith("litware.test")]
    assert len(rows) == 2 and all("CRITICAL" in r for r in rows)
    assert text.rstrip().endswith("Overall: CRITICAL — 10 endpoints of 3 domains: 8 OK, 2 CRITICAL")


def test_expected_absences_fold_into_one_line(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch, lab: LabInfo) -> None:
    _, text = _scan_table(capsys, monkeypatch, lab, "200")
    assert "no SRV record at _xmpps-server" not in text
    assert ("INFO srv-missing (optional, not published): xmpps-server on 10 domains "
            "(all but contoso.test)") in text


def test_one_summary_line_and_severity_words_across_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, lab: LabInfo, tmp_path: Path
) -> None:
    summary = "Overall: CRITICAL — 4 endpoints of 2 domains: 2 OK, 2 CRITICAL"
    _, text = _scan_table(capsys, monkeypatch, lab, "200", domains=["litware.test", "fourthcoffee.test"])
    assert text.rstrip().splitlines()[-1] == summary
    assert run(["scan", *lab.scan_args(["litware.test", "fourthcoffee.test"]), *AT, "--format", "jsonl"]) == 2
    shard = tmp_path / "s.jsonl"
    shard.write_text(capsys.readouterr().out)
    assert run(["report", "merge", str(shard), "--format", "table"]) == 2
    merged = capsys.readouterr().out
    assert merged.rstrip().splitlines()[-1] == summary
    assert "Merged report: 2 domains from 1 shard file" in merged
    assert "CRITICAL expired" in merged and "INFO srv-fallback" in merged
    cfg = write_config(tmp_path / "f.toml", lab, '[deployment]\nsip_domains = ["litware.test"]\n'
                       '[[partner]]\ndomain = "fourthcoffee.test"\n')
    assert run(["monitor", "--config", str(cfg), *AT, "-v"]) == 2
    text_v = capsys.readouterr().out
    assert run(["monitor", "--config", str(cfg), *AT, "-v", "--format", "text"]) == 2  # the old name
    assert capsys.readouterr().out == text_v
    # the same wording (monitor judges litware as our own Edge: other services, other counts)
    assert re.fullmatch(r"Overall: CRITICAL — \d+ endpoints of 2 domains: \d+ OK, \d+ CRITICAL",
                        text_v.rstrip().splitlines()[-1])
    assert "  INFO     fourthcoffee.test xmpp-server DNS: srv-fallback:" in text_v
    assert "  OK       fourthcoffee.test xmpp-server DNS" not in text_v  # info is INFO, as in scan


def test_monitor_text_wraps_at_word_boundaries(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch, lab: LabInfo,
                                               tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "f.toml", lab, '[deployment]\nsip_domains = ["litware.test"]\n')
    monkeypatch.setenv("COLUMNS", "60")
    assert run(["monitor", "--config", str(cfg), *AT]) == 2
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 60
    assert "the certificate expired on 2021-01-01 (3287 days ago)" in _words(text)


def test_codes_explains_one_code(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert run(["codes", "nothing-to-scan"]) == 0
    info = CODES["nothing-to-scan"]
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "nothing-to-scan  (unknown, dns)"
    assert _words(info.summary) in _words(text) and f"What to do: {_words(info.remedy)}" in _words(text)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert run(["codes"]) == 0
    listing = capsys.readouterr().out
    assert max(len(line) for line in listing.splitlines()) <= 80
    assert all(_words(c.summary) in _words(listing) for c in CODES.values())
    assert run(["codes", "san-mising"]) == 3
    assert capsys.readouterr().err == (
        "fedscan: error: no finding code 'san-mising'; did you mean san-missing?\n")
    assert run(["codes", "expired", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["remedy"] == CODES["expired"].remedy


def test_no_such_domain_and_nothing_to_scan(capsys: pytest.CaptureFixture[str], lab: LabInfo) -> None:
    assert run(["scan", *lab.scan_args(["doesnotexist.test"]), *AT, "--format", "json"]) == 2
    [d] = json.loads(capsys.readouterr().out)["domains"]
    codes = [f["code"] for s in d["services"] for f in s["findings"]]
    assert codes == ["domain-not-found"]  # not "peers fall back to doesnotexist.test:5269"
    [message] = [f["message"] for s in d["services"] for f in s["findings"]]
    assert message == "no such domain: doesnotexist.test does not exist in DNS (NXDOMAIN)"
    # SIP federation alone (no XMPP fallback asking about the name): the same answer, not
    # "no SRV record at _sipfederationtls._tcp.doesnotexist.test"
    assert run(["scan", *lab.scan_args(["doesnotexist.test"]), *AT, "--format", "json",
                "--service", "sip-federation"]) == 2
    [d] = json.loads(capsys.readouterr().out)["domains"]
    assert [(f["code"], f["severity"]) for s in d["services"] for f in s["findings"]] == [
        ("domain-not-found", "critical")]
    # a domain that exists without SIP federation is still srv-missing
    assert run(["scan", *lab.scan_args(["fineartschool.test"]), *AT, "--format", "json",
                "--service", "sip-federation"]) == 2
    [d] = json.loads(capsys.readouterr().out)["domains"]
    assert [f["code"] for s in d["services"] for f in s["findings"]] == ["srv-missing"]
    # a domain that publishes none of the services asked: UNKNOWN, not "OK, 0 endpoints"
    assert run(["scan", *lab.scan_args(["contoso.test"]), *AT, "--service", "sip-access"]) == 3
    out = capsys.readouterr().out
    assert "nothing to scan: contoso.test publishes none of sip-access" in out
    assert out.rstrip().splitlines()[-1] == ("Overall: UNKNOWN — no endpoints in 1 domain: nothing was "
                                             "scanned; 1 domain with DNS or pool findings")


def test_help_short_option_and_shell_completion(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-h"]) == 0
    assert "Usage: fedscan [OPTIONS] COMMAND" in capsys.readouterr().out
    assert run(["report", "merge", "-h"]) == 0
    assert "FILE..." in capsys.readouterr().out
    # a user's shell is detected; here the shell is named (typer's switch for that)
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    proc = subprocess.run([sys.executable, "-m", "scanner", "--show-completion", "bash"],
                          capture_output=True, text=True, timeout=30, check=False, env=env)
    assert proc.returncode == 0 and "_FEDSCAN_COMPLETE=complete_bash" in proc.stdout
    complete = subprocess.run([sys.executable, "-m", "scanner"], capture_output=True, text=True, timeout=30,
                              check=False, env={**os.environ, "_FEDSCAN_COMPLETE": "complete_bash",
                                                "COMP_WORDS": "fedscan scan --ti", "COMP_CWORD": "2"})
    assert complete.stdout.split() == ["--timeout"]


def test_lab_hostile_serves_the_misbehaving_peers(tmp_path: Path) -> None:
    state = tmp_path / "lab.json"
    lab = subprocess.Popen([sys.executable, "-m", "scanner", "lab", "--hostile", "--net", lab_net(203),
                            "--state-file", str(state)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        deadline = time.monotonic() + 60
        while not state.exists() and time.monotonic() < deadline and lab.poll() is None:
            time.sleep(0.1)
        info = LabInfo.from_json(json.loads(state.read_text()))
        assert {"garbage.hostile.test", "plaintext-http.hostile.test"} <= {d.domain for d in info.domains}
        proc = subprocess.run([sys.executable, "-m", "scanner", "scan",
                               *info.scan_args(["plaintext-http.hostile.test"]), *AT, "--format", "json",
                               "--timeout", "5"], capture_output=True, text=True, timeout=60, check=False)
        endpoint = json.loads(proc.stdout)["domains"][0]["endpoints"][0]
        assert endpoint["findings"][0]["message"] == (
            "TLS handshake failed: the server does not speak TLS here: it sent 'HTTP/1.1 400 Bad Request' "
            "(plaintext HTTP)")
    finally:
        lab.terminate()
        out, _ = lab.communicate(timeout=30)
    assert "Scan your own consolidated Edge" not in out  # the default world's line is not offered
