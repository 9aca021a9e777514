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
# acceptance codes (issue 12: the partner's verdict on our certificate) that the
# FedscanPartnerRejectsOurCertificate rule matches; registered once that work lands on main
PENDING_ACCEPTANCE_CODES = {"client-certificate-rejected", "xmpp-cert-auth-refused"}


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
    assert codes == PENDING_ACCEPTANCE_CODES | (codes & set(CODES))
    assert codes - set(CODES) <= PENDING_ACCEPTANCE_CODES
