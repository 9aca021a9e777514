"""The readiness verdict agrees with the findings: its status is the worst severity of what it
lists, and its sentence names what is missing in plain words, each once."""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import pytest

from scanner.cli import run
from scanner.lab.thread import lab_in_thread
from scanner.lab.zones import default_world
from tests.conftest import CERTS, lab_net
from tests.test_monitor import AT, OWN, write_config


def verdict_line(md: str) -> str:
    return next(line for line in md.splitlines() if line.startswith("**"))


def no_repeated_words(text: str) -> bool:
    words = re.findall(r"[a-z]+", text.lower())
    return all(a != b for a, b in itertools.pairwise(words)) and "(required)" not in text


def test_an_edge_whose_only_problem_is_a_missing_crl_point_is_ready_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = default_world()
    listeners = tuple(dataclasses.replace(x, cert="lab/edge-no-crl") if x.cert == "edge" else x
                      for x in world.listeners)
    md, page = tmp_path / "r.md", tmp_path / "r.html"
    with lab_in_thread(net=lab_net(46), world=dataclasses.replace(world, listeners=listeners)) as lab:
        cfg = write_config(tmp_path / "fedscan.toml", lab, OWN)
        code = run(["readiness", "--config", str(cfg), *AT, "--markdown", str(md), "--html", str(page)])
    assert code == 1  # WARNING, as every endpoint's no-crl-distribution-point finding
    assert capsys.readouterr().out.splitlines()[0] == (
        "READY: every required name, usage and record is in place; 1 warning to review: "
        "no CRL distribution point"
    )
    text = md.read_text()
    assert verdict_line(text) == (
        "**READY** (WARNING): every required name, usage and record is in place; 1 warning to review: "
        "no CRL distribution point"
    )
    assert "| CRL distribution point | required | Lync/SfB check revocation | missing (warning) |  |" in text
    assert "### WARNING: no-crl-distribution-point" in text
    doc = page.read_text()
    assert '<p class="verdict ready v-WARNING"><strong>READY</strong> (WARNING):' in doc
    assert '<td data-label="State" class="nw missing WARNING">missing (warning)</td>' in doc


@pytest.mark.parametrize(("file", "exit_code", "verdict"), [
    ("no-crl.pem", 1, "**READY** (WARNING): every required name and usage is in the certificate; DNS "
     "records and endpoints were not checked; 1 warning to review: no CRL distribution point"),
    ("sha1.pem", 2, "**NOT READY** (CRITICAL): the certificate needs a supported signature"),  # a SHA-1 leaf
    ("expires-soon-warning.pem", 1, "**READY** (WARNING): every required name and usage is in the "
     "certificate; DNS records and endpoints were not checked; 1 warning to review: the certificate "
     "expires soon"),
    ("expires-soon-critical.pem", 2, "**NOT READY** (CRITICAL): the certificate needs a valid date range"),
    ("expired.pem", 2, "**NOT READY** (CRITICAL): the certificate needs a valid date range"),
    ("rsa1024.pem", 2, "**NOT READY** (CRITICAL): the certificate needs a strong key"),
    ("pss.pem", 2, "**NOT READY** (CRITICAL): the certificate needs a supported signature"),
    ("untrusted.pem", 2, "**NOT READY** (CRITICAL): the certificate needs a trusted chain"),
    ("serverauth-only.pem", 2, "**NOT READY** (CRITICAL): the certificate lacks 1 required entry "
     "(clientAuth)"),
    ("missing-webcon.pem", 2, "**NOT READY** (CRITICAL): the certificate lacks 1 required entry "
     "(webcon.contoso.test)"),
])
def test_offline_verdict_status_is_the_worst_severity_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, exit_code: int, verdict: str
) -> None:
    cfg = tmp_path / "fedscan.toml"
    cfg.write_text(OWN + f'[scan]\nca_file = "{CERTS / "ca-bundle.pem"}"\n')
    assert run(["readiness", "--config", str(cfg), *AT, "--cert", str(CERTS / file)]) == exit_code
    line = verdict_line(capsys.readouterr().out)
    assert line == verdict
    assert no_repeated_words(line)


def test_client_auth_optional_makes_a_missing_client_auth_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "fedscan.toml"
    cfg.write_text(OWN + f'client_auth = "optional"\n[scan]\nca_file = "{CERTS / "ca-bundle.pem"}"\n')
    assert run(["readiness", "--config", str(cfg), *AT, "--cert", str(CERTS / "serverauth-only.pem")]) == 1
    out = capsys.readouterr().out
    assert verdict_line(out) == (
        "**READY** (WARNING): every required name and usage is in the certificate; DNS records and "
        "endpoints were not checked; 1 warning to review: no clientAuth EKU"
    )
    assert ("| EKU | clientAuth | advised (client\\_auth = optional) | missing (warning) "
            "| EKU is serverAuth |") in out
