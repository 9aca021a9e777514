"""Interop: a partner's SIP edge that requires and verifies client certificates, Debian's kamailio.

The lab's partners are written by us, so they cannot prove that our acceptance probe reads a
real SIP server's verdict. This module starts ``kamailio`` itself (never the system service)
with its own config, pidfile and runtime directory in a temporary directory: TLS only on a
free loopback port, ``require_certificate = yes`` and ``verify_certificate = yes`` against the
corpus root, OPTIONS answered 200 for ``From: contoso.test`` and 403 with an ``ms-diagnostics``
header otherwise. Each test is a real ``fedscan scan --endpoint ...`` (no DNS).

Skipped when ``kamailio`` or its TLS module is absent, except in CI as root (``.ci/run``
installs ``kamailio`` and ``kamailio-tls-modules``), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import string
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scanner.cli import run
from scanner.lab.process import stop as _stop
from tests.conftest import CERTS, require_program

INTEROP = Path(__file__).resolve().parent / "interop"
LOOPBACK = "127.0.0.1"
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
START_SECONDS = 15.0
SNI = "sip.contoso.test"  # the kamailio listener serves test-certs/edge.pem, which covers it


@dataclass(frozen=True)
class Kamailio:
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "kamailio.log"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return "--- kamailio.log ---\n" + "\n".join(text)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _modules_dir() -> Path:
    if (MODULES / "tls.so").exists():
        return MODULES
    found = next(Path("/usr/lib").glob("*/kamailio/modules/tls.so"), None)
    if found is not None:
        return found.parent
    reason = "kamailio's TLS module is not installed (.ci/run installs kamailio-tls-modules)"
    if os.environ.get("CI") == "true" and os.geteuid() == 0:
        pytest.fail(f"{reason}, yet this is CI as root, where .ci/run should have installed it")
    pytest.skip(reason)


def _write_config(workdir: Path, port: int, modules: Path) -> Path:
    shutil.copyfile(CERTS / "edge.pem", workdir / "server.pem")
    shutil.copyfile(CERTS / "edge.key", workdir / "server.key")
    (workdir / "server.key").chmod(0o600)
    shutil.copyfile(CERTS / "ca-bundle.pem", workdir / "ca.pem")
    values = {"workdir": str(workdir), "tls_port": port, "mpath": f"{modules}/"}
    (workdir / "tls.cfg").write_text(
        string.Template((INTEROP / "kamailio-tls.cfg.in").read_text()).substitute(values))
    config = workdir / "kamailio.cfg"
    config.write_text(string.Template((INTEROP / "kamailio.cfg.in").read_text()).substitute(values))
    return config



@pytest.fixture(scope="module")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    binary = require_program("kamailio", "kamailio")
    modules = _modules_dir()
    workdir = tmp_path_factory.mktemp("kamailio")
    workdir.chmod(0o700)
    (workdir / "run").mkdir()
    port = _free_port()
    config = _write_config(workdir, port, modules)
    with (workdir / "kamailio.log").open("wb") as log:
        # -DD: stay in the foreground as this very process; -E: log to stderr (our file);
        # -Y: runtime directory (control sockets) inside workdir, never /run/kamailio.
        process = subprocess.Popen(
            [binary, "-f", str(config), "-DD", "-E", "-m", "64", "-M", "8",
             "-P", str(workdir / "kamailio.pid"), "-Y", str(workdir / "run"), "-w", str(workdir)],
            cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    server = Kamailio(port, workdir, process)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"kamailio exited with {process.returncode}\n{server.log_tail()}")
            try:
                with socket.create_connection((LOOPBACK, port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"kamailio did not listen within {START_SECONDS} s\n{server.log_tail()}")
                time.sleep(0.1)
        yield server
    finally:
        _stop(process)


def scan(capsys: pytest.CaptureFixture[str], server: Kamailio, *args: str) -> tuple[int, dict[str, Any]]:
    code = run(["scan", "--endpoint", f"sip-federation={LOOPBACK}:{server.port}", "--sni", SNI,
                "--ca-file", str(CERTS / "ca-bundle.pem"), "--timeout", "5", "--format", "json", *args])
    doc = json.loads(capsys.readouterr().out)
    return code, doc


def the_endpoint(doc: dict[str, Any]) -> dict[str, Any]:
    (domain,) = doc["domains"]
    (endpoint,) = domain["endpoints"]
    result: dict[str, Any] = endpoint
    return result


def test_kamailio_accepts_our_edge_certificate(capsys: pytest.CaptureFixture[str],
                                               kamailio: Kamailio) -> None:
    code, doc = scan(capsys, kamailio, "--as-edge", str(CERTS / "edge.pfx"), "--password", "fedscan",
                     "--sip-domain", "contoso.test")
    e = the_endpoint(doc)
    assert code == 0, (e["findings"], kamailio.log_tail())
    assert e["findings"] == []
    acceptance = e["acceptance"]
    assert acceptance["verdict"] == "accepted", kamailio.log_tail()
    assert acceptance["tls"]["verdict"] == "accepted"
    assert acceptance["sip"]["status"] == 200
    assert acceptance["sip"]["reason"] == "OK"
    assert acceptance["sip"]["from"] == "contoso.test"
    assert e["tls"]["client_certificate_requested"] and e["tls"]["client_certificate_sent"]


def test_kamailio_refuses_our_domain_with_403_and_ms_diagnostics(
        capsys: pytest.CaptureFixture[str], kamailio: Kamailio) -> None:
    code, doc = scan(capsys, kamailio, "--as-edge", str(CERTS / "edge.pfx"), "--password", "fedscan",
                     "--sip-domain", "fabrikam.test")
    e = the_endpoint(doc)
    assert code == 2, kamailio.log_tail()
    (f,) = e["findings"]
    assert f["code"] == "sip-options-refused" and f["severity"] == "critical"
    assert (f["details"]["status"], f["details"]["reason"]) == (403, "Forbidden")
    assert f["details"]["ms_diagnostics"] == {
        "code": 1034, "reason": "Previous hop federated peer did not report diagnostic information",
        "source": "sip.kamailio.test"}
    assert e["acceptance"]["tls"]["verdict"] == "accepted"


@pytest.mark.parametrize(("cert", "alert"), [
    ("untrusted", "unknown_ca"),
    ("leaf-only", "unknown_ca"),
    ("expired", "certificate_expired"),
    ("serverauth-only", "unsupported_certificate"),
])
def test_kamailio_rejects_our_certificate_with_the_alert(
        capsys: pytest.CaptureFixture[str], kamailio: Kamailio, cert: str, alert: str) -> None:
    code, doc = scan(capsys, kamailio, "--client-cert", str(CERTS / f"{cert}.pem"),
                     "--client-key", str(CERTS / f"{cert}.key"), "--from-domain", "contoso.test")
    e = the_endpoint(doc)
    assert code == 2, kamailio.log_tail()
    rejected = [f for f in e["findings"] if f["code"] == "client-certificate-rejected"]
    assert len(rejected) == 1, (e["findings"], kamailio.log_tail())
    assert rejected[0]["details"]["alert"] == alert
    assert e["acceptance"]["verdict"] == "refused"
    assert e["acceptance"]["tls"]["alert"] == alert
    assert not any(f["code"] == "tls-handshake-failed" for f in e["findings"])


def test_kamailio_without_our_certificate_is_client_certificate_required(
        capsys: pytest.CaptureFixture[str], kamailio: Kamailio) -> None:
    code, doc = scan(capsys, kamailio)
    e = the_endpoint(doc)
    assert [f["code"] for f in e["findings"]] == ["client-certificate-required"], kamailio.log_tail()
    assert e["acceptance"] is None
    assert code == 1
