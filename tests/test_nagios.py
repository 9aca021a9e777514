"""Monitoring-plugin output: the status line, perfdata per the plugin guidelines, exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scanner.cli import run
from scanner.findings import finding
from scanner.history import Change
from scanner.lab.run import LabInfo
from scanner.monitor import MonitorResult
from scanner.nagios import render
from tests.test_monitor import AT, OWN, domain, endpoint, report, write_config

# 'label'=value[UOM];[warn];[crit];[min];[max]
PERF = re.compile(r"^[a-z_]+=-?\d+(\.\d+)?(s|%|B|c)?(;[^;\s]*){0,4}$")


def test_status_line_counts_endpoints_domain_problems_and_nearest_expiry() -> None:
    crit = finding("expired", "the certificate expired")
    warn = finding("expires-soon", "expires in 12 days")
    r = report(
        domain("contoso.test", endpoint("contoso.test", [warn], not_after="2030-01-13T00:00:00Z"),
               endpoint("contoso.test", address="192.0.2.11")),
        domain("litware.test", endpoint("litware.test", [crit], not_after="2030-06-01T00:00:00Z")),
        domain("fineartschool.test", dns=[finding("srv-missing", "no SRV record at _sipfederationtls")]),
    )
    changes = [Change("certificate-replaced", "contoso.test", "k", "contoso.test: certificate replaced")]
    text = render(MonitorResult(r, changes=changes, duration=1.5), warn_days=30, crit_days=14)
    first, *rest = text.splitlines()
    status, perf = first.split(" | ")
    assert status == (
        "FEDSCAN CRITICAL - 1 critical, 1 warning of 3 endpoints; domain-level: srv-missing "
        "(fineartschool.test); nearest expiry 12 days (sip.contoso.test); 1 change since last run"
    )
    assert perf.split() == [
        "nearest_expiry_days=12;30:;14:", "critical=1;;;0;3", "warning=1;;;0;3", "unknown=0;;;0;3",
        "ok=1;;;0;3", "suppressed=0;;;0", "changes=1;;;0", "duration=1.500s;;;0",
    ]
    assert all(PERF.match(p) for p in perf.split())
    assert rest[0] == "CHANGED: contoso.test: certificate replaced"  # changes come first
    assert rest[1].startswith(
        "CRITICAL litware.test sip-federation sip.litware.test:5061 [192.0.2.10]: expired"
    )
    assert rest[2].startswith("CRITICAL fineartschool.test sip-federation DNS: srv-missing")
    assert rest[3].startswith("WARNING  contoso.test sip-federation")


def test_all_ok_line_and_pipe_from_the_network_is_neutralised() -> None:
    r = report(domain("a.test", endpoint("a.test", target="sip|evil.test", not_after="2031-01-01T00:00:00Z")))
    text = render(MonitorResult(r), warn_days=30, crit_days=14)
    assert text.count("|") == 1
    assert text.splitlines()[0].split(" | ")[0] == (
        "FEDSCAN OK - all 1 endpoint OK; nearest expiry 365 days (sip/evil.test)"
    )


def test_expired_nearest_reads_as_expired() -> None:
    e = endpoint("a.test", [finding("expired", "x")], not_after="2029-12-30T00:00:00Z")
    r = report(domain("a.test", e))
    assert "; expired 2 days ago (sip.a.test) |" in render(MonitorResult(r), warn_days=30, crit_days=14)


@pytest.mark.parametrize(
    ("partner", "code", "line"),
    [
        ("", 0, "FEDSCAN OK - all 8 endpoints OK; nearest expiry 3652 days (sip.contoso.test)"),
        ('[[partner]]\ndomain = "litware.test"\nservices = ["sip-federation"]\n', 2,
         "FEDSCAN CRITICAL - 1 critical of 9 endpoints; expired 3287 days ago (sip.litware.test)"),
        ('[[partner]]\ndomain = "fineartschool.test"\nservices = ["sip-federation"]\n', 2,
         "FEDSCAN CRITICAL - all 8 endpoints OK; domain-level: srv-missing (fineartschool.test); "
         "nearest expiry 3652 days (sip.contoso.test)"),
    ],
)
def test_nagios_against_the_lab(
    tmp_path: Path, lab: LabInfo, capsys: pytest.CaptureFixture[str], partner: str, code: int, line: str
) -> None:
    cfg = write_config(tmp_path / "fedscan.toml", lab, OWN + partner)
    assert run(["monitor", "--config", str(cfg), *AT, "--format", "nagios"]) == code
    out = capsys.readouterr().out
    assert out.splitlines()[0].split(" | ")[0] == line
