"""Issue 14's six wrong answers, each reproduced as a user met it, and the right answer asserted.

1. the same shard merged twice; 2. readiness DNS asking another question than it reports on;
3. table text lost in a pipe or file; 4. unfinished domains reported OK after Ctrl-C;
5. two leaves of one file under identical table headers; 6. a merged ``evaluated_at`` that
changes type.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scanner.cli import run
from scanner.findings import finding
from scanner.lab.run import LabInfo
from scanner.report_merge import MergeError, merge
from scanner.results import DomainResult, EndpointResult, ScanReport
from scanner.srv import Endpoint
from tests.conftest import CERTS, lab_net
from tests.test_monitor import AT, write_config

SUMMARY = {"type": "summary", "schema_version": 1, "started_at": "2030-01-01T00:00:00Z",
           "finished_at": "2030-01-01T00:00:05Z", "evaluated_at": "2030-01-01T00:00:00Z",
           "interrupted": False, "deployment": None}


def _shard(domain: str, evaluated_at: str = "2030-01-01T00:00:00Z") -> list[str]:
    endpoint = {"type": "endpoint", "domain": domain, "service": "sip-federation",
                "target": f"sip.{domain}", "port": 5061, "address": "127.0.0.1", "status": "OK",
                "findings": [], "certificate": None}
    line = {"type": "domain", "domain": domain, "status": "OK", "findings": [], "services": [],
            "endpoint_count": 1}
    return [json.dumps(o) for o in (endpoint, line, {**SUMMARY, "evaluated_at": evaluated_at})]


# --- 1. the same shard twice ---------------------------------------------------------------------


def test_the_same_shard_given_twice_is_refused_whatever_its_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(MergeError, match=r"a\.test is in both s0\.jsonl and s0\.jsonl"):
        merge([("s0.jsonl", _shard("a.test")), ("s0.jsonl", _shard("a.test"))])
    shard = tmp_path / "s0.jsonl"
    shard.write_text("\n".join(_shard("a.test")) + "\n")
    assert run(["report", "merge", str(shard), str(shard)]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"fedscan: error: a.test is in both {shard} and {shard} (argument 2): shards must not "
                   "overlap (the same file given twice, or overlapping globs?)\n")


def test_a_domain_twice_within_one_shard_is_refused() -> None:
    with pytest.raises(MergeError, match=r"s0:3: a\.test is complete already"):
        merge([("s0", _shard("a.test")[:2] + _shard("a.test")[:2])])


# --- 6. evaluated_at keeps its type ---------------------------------------------------------------


def test_merged_evaluated_at_is_always_a_string_with_every_time_added() -> None:
    same = merge([("a", _shard("a.test")), ("b", _shard("b.test"))])
    assert same["evaluated_at"] == "2030-01-01T00:00:00Z"
    assert same["shards"]["evaluated_at"] == ["2030-01-01T00:00:00Z"]
    differ = merge([("a", _shard("a.test", "2030-02-01T00:00:00Z")), ("b", _shard("b.test"))])
    assert differ["evaluated_at"] == "2030-01-01T00:00:00Z"  # the earliest: a string, always
    assert differ["shards"]["evaluated_at"] == ["2030-01-01T00:00:00Z", "2030-02-01T00:00:00Z"]


# --- 2. readiness asks DNS the question it reports on ----------------------------------------------


def test_readiness_looks_up_the_address_it_reports_on(
    tmp_path: Path, lab: LabInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    """fineartschool.test has no SIP SRV record, but sip.fineartschool.test has an address
    (the lab answers it; the XMPP SRV points there): the A/AAAA row must say so."""
    cfg = write_config(tmp_path / "f.toml", lab, '[deployment]\nsip_domains = ["fineartschool.test"]\n')
    assert run(["readiness", "--config", str(cfg), *AT]) == 2
    md = capsys.readouterr().out
    row = next(line for line in md.splitlines() if line.startswith("| sip.fineartschool.test A/AAAA"))
    assert row == f"| sip.fineartschool.test A/AAAA | an address of the Access Edge | {lab_net(9)}.17 | yes |"
    assert "IN A <public IP" not in md
    assert "_sipfederationtls._tcp.fineartschool.test. 3600 IN SRV 0 0 5061 sip.fineartschool.test." in md


# --- 3. nothing lost in a pipe or a file -----------------------------------------------------------


def _long_report() -> ScanReport:
    message = "a message longer than any terminal: " + " ".join(f"word{i}" for i in range(60)) + " END"
    e = Endpoint("contoso.test", "sip-federation", "sip.contoso.test", 5061, "127.77.0.10", 0, 0, None)
    result = EndpointResult(e, (finding("san-missing", message),), None, None, (), (), {})
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    return ScanReport(now, now, [DomainResult("contoso.test", endpoints=[result])], finished=now)


@pytest.mark.parametrize("columns", [None, "80", "300"])
def test_table_written_to_a_file_keeps_every_word(
    monkeypatch: pytest.MonkeyPatch, columns: str | None
) -> None:
    from scanner.cli_common import stdout_console
    from scanner.render import render_scan

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    render_scan(stdout_console(), _long_report())
    text = out.getvalue()
    assert " ".join(text.split()).count("word59 END") == 1  # the whole message, nothing cut
    if columns is not None:
        assert max(len(line) for line in text.splitlines()) <= int(columns)


# --- 4. Ctrl-C: unfinished is UNKNOWN ----------------------------------------------------------------


def _interrupted_scan(lab: LabInfo, fmt: str) -> tuple[int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "scan", "contoso.test", "blackhole.test",
         "--nameserver", lab.nameserver, "--ca-file", str(lab.ca_file), "--timeout", "60",
         "--service", "sip-federation", "--at", "2030-01-01T00:00:00Z", "--format", fmt],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert err == ""
    return proc.returncode, out


def test_after_ctrl_c_unfinished_domains_are_unknown_and_interrupted(lab: LabInfo) -> None:
    code, out = _interrupted_scan(lab, "json")
    assert code == 3
    doc: dict[str, Any] = json.loads(out)
    by_name = {d["domain"]: d for d in doc["domains"]}
    assert (by_name["contoso.test"]["status"], by_name["contoso.test"]["interrupted"]) == ("OK", False)
    blackhole = by_name["blackhole.test"]
    assert (blackhole["status"], blackhole["interrupted"]) == ("UNKNOWN", True)
    code, out = _interrupted_scan(lab, "table")
    assert code == 3
    row = next(line for line in out.splitlines() if line.startswith("blackhole.test"))
    assert "UNKNOWN" in row and "interrupted" in row


# --- 5. two leaves in one file, told apart in the table ------------------------------------------


def test_two_leaves_in_one_file_have_their_own_headers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    both = tmp_path / "oldnew.pem"
    both.write_bytes((CERTS / "edge.pem").read_bytes() + (CERTS / "expired.pem").read_bytes())
    assert run(["cert", str(both), "--ca-file", str(CERTS / "ca-bundle.pem"), *AT]) == 2
    heads = [line for line in capsys.readouterr().out.splitlines() if line.startswith(str(both))]
    assert heads == [f"{both}  certificate 1 of 2  (pem)  OK", f"{both}  certificate 2 of 2  (pem)  CRITICAL"]
