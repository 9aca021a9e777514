"""The one certificate factory of the lab: CAs, cross-signs and federation leaves.

Theory of this module
---------------------
Every certificate the lab serves is made here, whoever asks: the lab's own PKI
(:mod:`scanner.lab.pki`), the partners that judge our certificate (:mod:`scanner.lab.partners`),
the hostile worlds (:mod:`scanner.lab.hostile_pki`) and the scale worlds
(:mod:`scanner.lab.scale`). So a healthy lab leaf has one profile, the one a public CA
issues (basicConstraints, keyUsage, SAN, SKI, AKI, EKU, a CRL distribution point), and a
world that breaks one thing breaks only that thing. What a caller varies is data: names,
EKUs, dates, serial, key. Defects no builder will encode (a zero serial, a fractional
notAfter, a SHA-1 signature) are made afterwards by DER surgery (:mod:`scanner.lab.der`).

Keys are RSA 2048 by default (:func:`new_key`); any key type cryptography signs with may be
passed in (the hostile long chain uses EC keys: cheap to make by the hundred).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scanner.lab.der import resign

SERVER: Final = "serverAuth"
CLIENT: Final = "clientAuth"
EKU: Final = {SERVER: ExtendedKeyUsageOID.SERVER_AUTH, CLIENT: ExtendedKeyUsageOID.CLIENT_AUTH}
CRL_URL: Final = "http://crl.contoso.test/issuing1.crl"
CA_ORG: Final = "Fedscan Lab PKI"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def utc(year: int, month: int = 1, day: int = 1) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=dt.UTC)


EXPIRED: Final = (utc(2020), utc(2021))  # issued while the lab CAs were valid, long expired


@dataclass(frozen=True)
class Issuer:
    """A CA certificate and its key, to sign with."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_pem(key: PrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (what the lab's listeners load)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def serial_of(stem: str) -> int:
    """A stable, positive serial per name (pool nodes differ by their stem)."""
    return int.from_bytes(hashlib.sha256(stem.encode()).digest()[:8], "big") | 1


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """The issuer's key identifier: its SKI, or (a CA without one) the hash of its key."""
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )


def ca_name(cn: str, org: str | None = CA_ORG) -> x509.Name:
    org_part = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []
    return x509.Name([*org_part, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ca_builder(
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate | None,
    *,
    not_after: dt.datetime,
    serial: int | None = None,
    path_length: int | None = None,
    not_before: dt.datetime | None = None,
) -> x509.CertificateBuilder:
    """A CA certificate (self-signed when ``issuer`` is None) as a CA/B-conformant one looks:
    basicConstraints (critical), keyUsage keyCertSign + cRLSign (critical), SKI, and the
    issuer's AKI. Sign it with the issuer's key (or its own)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number() if serial is None else serial)
        .not_valid_before(not_before or utc(2019))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(_aki(issuer), critical=False)
    return builder


def make_ca(
    cn: str,
    not_after: dt.datetime,
    parent: Issuer | None = None,
    *,
    eku: Sequence[str] | None = None,
    sha1: bool = False,
) -> Issuer:
    """A root (``parent`` None) or an issuing CA under ``parent`` (path length 0); webpki-clean
    unless ``eku`` restricts it (serverAuth-only hierarchies) or ``sha1`` signs it (legacy)."""
    key = new_key()
    builder = ca_builder(ca_name(cn), key.public_key(), parent.cert if parent else None,
                         not_after=not_after, path_length=0 if parent else None)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([EKU[e] for e in eku]), critical=False)
    signer = parent.key if parent else key
    cert = builder.sign(signer, hashes.SHA256())
    if sha1:
        assert isinstance(signer, rsa.RSAPrivateKey)
        cert = x509.load_der_x509_certificate(resign(cert, signer, sha1=True))
    return Issuer(cert, key)


def cross_sign(subject: Issuer, by: Issuer, not_after: dt.datetime) -> x509.Certificate:
    """``subject``'s name and key certified by another root: the cross-sign a CA hands out so
    that its new root chains to an old one, and that servers keep sending after it expired."""
    return ca_builder(subject.cert.subject, subject.key.public_key(), by.cert,
                      not_after=not_after).sign(by.key, hashes.SHA256())


def ca_chain(top: Issuer, length: int, cn: str, *, not_after: dt.datetime) -> list[Issuer]:
    """``length`` CAs under ``top``, each issuing the next (EC keys: cheap by the hundred),
    named ``cn`` and their depth; the last one issues the leaf."""
    chain: list[Issuer] = []
    issuer = top
    for depth in range(1, length + 1):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = ca_builder(ca_name(f"{cn} {depth}", None), key.public_key(), issuer.cert,
                          not_after=not_after, serial=1000 + depth).sign(issuer.key, hashes.SHA256())
        issuer = Issuer(cert, key)
        chain.append(issuer)
    return chain


def leaf_builder(
    names: Sequence[str],
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate,
    *,
    serial: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
    org: str | None = None,
    cn: str | None = None,
    eku: Sequence[str] = (SERVER, CLIENT),
    crl: bool = True,
    crl_url: str = CRL_URL,
    ca: bool = False,
    key_usage: bool = True,
    subject_key_id: bool = True,
) -> x509.CertificateBuilder:
    """A federation leaf as a public CA issues one; sign it with the issuer's key. ``ca``:
    basicConstraints CA:TRUE and keyCertSign, a CA certificate used as a server's; ``names``
    empty (and ``cn`` given): no subjectAltName extension at all. ``key_usage`` and
    ``subject_key_id`` False leave out those two extensions (both optional in RFC 5280 for a
    leaf; the hostile lab's leaves have always been made without them)."""
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, cn or names[0]))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if key_usage:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                crl_sign=ca, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    if names:  # none: a certificate without subjectAltName (names only in the CN)
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                        critical=False)
    if subject_key_id:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    builder = (
        builder.add_extension(_aki(issuer), critical=False)
        .add_extension(x509.ExtendedKeyUsage([EKU[e] for e in eku]), critical=False)
    )
    if crl:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return builder
