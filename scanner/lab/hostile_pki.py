"""Certificates for the hostile lab, made on first use from the lab's issuing CA, so healthy
endpoints are healthy and the long chain and the 1 MB certificate differ from them in one
respect only."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scanner.lab.pki import lab_pki

LONG_CHAIN: Final = 100
BIG_CERT_BYTES: Final = 1 << 20

# --- certificates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostilePki:
    """Generated files (absolute paths without suffix, usable as ``Listener.cert``)."""

    healthy: str  # leaf + issuing CA, covering every name given
    long_chain: str  # leaf + LONG_CHAIN - 1 CAs above it
    big: str  # a leaf of over 1 MB (one huge private extension)
    healthy_der: bytes  # the healthy leaf's DER, for malformed variants


_TEMP: list[tempfile.TemporaryDirectory[str]] = []
_PKI_LOCK = threading.Lock()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _utc(year: int) -> dt.datetime:
    return dt.datetime(year, 1, 1, tzinfo=dt.UTC)


def _leaf_builder(names: Sequence[str], key: rsa.RSAPrivateKey, issuer: x509.Name,
                  serial: int, issuer_key: x509.AuthorityKeyIdentifier) -> x509.CertificateBuilder:
    """A web-PKI-conformant leaf (AKI included), so that only the intended fault shows."""
    return (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(_utc(2026))
        .not_valid_after(_utc(2040))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(issuer_key, critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier("http://crl.contoso.test/issuing1.crl")],
            None, None, None)]), critical=False)
    )


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def hostile_pki(names: Sequence[str]) -> HostilePki:
    """Certificates for the hostile lab, made once per process and name set."""
    with _PKI_LOCK:
        return _hostile_pki(tuple(names))


@functools.cache
def _hostile_pki(names: tuple[str, ...]) -> HostilePki:
    tmp = tempfile.TemporaryDirectory(prefix="fedscan-hostile-")
    _TEMP.append(tmp)  # removed at interpreter exit
    out = Path(tmp.name)
    pki = lab_pki()
    issuing, top = pki.issuer("intermediate"), pki.issuer("root")
    inter, inter_key, root, root_key = issuing.cert, issuing.key, top.cert, top.key
    key = serialization.load_pem_private_key(pki.key("edge").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    key_pem = pki.key("edge").read_bytes()
    serial = int.from_bytes(hashlib.sha256("\0".join(names).encode()).digest()[:8], "big")

    inter_aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(inter_key.public_key())
    healthy = _leaf_builder(names, key, inter.subject, serial, inter_aki).sign(inter_key, hashes.SHA256())
    (out / "healthy.pem").write_bytes(_pem(healthy, inter))

    # 99 EC CAs (cheap to make), each issuing the next, the top one issued by the root
    cas: list[x509.Certificate] = []
    issuer_name, issuer_key = root.subject, root_key
    signer: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = root_key
    for depth in range(1, LONG_CHAIN):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (x509.CertificateBuilder().subject_name(_name(f"Hostile Long Chain CA {depth}"))
              .issuer_name(issuer_name).public_key(ca_key.public_key()).serial_number(1000 + depth)
              .not_valid_before(_utc(2019)).not_valid_after(_utc(2060))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(signer, hashes.SHA256()))
        cas.append(ca)
        issuer_name, signer = ca.subject, ca_key
    del issuer_key
    long_aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key())
    long_leaf = _leaf_builder(names, key, issuer_name, serial + 1, long_aki).sign(signer, hashes.SHA256())
    (out / "long.pem").write_bytes(_pem(long_leaf, *reversed(cas)))

    filler = b"\x04\x83" + BIG_CERT_BYTES.to_bytes(3, "big") + b"A" * BIG_CERT_BYTES
    big = (_leaf_builder(names, key, inter.subject, serial + 2, inter_aki)
           .add_extension(x509.UnrecognizedExtension(
               x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), filler), critical=False)
           .sign(inter_key, hashes.SHA256()))
    (out / "big.pem").write_bytes(_pem(big, inter))
    for stem in ("healthy", "long", "big"):
        (out / f"{stem}.key").write_bytes(key_pem)
    return HostilePki(str(out / "healthy"), str(out / "long"), str(out / "big"),
                      healthy.public_bytes(serialization.Encoding.DER))


def malformed_der(der: bytes) -> bytes:
    """The healthy leaf with its outer length claiming one byte more than there is."""
    assert der[0] == 0x30 and der[1] == 0x82
    length = int.from_bytes(der[2:4], "big") + 1
    return der[:2] + length.to_bytes(2, "big") + der[4:]
