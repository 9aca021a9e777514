"""Interop: our XMPP s2s STARTTLS handshake against a real server, Debian's prosody.

The lab listeners are written by us, so they cannot prove that we speak s2s as real servers
do. This module starts ``prosody`` itself (never the system service) with its own config,
data, pidfile and log in a temporary directory, an s2s STARTTLS listener on a free loopback
port and one VirtualHost, ``contoso.test``, serving ``test-certs/edge.pem``.

Skipped (with its reason) only when the ``prosody`` binary is absent, and a failure then in CI as
root, where ``.ci/run`` installs it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import string
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from scanner.findings import Finding, Severity
from scanner.handshake import HandshakeResult, Target, handshake
from scanner.lab.process import stop as _stop
from scanner.names import Identity, IdentityKind
from scanner.trust import load_ca_file
from scanner.verify import Policy, verify_chain
from scanner.xmpp import DIALBACK_FEATURE_NS, TLS_NS
from tests.conftest import NOW, require_program

ROOT = Path(__file__).resolve().parent.parent
CERTS = ROOT / "test-certs"
CONFIG_TEMPLATE = Path(__file__).resolve().parent / "interop" / "prosody.cfg.lua.in"
LOOPBACK = "127.0.0.1"
DOMAIN = "contoso.test"
FROM_DOMAIN = "fedscan.test"
START_SECONDS = 15.0
HANDSHAKE_SECONDS = 10.0
STARTTLS = f"{{{TLS_NS}}}starttls"
DIALBACK = f"{{{DIALBACK_FEATURE_NS}}}dialback"



@dataclass(frozen=True)
class Prosody:
    port: int
    direct_port: int  # XEP-0368 direct TLS s2s
    workdir: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 40) -> str:
        """The end of prosody's own log and console output, for assertion messages."""
        parts = []
        for name in ("prosody.log", "console.log"):
            path = self.workdir / name
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {name} ---\n" + "\n".join(text))
        return "\n".join(parts)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _write_config(workdir: Path, port: int, direct_port: int) -> Path:
    certs = workdir / "certs"
    certs.mkdir(mode=0o700)
    (workdir / "data").mkdir(mode=0o750)
    cert = certs / f"{DOMAIN}.crt"
    key = certs / f"{DOMAIN}.key"
    shutil.copyfile(CERTS / "edge.pem", cert)  # leaf + intermediate, SAN covers contoso.test
    shutil.copyfile(CERTS / "edge.key", key)
    cert.chmod(0o644)
    key.chmod(0o600)  # prosody (via LuaSec/OpenSSL) reads it as its own user: root in CI
    template = string.Template(CONFIG_TEMPLATE.read_text())
    config = workdir / "prosody.cfg.lua"
    config.write_text(template.substitute(workdir=str(workdir), s2s_port=port,
                                          s2s_direct_port=direct_port))
    return config



def _wait_until_listening(server: Prosody) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"prosody exited with status {server.process.returncode} before listening\n"
                        f"{server.log_tail()}")
        try:
            for port in (server.port, server.direct_port):
                with socket.create_connection((LOOPBACK, port), timeout=0.5):
                    pass
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"prosody did not listen on {LOOPBACK}:{server.port} within {START_SECONDS} s\n"
                f"{server.log_tail()}")


@pytest.fixture(scope="module")
def prosody(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prosody]:
    binary = require_program("prosody", "prosody")
    workdir = tmp_path_factory.mktemp("prosody")
    workdir.chmod(0o700)
    port, direct_port = _free_port(), _free_port()
    while direct_port == port:
        direct_port = _free_port()
    config = _write_config(workdir, port, direct_port)
    with running(binary, config, port, direct_port) as server:
        yield server


@contextlib.contextmanager
def running(binary: str, config: Path, port: int, direct_port: int) -> Iterator[Prosody]:
    """Prosody with ``config`` (in its own directory, which is its HOME and holds its log),
    listening on ``port`` and ``direct_port``; stopped on the way out."""
    workdir = config.parent
    with (workdir / "console.log").open("wb") as console:
        # -F: foreground, so that this process *is* prosody and can be stopped by its pid.
        process = subprocess.Popen(
            [binary, "-F", "--config", str(config)], cwd=workdir, stdin=subprocess.DEVNULL,
            stdout=console, stderr=subprocess.STDOUT, env={**os.environ, "HOME": str(workdir)},
        )
    server = Prosody(port, direct_port, workdir, process)
    try:
        _wait_until_listening(server)
        yield server
    finally:
        _stop(process)


def _target(server: Prosody, xmpp_domain: str) -> Target:
    return Target(service="xmpp-server", host=DOMAIN, port=server.port, address=LOOPBACK,
                  xmpp_domain=xmpp_domain)


def _describe(result: HandshakeResult, server: Prosody) -> str:
    return f"failure={result.failure!r} tls={result.tls!r}\n{server.log_tail()}"


def _edge_leaf_der() -> bytes:
    leaf = x509.load_pem_x509_certificates((CERTS / "edge.pem").read_bytes())[0]
    return leaf.public_bytes(Encoding.DER)


async def test_starttls_handshake_with_prosody(prosody: Prosody) -> None:
    result = await handshake(_target(prosody, DOMAIN), timeout=HANDSHAKE_SECONDS,
                             from_domain=FROM_DOMAIN)

    assert result.failure is None, _describe(result, prosody)
    assert result.chain, _describe(result, prosody)
    assert result.chain[0] == _edge_leaf_der()
    assert len(result.chain) == 2  # prosody serves the whole file: leaf, then intermediate
    assert result.tls is not None
    assert result.tls.version in {"TLSv1.2", "TLSv1.3"}
    # Prosody 0.12 offers STARTTLS (<required/> under s2s_require_encryption) and dialback.
    assert STARTTLS in result.xmpp_features
    assert result.starttls_required is True
    assert DIALBACK in result.xmpp_features
    # mod_tls asks every s2s peer for a certificate (verify = { "peer", "client_once" }) but
    # does not insist: without one it falls back to dialback, so the handshake completes.
    assert result.tls.client_cert_requested
    assert not result.tls.client_cert_sent


async def test_prosody_chain_verifies(prosody: Prosody) -> None:
    result = await handshake(_target(prosody, DOMAIN), timeout=HANDSHAKE_SECONDS,
                             from_domain=FROM_DOMAIN)
    assert result.failure is None, _describe(result, prosody)

    # Judged at the corpus's reference time, never the real clock (the leaf ends in 2040: a
    # test on the clock would start failing then).
    verdict = verify_chain(result.chain, [Identity(DOMAIN, IdentityKind.XMPP_DOMAIN)], Policy(),
                           load_ca_file(CERTS / "ca-bundle.pem"), NOW)

    problems: list[Finding] = [f for f in verdict.findings if f.severity is not Severity.INFO]
    assert problems == [], [f.to_json() for f in problems]
    assert verdict.trusted


async def test_prosody_rejects_unknown_host(prosody: Prosody) -> None:
    result = await handshake(_target(prosody, "unknown.test"), timeout=HANDSHAKE_SECONDS,
                             from_domain=FROM_DOMAIN)

    # mod_s2s answers a stream header whose 'to' it does not serve with its own header and
    # <stream:error><host-unknown/><text>This host does not serve unknown.test</text>, then
    # closes (RFC 6120 4.9.3.6): no features, so no STARTTLS and no certificate at all.
    assert result.failure is not None, _describe(result, prosody)
    assert result.failure.code == "stream-error", _describe(result, prosody)
    assert result.failure.details["condition"] == "host-unknown"
    assert result.failure.details["text"] == "This host does not serve unknown.test"
    assert result.chain == ()
    assert result.tls is None
    assert result.xmpp_features == ()


def _direct_target(server: Prosody, xmpp_domain: str) -> Target:
    return Target(service="xmpps-server", host=DOMAIN, port=server.direct_port, address=LOOPBACK,
                  xmpp_domain=xmpp_domain)


async def test_direct_tls_handshake_with_prosody(prosody: Prosody) -> None:
    result = await handshake(_direct_target(prosody, DOMAIN), timeout=HANDSHAKE_SECONDS,
                             from_domain=FROM_DOMAIN)
    assert result.failure is None, _describe(result, prosody)
    assert result.chain[0] == _edge_leaf_der()
    assert result.xmpp_features == ()  # TLS first: no STARTTLS negotiation


async def test_direct_tls_unknown_name_is_tls_name_unrecognized(prosody: Prosody) -> None:
    # On the direct TLS port prosody picks the certificate by SNI, and for a name it does not
    # serve it ends the handshake with the unrecognized_name alert.
    result = await handshake(_direct_target(prosody, "unknown.test"), timeout=HANDSHAKE_SECONDS,
                             from_domain=FROM_DOMAIN)
    assert result.failure is not None, _describe(result, prosody)
    assert result.failure.code == "tls-name-unrecognized", _describe(result, prosody)
    assert result.failure.details == {"alert": "unrecognized_name", "sni": "unknown.test"}
