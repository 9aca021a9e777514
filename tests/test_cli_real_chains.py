"""`fedscan cert` on public chains as they are really served (issue 11): the exact codes,
severities and exit codes, with --client-auth required and optional, and a quiet stderr."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scanner.cli import run
from scanner.findings import CODES
from scanner.lab.zones import OWN_EDGE_ARGS
from tests.conftest import CERTS

LAB = ["--ca-file", str(CERTS / "ca-bundle.pem"), "--at", "2030-01-01T00:00:00Z", *OWN_EDGE_ARGS]


def findings(capsys: pytest.CaptureFixture[str], name: str, *extra: str) -> tuple[int, list[tuple[str, str]]]:
    code = run(["cert", str(CERTS / name), *LAB, *extra, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    [file] = doc["files"]
    return code, sorted((f["code"], f["severity"]) for f in file["findings"])


@pytest.mark.parametrize(
    ("name", "extra", "exit_code", "expected"),
    [
        ("serverauth-ca.pem", (), 2, [("chain-client-auth-not-permitted", "critical")]),
        (
            "serverauth-ca.pem",
            ("--client-auth", "optional"),
            1,
            [("chain-client-auth-not-permitted", "warning")],
        ),
        ("expired-cross-sign.pem", (), 1, [("chain-unused-expired", "warning")]),
        ("sha1-intermediate.pem", (), 2, [("weak-signature", "critical")]),
        ("sha1.pem", (), 2, [("weak-signature", "critical")]),
        ("ca-leaf.pem", (), 2, [("leaf-is-ca", "critical")]),
        ("zero-serial.pem", (), 0, [("serial-not-positive", "info")]),
        (
            "fractional-notafter.pem",
            (),
            2,
            [("expired", "critical"), ("validity-fractional-seconds", "warning")],
        ),
    ],
)
def test_cert_reports_exactly(
    capsys: pytest.CaptureFixture[str],
    name: str,
    extra: tuple[str, ...],
    exit_code: int,
    expected: list[tuple[str, str]],
) -> None:
    assert findings(capsys, name, *extra) == (exit_code, expected)


def cert_in_a_process(name: str) -> subprocess.CompletedProcess[str]:
    """``fedscan cert NAME`` as its own process: what reaches stderr is only seen that way."""
    return subprocess.run([sys.executable, "-m", "scanner", "cert", str(CERTS / name), *LAB],
                          capture_output=True, text=True, check=False)


def test_zero_serial_leaves_stderr_to_fedscan() -> None:
    proc = cert_in_a_process("zero-serial.pem")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "serial-not-positive" in proc.stdout


def test_fractional_notafter_reads_expired_today_in_the_table() -> None:
    proc = cert_in_a_process("fractional-notafter.pem")
    assert (proc.returncode, proc.stderr) == (2, "")
    assert "CRITICAL expired" in proc.stdout and "the certificate expired today" in proc.stdout
    assert "(expired)" in proc.stdout and "days ago" not in proc.stdout and "-1 days" not in proc.stdout


NEW_CODES = {
    "chain-client-auth-not-permitted": "critical",
    "chain-unused-expired": "warning",
    "leaf-is-ca": "critical",
    "leaf-profile-violation": "warning",
    "serial-not-positive": "info",
    "validity-fractional-seconds": "warning",
    "weak-signature": "critical",
}


def test_codes_lists_the_new_codes_in_one_column(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["codes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    column = max(len(code) for code in CODES) + 1  # the longest code sets the column
    listed = {line.split()[0]: line for line in lines if line and not line.startswith(" ")}
    for code, severity in NEW_CODES.items():
        assert listed[code][column : column + len(severity)] == severity, code
    assert run(["codes", "chain-client-auth-not-permitted"]) == 0
    out = capsys.readouterr().out
    assert "What to do:" in out and "serverAuth-only" in " ".join(out.split())
