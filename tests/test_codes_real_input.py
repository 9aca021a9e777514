"""Finding codes that no other test reached from real input: each made here from a real file
(a certificate, a CSR, a PFX) or a real connection, through the command a user runs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scanner.cli import run
from scanner.handshake import Target, handshake
from tests.conftest import CERTS, lab_net

AT = ["--at", "2030-01-01T00:00:00Z"]
LAB = ["--ca-file", str(CERTS / "ca-bundle.pem"), *AT]


def cert_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = run(["cert", *args, "--format", "json"])
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    return code, doc


def findings_of(doc: dict[str, object]) -> list[tuple[str, str]]:
    files = doc["files"]
    assert isinstance(files, list)
    return sorted((f["code"], f["severity"]) for f in files[0]["findings"])


def _issuer() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    cert = x509.load_pem_x509_certificate((CERTS / "intermediate.pem").read_bytes())
    key = serialization.load_pem_private_key((CERTS / "intermediate.key").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return cert, key


def _leaf(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, *, san: bool) -> x509.Certificate:
    issuer, issuer_key = _issuer()
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sip.contoso.test")]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(4242)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2035, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier("http://crl.contoso.test/i.crl")], None, None, None)]),
            critical=False)
    )
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("sip.contoso.test")]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def test_a_certificate_without_subject_alt_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    leaf = _leaf(rsa.generate_private_key(65537, 2048), san=False)
    path = tmp_path / "nosan.pem"
    path.write_bytes(_pem(leaf, _issuer()[0]))
    code, doc = cert_json(capsys, str(path), *LAB)
    assert code == 2
    # the web PKI profile requires a SAN too (leaf-profile-violation); the CN cannot be in a SAN
    # that does not exist
    assert findings_of(doc) == [("cn-not-in-san", "warning"), ("leaf-profile-violation", "warning"),
                                ("san-extension-missing", "critical")]


def test_a_weak_elliptic_curve_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    leaf = _leaf(ec.generate_private_key(ec.SECP192R1()), san=True)
    path = tmp_path / "p192.pem"
    path.write_bytes(_pem(leaf, _issuer()[0]))
    code, doc = cert_json(capsys, str(path), *LAB)
    assert code == 2
    assert findings_of(doc) == [("ecdsa-key", "info"), ("leaf-profile-violation", "warning"),
                                ("weak-key", "critical")]


def test_a_csr_whose_signature_does_not_verify(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    der = bytearray(x509.load_pem_x509_csr((CERTS / "edge.csr").read_bytes()).public_bytes(
        serialization.Encoding.DER))
    der[-1] ^= 0xFF  # the last byte of the signature BIT STRING
    path = tmp_path / "tampered.csr"
    path.write_bytes(bytes(der))
    code, doc = cert_json(capsys, str(path))
    assert code == 2
    assert ("csr-signature-invalid", "critical") in findings_of(doc)


def test_a_pfx_whose_key_belongs_to_another_certificate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    edge = x509.load_pem_x509_certificate((CERTS / "edge.pem").read_bytes())
    other = serialization.load_pem_private_key((CERTS / "expired.key").read_bytes(), None)
    assert isinstance(other, rsa.RSAPrivateKey)
    # cryptography (like openssl pkcs12 -export) refuses to pair them; a PFX whose key and
    # certificates are not linked, as some export tools write, holds the same mistake
    blob = pkcs12.serialize_key_and_certificates(
        b"edge", other, None, [edge, _issuer()[0]], serialization.BestAvailableEncryption(b"pw"))
    path = tmp_path / "mismatch.pfx"
    path.write_bytes(blob)
    code, doc = cert_json(capsys, str(path), "--password", "pw", *LAB)
    assert code == 2
    assert ("pfx-key-mismatch", "critical") in findings_of(doc)


def test_the_default_trust_store_is_mozillas(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --ca-file the roots are certifi's: the lab CA is not among them, a public root is."""
    from scanner.trust import trust_store

    store = trust_store(None)
    subjects = {r.subject.rfc4514_string() for r in store.roots}
    assert len(store.roots) > 100
    assert any("ISRG Root X1" in s for s in subjects)
    code, doc = cert_json(capsys, str(CERTS / "edge.pem"), *AT)
    assert code == 2
    assert ("chain-untrusted", "critical") in findings_of(doc)


async def test_an_unreachable_address_is_connect_error() -> None:
    # 127.255.255.255 is loopback's broadcast: connect() fails at once with ENETUNREACH, and
    # nothing leaves the machine
    target = Target("sip-federation", "sip.contoso.test", 5061, "127.255.255.255", None)
    with trio.fail_after(10):
        result = await handshake(target, timeout=5)
    assert result.failure is not None
    assert (result.failure.code, result.failure.severity.value) == ("connect-error", "critical")
    assert result.failure.message.startswith("cannot connect to 127.255.255.255:5061: ")
    assert "unreachable" in result.failure.message


def test_fedscan_lab_on_another_net_writes_its_state_and_stops_on_sigint(tmp_path: Path) -> None:
    """`fedscan lab --net --state-file`: scripts wait for the file (not a fixed sleep), read where
    the lab is, and stop it with SIGINT."""
    import signal
    import subprocess
    import sys
    import time

    state = tmp_path / "lab.json"
    proc = subprocess.Popen([sys.executable, "-m", "scanner", "lab", "--net", lab_net(33),
                             "--state-file", str(state)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not state.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the lab never wrote its state file"
            time.sleep(0.05)
        info = json.loads(state.read_text())
        assert info["nameserver"].startswith(lab_net(33) + ".")
        assert info["net"] == lab_net(33)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "lab stopped" in err
    assert "fedscan scan" in out  # it printed the scan line to try
