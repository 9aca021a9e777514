"""Interop: prosody as a partner judging *our* certificate (s2s SASL EXTERNAL, XEP-0178).

Debian's prosody is started by the test (never the system service) with its own config in a
temporary directory: one VirtualHost, adventureworks.test, trusting only the corpus root for peer
certificates. Prosody does not end TLS over an untrusted peer certificate; it judges it at the
XMPP level: it offers SASL EXTERNAL only to a peer whose chain and identity are valid, and
for a domain that must authenticate by certificate (``s2s_secure_domains``: fabrikam.test)
it closes the restarted stream with ``<not-authorized/>`` and a text such as "Your server's
certificate has expired". Each test is a real ``fedscan scan --endpoint ...`` (no DNS).

Skipped when prosody is absent, except in CI as root (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import shutil
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.cli import run
from scanner.lab.pki import lab_pki
from tests.conftest import CERTS, require_program
from tests.test_interop_prosody import Prosody, _free_port, running

TEMPLATE = Path(__file__).resolve().parent / "interop" / "prosody-certauth.cfg.lua.in"
LOOPBACK = "127.0.0.1"
PARTNER = "adventureworks.test"


@pytest.fixture(scope="module")
def prosody(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prosody]:
    binary = require_program("prosody", "prosody")
    workdir = tmp_path_factory.mktemp("prosody-certauth")
    workdir.chmod(0o700)
    certs = workdir / "certs"
    certs.mkdir(mode=0o700)
    (workdir / "data").mkdir(mode=0o750)
    pki = lab_pki()  # adventureworks.test's own certificate comes from the lab's PKI ...
    shutil.copyfile(pki.chain("lab/adventureworks"), certs / f"{PARTNER}.crt")
    shutil.copyfile(pki.key("lab/adventureworks"), certs / f"{PARTNER}.key")
    (certs / f"{PARTNER}.key").chmod(0o600)
    # ... and it trusts the corpus root for its peers: the certificates we present below
    shutil.copyfile(CERTS / "ca-bundle.pem", certs / "ca.pem")
    port = _free_port()
    config = workdir / "prosody.cfg.lua"
    config.write_text(string.Template(TEMPLATE.read_text()).substitute(workdir=str(workdir),
                                                                        s2s_port=port))
    with running(binary, config, port, port) as server:
        yield server


def scan(capsys: pytest.CaptureFixture[str], server: Prosody, *args: str) -> tuple[int, dict[str, Any]]:
    code = run(["scan", "--endpoint", f"xmpp-server={LOOPBACK}:{server.port}", "--sni", PARTNER,
                "--ca-file", str(lab_pki().ca_file), "--timeout", "8", "--format", "json", *args])
    doc = json.loads(capsys.readouterr().out)
    (domain,) = doc["domains"]
    (endpoint,) = domain["endpoints"]
    return code, endpoint


def present(name: str, from_domain: str) -> list[str]:
    if name == "edge.pfx":
        return ["--as-edge", str(CERTS / name), "--password", "fedscan", "--xmpp-domain", from_domain]
    return ["--client-cert", str(CERTS / f"{name}.pem"), "--client-key", str(CERTS / f"{name}.key"),
            "--from-domain", from_domain]


def test_prosody_accepts_our_certificate_with_sasl_external(
        capsys: pytest.CaptureFixture[str], prosody: Prosody) -> None:
    code, e = scan(capsys, prosody, *present("edge.pfx", "contoso.test"))
    assert e["acceptance"]["xmpp"]["sasl"] == "success", prosody.log_tail()
    assert e["acceptance"]["xmpp"]["sasl_external_offered"] is True
    assert e["acceptance"]["verdict"] == "accepted"
    assert e["findings"] == [] and code == 0
    assert e["tls"]["client_certificate_requested"] and e["tls"]["client_certificate_sent"]


def test_prosody_secure_domain_accepts_a_valid_certificate(
        capsys: pytest.CaptureFixture[str], prosody: Prosody) -> None:
    code, e = scan(capsys, prosody, *present("edge.pfx", "fabrikam.test"))
    assert e["acceptance"]["xmpp"]["sasl"] == "success", prosody.log_tail()
    assert code == 0


def test_prosody_does_not_offer_external_to_an_untrusted_certificate(
        capsys: pytest.CaptureFixture[str], prosody: Prosody) -> None:
    code, e = scan(capsys, prosody, *present("untrusted", "contoso.test"))
    xmpp = e["acceptance"]["xmpp"]
    assert (xmpp["sasl_external_offered"], xmpp["dialback_offered"]) == (False, True), prosody.log_tail()
    (f,) = [f for f in e["findings"] if f["code"] == "xmpp-cert-auth-refused"]
    assert f["severity"] == "warning"  # dialback remains: federation may work, not by certificate
    assert e["acceptance"]["tls"]["verdict"] == "accepted"  # prosody judges at the XMPP level
    assert code == 1


def test_prosody_secure_domain_refuses_an_expired_certificate_with_not_authorized(
        capsys: pytest.CaptureFixture[str], prosody: Prosody) -> None:
    code, e = scan(capsys, prosody, *present("expired", "fabrikam.test"))
    xmpp = e["acceptance"]["xmpp"]
    assert xmpp["condition"] == "not-authorized", prosody.log_tail()
    assert xmpp["text"] == "Your server's certificate has expired"
    (f,) = [f for f in e["findings"] if f["code"] == "xmpp-cert-auth-refused"]
    assert f["severity"] == "critical"  # no features, hence no dialback offered
    assert f["details"]["text"] == "Your server's certificate has expired"
    assert code == 2
