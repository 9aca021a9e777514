"""The Prometheus textfile: prometheus_client's own parser reads it; writes are atomic."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scanner.cli import run
from scanner.findings import finding
from scanner.lab.run import LabInfo
from scanner.monitor import MonitorResult
from scanner.prometheus import render, write_textfile
from scanner.results import EndpointResult
from tests.test_monitor import AT, OWN, domain, endpoint, report, write_config


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        assert fam.name.startswith("fedscan_")
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def test_lab_run_textfile_parses_with_the_real_parser(
    tmp_path: Path, lab: LabInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path / "fedscan.toml", lab, OWN + '[[partner]]\ndomain = "litware.test"\n')
    prom = tmp_path / "fedscan.prom"
    assert run(["monitor", "--config", str(cfg), *AT, "--prometheus-textfile", str(prom)]) == 2
    capsys.readouterr()
    text = prom.read_text()
    assert text.count("# TYPE fedscan_endpoint_up gauge\n") == 1
    got = samples(text)
    litware = {"domain": "litware.test", "service": "sip-federation", "target": "sip.litware.test",
               "address": f"{lab.net}.13"}
    assert (litware, 1.0) in got["fedscan_endpoint_up"]
    assert (litware, 2.0) in got["fedscan_endpoint_status"]
    # an expired certificate still has an expiry: 2021-01-01
    assert (litware, 1609459200.0) in got["fedscan_certificate_not_after_timestamp_seconds"]
    assert (litware, -3287.0) in got["fedscan_certificate_days_left"]
    assert ({**litware, "code": "expired", "severity": "critical"}, 1.0) in got["fedscan_finding"]
    assert ({"domain": "litware.test", "service": "xmpps-server", "target": "", "address": "",
             "code": "srv-missing", "severity": "info"}, 1.0) in got["fedscan_finding"]
    assert sorted(got["fedscan_endpoints"], key=lambda s: s[0]["status"]) == [
        ({"status": "CRITICAL"}, 2.0), ({"status": "OK"}, 8.0), ({"status": "UNKNOWN"}, 0.0),
        ({"status": "WARNING"}, 0.0),
    ]
    assert got["fedscan_run_status"] == [({}, 2.0)]
    assert got["fedscan_run_duration_seconds"][0][1] > 0
    assert got["fedscan_run_timestamp_seconds"][0][1] > 1.7e9
    assert len(got["fedscan_endpoint_status"]) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fedscan.prom", "fedscan.toml"]  # no temp left


def test_hostile_label_values_are_escaped_and_duplicates_counted() -> None:
    evil = 'x"y\\z\nw'
    e = endpoint("a.test", [finding("san-missing", "m1"), finding("san-missing", "m2")], target=evil)
    text = render(MonitorResult(report(domain("a.test", e))))
    got = samples(text)
    labels = {"domain": "a.test", "service": "sip-federation", "target": evil, "address": "192.0.2.10"}
    assert got["fedscan_finding"] == [({**labels, "code": "san-missing", "severity": "critical"}, 2.0)]
    assert got["fedscan_certificate_days_left"] == [(labels, 60.0)]


def test_endpoint_without_certificate_is_down_and_has_no_expiry() -> None:
    e = endpoint("a.test", [finding("connect-refused", "refused")], sha256=None)
    got = samples(render(MonitorResult(report(domain("a.test", e)))))
    assert [v for _, v in got["fedscan_endpoint_up"]] == [0.0]
    assert "fedscan_certificate_days_left" not in got


def test_write_is_atomic_replace(tmp_path: Path) -> None:
    path = tmp_path / "fedscan.prom"
    path.write_text("old\n")
    write_textfile(path, "# HELP fedscan_x x\n# TYPE fedscan_x gauge\nfedscan_x 1\n")
    assert path.read_text() == "# HELP fedscan_x x\n# TYPE fedscan_x gauge\nfedscan_x 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["fedscan.prom"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_dane_status_gauge_only_for_endpoints_with_tlsa() -> None:
    from dataclasses import replace

    from scanner.dane import DaneReport, DaneState, not_checked

    def with_dane(address: str, state: DaneState) -> EndpointResult:
        return replace(endpoint("a.test", address=address), dane=DaneReport(state))

    ends = [with_dane("192.0.2.1", DaneState.MATCH), with_dane("192.0.2.2", DaneState.MISMATCH),
            with_dane("192.0.2.3", DaneState.INSECURE), with_dane("192.0.2.4", DaneState.ERROR),
            with_dane("192.0.2.5", DaneState.NO_TLSA),
            replace(endpoint("a.test", address="192.0.2.6"), dane=not_checked())]
    got = samples(render(MonitorResult(report(domain("a.test", *ends)))))
    assert [(labels["address"], v) for labels, v in got["fedscan_dane_status"]] == [
        ("192.0.2.1", 0.0), ("192.0.2.2", 2.0), ("192.0.2.3", 1.0), ("192.0.2.4", 3.0),
    ]
