"""examples/prometheus-alerts.yml: valid for Prometheus (`promtool check rules`, Debian's
``prometheus`` package), and built only from metrics and finding codes fedscan really writes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from scanner.cli import run
from scanner.findings import CODES
from scanner.lab.run import LabInfo
from tests.conftest import ROOT, require_program

RULES = ROOT / "examples" / "prometheus-alerts.yml"
AT = ["--at", "2030-01-01T00:00:00Z"]
# the partner's verdict on our certificate (fedscan scan --as-edge, [acceptance]): what the
# FedscanPartnerRejectsOurCertificate rule matches
ACCEPTANCE_CODES = {"client-certificate-rejected", "xmpp-cert-auth-refused"}


def expressions() -> list[str]:
    return re.findall(r"^\s+expr: (.+)$", RULES.read_text(), re.M)


def test_promtool_accepts_the_rules() -> None:
    promtool = require_program("promtool", "prometheus")
    proc = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 8 rules found" in proc.stdout


def test_every_metric_a_rule_uses_is_in_the_textfile(lab: LabInfo, tmp_path: Path) -> None:
    cfg = tmp_path / "fedscan.toml"
    partners = "".join(f'[[partner]]\ndomain = "{d.domain}"\n' for d in lab.domains
                       if d.domain not in ("contoso.test", "fabrikam.test"))
    cfg.write_text('[deployment]\nsip_domains = ["contoso.test", "fabrikam.test"]\n'
                   'xmpp_domains = ["contoso.test", "fabrikam.test"]\nextra_sans = ["webcon.contoso.test"]\n'
                   f'{partners}[scan]\nnameservers = ["{lab.nameserver}"]\nca_file = "{lab.ca_file}"\n')
    prom = tmp_path / "fedscan.prom"
    assert run(["monitor", "--config", str(cfg), *AT, "--prometheus-textfile", str(prom)]) == 2
    written = set(re.findall(r"^# TYPE (\S+) ", prom.read_text(), re.M))
    used = {m for expr in expressions() for m in re.findall(r"\bfedscan_[a-z_]+\b", expr)}
    assert used == {"fedscan_certificate_days_left", "fedscan_endpoint_status", "fedscan_finding",
                    "fedscan_dane_status", "fedscan_run_timestamp_seconds"}
    assert used <= written, used - written
    # and the labels the annotations name are the labels those metrics carry
    labels = set(re.findall(r"\$labels\.(\w+)", RULES.read_text()))
    carried = set(re.findall(r"(\w+)=\"", prom.read_text())) | {"instance"}  # instance: Prometheus's
    assert labels <= carried, labels - carried


def test_every_finding_code_a_rule_matches_exists() -> None:
    codes = {c for expr in expressions() for m in re.findall(r'code=~?"([^"]+)"', expr)
             for c in m.split("|")}
    assert codes <= set(CODES), codes - set(CODES)
    assert codes >= ACCEPTANCE_CODES


def test_the_rules_fire_on_fedscan_output(lab: LabInfo, tmp_path: Path) -> None:
    """`promtool test rules` over series taken from a real textfile: litware's expired endpoint
    raises the critical expiry and endpoint alerts with the text an operator reads; contoso's
    healthy one raises nothing; an old run timestamp raises FedscanScanStale."""
    import json

    from prometheus_client.parser import text_string_to_metric_families

    promtool = require_program("promtool", "prometheus")
    cfg = tmp_path / "fedscan.toml"
    cfg.write_text('[[partner]]\ndomain = "litware.test"\n[[partner]]\ndomain = "contoso.test"\n'
                   f'[scan]\nnameservers = ["{lab.nameserver}"]\nca_file = "{lab.ca_file}"\n')
    prom = tmp_path / "fedscan.prom"
    run(["monitor", "--config", str(cfg), *AT, "--prometheus-textfile", str(prom)])
    samples = {(s.name, s.labels.get("target"), s.labels.get("service"), s.labels.get("address")): s
               for f in text_string_to_metric_families(prom.read_text()) for s in f.samples}
    bad = samples[("fedscan_certificate_days_left", "sip.litware.test", "sip-federation",
                   next(k[3] for k in samples if k[1] == "sip.litware.test"))]
    good = next(s for k, s in samples.items()
                if k[0] == "fedscan_certificate_days_left" and k[1] == "sip.contoso.test")

    def series(name: str, labels: dict[str, str], value: float) -> dict[str, str]:
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return {"series": f"{name}{{{text}}}", "values": f"{value:g}x20"}

    where = {k: bad.labels[k] for k in ("domain", "service", "target", "address")}
    days = int(bad.value)
    spec = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                series("fedscan_certificate_days_left", bad.labels, bad.value),
                series("fedscan_endpoint_status", bad.labels, 2),
                series("fedscan_certificate_days_left", good.labels, good.value),
                {"series": "fedscan_run_timestamp_seconds", "values": "0x500"},
            ],
            "alert_rule_test": [
                {"eval_time": "5m", "alertname": "FedscanCertificateExpiringCritical", "exp_alerts": [{
                    "exp_labels": {"severity": "critical", **where},
                    "exp_annotations": {
                        "summary": f"Federation certificate on sip.litware.test: {days} days left",
                        "description": f"litware.test sip-federation sip.litware.test [{where['address']}]: "
                                       f"the certificate ends in {days} days (negative: it has expired). "
                                       "Federation breaks when it does."}}]},
                {"eval_time": "5m", "alertname": "FedscanCertificateExpiring", "exp_alerts": []},
                {"eval_time": "5m", "alertname": "FedscanScanStale", "exp_alerts": []},
                {"eval_time": "7h", "alertname": "FedscanScanStale", "exp_alerts": [{
                    "exp_labels": {"severity": "warning"},
                    "exp_annotations": {
                        "summary": "fedscan has not run for 7h 0m 0s",
                        "description": "The last fedscan monitor run on  finished 7h 0m 0s ago (cron runs "
                                       "it every 4 hours): check the timer or cron job and its mail."}}]},
            ],
        }],
    }
    assert days < 0 and good.value > 30
    test_file = tmp_path / "rules-test.json"  # YAML is a superset of JSON
    test_file.write_text(json.dumps(spec))
    proc = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
