#!/usr/bin/env python3
"""Build the fedscan test certificate corpus.

Run from the repository root:

    .venv/bin/python test-certs/make_corpus.py

Every file next to this script is regenerated. (The lab's certificates are not here: the lab
makes its own on first use, see ``scanner/lab/pki.py``.) Keys are random on
each run; dates and serial numbers are fixed so that the findings each file produces at
the reference time ``NOW`` (2030-01-01T00:00:00Z) never change.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from scanner.lab.der import pem_of, resign  # shared with the lab's PKI

OUT_DIR = Path(__file__).resolve().parent

#: The reference "now" the test-suite checks the corpus against.
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

PFX_PASSWORD = b"fedscan"

CRL_URL = "http://crl.contoso.test/issuing1.crl"

TEMPLATE_SAN: tuple[str, ...] = (
    "sip.contoso.test",
    "webcon.contoso.test",
    "contoso.test",
    "sip.fabrikam.test",
    "fabrikam.test",
)

ID_ON_XMPPADDR = ObjectIdentifier("1.3.6.1.5.5.7.8.5")
ID_ON_DNSSRV = ObjectIdentifier("1.3.6.1.5.5.7.8.7")

SERVER = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def utc(year: int, month: int = 1, day: int = 1) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=dt.UTC)


# --------------------------------------------------------------------------- DER helpers


def der_length(n: int) -> bytes:
    """DER definite length: short form below 128, long form otherwise."""
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_string(tag: int, text: str) -> bytes:
    """DER TLV of a string type (0x16 IA5String, 0x0C UTF8String)."""
    data = text.encode("ascii") if tag == 0x16 else text.encode("utf-8")
    return bytes([tag]) + der_length(len(data)) + data


def ia5(text: str) -> bytes:
    return der_string(0x16, text)


def utf8(text: str) -> bytes:
    return der_string(0x0C, text)


# --------------------------------------------------------------------------- keys / output


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


WRITTEN: list[Path] = []


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    WRITTEN.append(path)


# --------------------------------------------------------------------------- CAs


@dataclass(frozen=True)
class Issuer:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey


def ski_of(cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value


def _ca_key_usage(*, digital_signature: bool) -> x509.KeyUsage:
    """A CA's key usage: certificates and CRLs, and (intermediates) signatures."""
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )


def make_root(cn: str, serial: int) -> Issuer:
    key = rsa_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fedscan Test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    pub = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pub)
        .serial_number(serial)
        .not_valid_before(utc(2019))
        .not_valid_after(utc(2070))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(digital_signature=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issuer(cert, key)


def make_intermediate(
    root: Issuer,
    cn: str,
    serial: int,
    *,
    eku: tuple[ObjectIdentifier, ...] | None = None,
    sha1: bool = False,
) -> Issuer:
    """An issuing CA under ``root``; ``eku`` restricts it (public CAs' serverAuth-only
    hierarchies), ``sha1`` re-signs it with SHA-1 (a legacy intermediate)."""
    key = rsa_key()
    pub = key.public_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fedscan Test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root.cert.subject)
        .public_key(pub)
        .serial_number(serial)
        .not_valid_before(utc(2019))
        .not_valid_after(utc(2060))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski_of(root.cert)),
            critical=False,
        )
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    cert = builder.sign(root.key, hashes.SHA256())
    if sha1:
        cert = resign_sha1(cert, root.key)
    return Issuer(cert, key)


def cross_sign(subject: Issuer, by: Issuer, serial: int, not_after: dt.datetime) -> x509.Certificate:
    """``subject``'s name and key certified by another root: the cross-sign a CA hands out
    so that its new root chains to an old, widely trusted one (and that servers keep
    sending long after it expired)."""
    pub = subject.key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject.cert.subject)
        .issuer_name(by.cert.subject)
        .public_key(pub)
        .serial_number(serial)
        .not_valid_before(utc(2019))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(digital_signature=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski_of(by.cert)),
            critical=False,
        )
        .sign(by.key, hashes.SHA256())
    )


# --------------------------------------------------------------------------- leaves


@dataclass(frozen=True)
class LeafSpec:
    serial: int
    cn: str = "sip.contoso.test"
    org: str | None = "Contoso Test"
    dns: tuple[str, ...] = TEMPLATE_SAN
    other_names: tuple[x509.OtherName, ...] = ()
    eku: tuple[ObjectIdentifier, ...] | None = (SERVER, CLIENT)
    not_before: dt.datetime = field(default_factory=lambda: utc(2026))
    not_after: dt.datetime = field(default_factory=lambda: utc(2040))
    key_kind: str = "rsa2048"  # rsa2048 | rsa1024 | p256
    sig_hash: str = "sha256"  # sha256 | sha1
    pss: bool = False
    crl: bool = True
    self_signed: bool = False
    ca: bool = False  # basicConstraints CA:TRUE + keyCertSign: a CA certificate used as a leaf
    raw_serial: int | None = None  # DER-patched serial (zero/negative: builders refuse them)
    raw_not_after: str | None = None  # DER-patched GeneralizedTime, e.g. fractional seconds


def new_leaf_key(kind: str) -> PrivateKey:
    if kind == "rsa2048":
        return rsa_key(2048)
    if kind == "rsa1024":
        return rsa_key(1024)
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key kind {kind!r}")


def build_leaf(
    spec: LeafSpec, issuer: Issuer | None, key: PrivateKey | None = None
) -> tuple[x509.Certificate, PrivateKey]:
    """Issue a leaf from ``spec``; ``issuer`` None means self-signed."""
    if key is None:
        key = new_leaf_key(spec.key_kind)
    pub: CertificateIssuerPublicKeyTypes = key.public_key()
    attrs = []
    if spec.org is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, spec.org))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, spec.cn))
    subject = x509.Name(attrs)

    if issuer is None:
        issuer_name = subject
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(pub)
        signing_key: CertificateIssuerPrivateKeyTypes = key
    else:
        issuer_name = issuer.cert.subject
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            ski_of(issuer.cert)
        )
        signing_key = issuer.key

    is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
    general_names: list[x509.GeneralName] = [x509.DNSName(n) for n in spec.dns]
    general_names.extend(spec.other_names)

    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(pub)
        .serial_number(spec.serial)
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
        .add_extension(x509.BasicConstraints(ca=spec.ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                # keyEncipherment is meaningless for an EC key (no RSA key transport)
                key_encipherment=not is_ec,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=spec.ca,
                crl_sign=spec.ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName(general_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .add_extension(aki, critical=False)
    )
    if spec.eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(list(spec.eku)), critical=False)
    if spec.crl:
        b = b.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(CRL_URL)],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )

    if spec.pss:
        cert = b.sign(
            signing_key,
            hashes.SHA256(),
            rsa_padding=padding.PSS(
                mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH
            ),
        )
    else:
        cert = b.sign(signing_key, hashes.SHA256())
    if spec.sig_hash == "sha1":
        if not isinstance(signing_key, rsa.RSAPrivateKey):
            raise TypeError("sha1 variant needs an RSA issuer")
        cert = resign_sha1(cert, signing_key)
    return cert, key


def build_leaf_der(spec: LeafSpec, issuer: Issuer) -> tuple[bytes, PrivateKey]:
    """A leaf as DER, with the raw_* patches applied (which cryptography may not load)."""
    cert, key = build_leaf(spec, issuer)
    if spec.raw_serial is None and spec.raw_not_after is None:
        return cert.public_bytes(serialization.Encoding.DER), key
    der = resign(cert, issuer.key, serial=spec.raw_serial, not_after=spec.raw_not_after)
    return der, key


# --------------------------------------------------------------------------- DER surgery


def resign_sha1(cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """Re-sign a sha256WithRSAEncryption certificate as sha1WithRSAEncryption.

    cryptography 50 refuses SHA-1 in ``CertificateBuilder.sign``, but the RSA primitive
    still signs SHA-1 digests: both AlgorithmIdentifiers are rewritten and the TBS signed
    again (scanner.lab.der.resign, shared with the lab's PKI)."""
    return x509.load_der_x509_certificate(resign(cert, issuer_key, sha1=True))


def without(*names: str) -> tuple[str, ...]:
    return tuple(n for n in TEMPLATE_SAN if n not in names)


def variant_specs() -> dict[str, LeafSpec]:
    """Every leaf variant issued by the intermediate, keyed by file stem."""
    t = LeafSpec(serial=0x1000)
    wildcard_san = (
        "sip.contoso.test",
        "*.contoso.test",
        "contoso.test",
        "sip.fabrikam.test",
        "fabrikam.test",
    )
    return {
        "edge": t,
        "missing-sip-contoso": replace(t, serial=0x1001, dns=without("sip.contoso.test")),
        "missing-webcon": replace(t, serial=0x1002, dns=without("webcon.contoso.test")),
        "missing-xmpp-contoso": replace(t, serial=0x1003, dns=without("contoso.test")),
        "missing-sip-fabrikam": replace(t, serial=0x1004, dns=without("sip.fabrikam.test")),
        "missing-xmpp-fabrikam": replace(t, serial=0x1005, dns=without("fabrikam.test")),
        "cn-not-in-san": replace(t, serial=0x1006, cn="edge.contoso.test"),
        "serverauth-only": replace(t, serial=0x1007, eku=(SERVER,)),
        "clientauth-only": replace(t, serial=0x1008, eku=(CLIENT,)),
        "no-eku": replace(t, serial=0x1009, eku=None),
        "expired": replace(t, serial=0x100A, not_before=utc(2020), not_after=utc(2021)),
        "not-yet-valid": replace(t, serial=0x100B, not_before=utc(2045), not_after=utc(2050)),
        "expires-soon-warning": replace(
            t, serial=0x100C, not_before=utc(2029), not_after=utc(2030, 1, 21)
        ),
        "expires-soon-critical": replace(
            t, serial=0x100D, not_before=utc(2029), not_after=utc(2030, 1, 11)
        ),
        # 0x100E self-signed, 0x100F untrusted: built separately
        "rsa1024": replace(t, serial=0x1010, key_kind="rsa1024"),
        "sha1": replace(t, serial=0x1011, sig_hash="sha1"),
        "pss": replace(t, serial=0x1012, pss=True),
        "wildcard-san": replace(t, serial=0x1013, dns=wildcard_san),
        "wildcard-cn": replace(
            t,
            serial=0x1014,
            cn="*.contoso.test",
            dns=("*.contoso.test", "contoso.test", "sip.fabrikam.test", "fabrikam.test"),
        ),
        "idn": replace(
            t,
            serial=0x1015,
            cn="sip.xn--bcher-kva.test",
            org="B\u00fccher Test",
            dns=("sip.xn--bcher-kva.test", "xn--bcher-kva.test"),
        ),
        "xmpp-othernames": replace(
            t,
            serial=0x1016,
            dns=("sip.contoso.test",),
            other_names=(
                x509.OtherName(ID_ON_DNSSRV, ia5("_xmpp-server.contoso.test")),
                x509.OtherName(ID_ON_XMPPADDR, utf8("fabrikam.test")),
            ),
        ),
        "no-crl": replace(t, serial=0x1017, crl=False),
        "ecdsa-p256": replace(t, serial=0x1018, key_kind="p256"),
        "client": replace(
            t,
            serial=0x1019,
            cn="fedscan-client.test",
            org="Fedscan Test",
            dns=("fedscan-client.test",),
            eku=(CLIENT,),
        ),
    }


# --------------------------------------------------------------------------- CSRs


def build_csr(
    key: rsa.RSAPrivateKey, dns: Sequence[str], eku: Sequence[ObjectIdentifier]
) -> x509.CertificateSigningRequest:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso Test"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "sip.contoso.test"),
                ]
            )
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        .sign(key, hashes.SHA256())
    )


# --------------------------------------------------------------------------- self-test


def webpki_verify(
    root: x509.Certificate, leaf: x509.Certificate, chain: Sequence[x509.Certificate]
) -> None:
    verifier = (
        PolicyBuilder()
        .store(Store([root]))
        .time(NOW)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    verified = verifier.verify(leaf, list(chain))
    assert verified.chain[0] == leaf
    assert verified.chain[-1] == root


def self_test(root: Issuer, inter: Issuer) -> None:
    # Normal leaves chain to the root with a webpki-conformant intermediate.
    for stem in ("edge", "client", "no-eku", "wildcard-san", "ecdsa-p256", "xmpp-othernames"):
        certs = x509.load_pem_x509_certificates((OUT_DIR / f"{stem}.pem").read_bytes())
        assert len(certs) == 2 and certs[1] == inter.cert, stem
        webpki_verify(root.cert, certs[0], certs[1:])

    edge = x509.load_pem_x509_certificates((OUT_DIR / "edge.pem").read_bytes())[0]
    san = edge.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == list(TEMPLATE_SAN)
    assert x509.load_der_x509_certificate((OUT_DIR / "edge.der").read_bytes()) == edge

    # Each .key matches its certificate.
    for pem in OUT_DIR.glob("*.pem"):
        if pem.name in {"ca-bundle.pem", "fractional-notafter.pem"}:
            continue
        keyfile = pem.with_suffix(".key")
        with warnings.catch_warnings():  # zero-serial.pem
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            first = x509.load_pem_x509_certificates(pem.read_bytes())[0]
        key = serialization.load_pem_private_key(keyfile.read_bytes(), password=None)
        assert key.public_key() == first.public_key(), pem.name

    # PKCS#12 files.
    k, c, extra = pkcs12.load_key_and_certificates(
        (OUT_DIR / "edge.pfx").read_bytes(), PFX_PASSWORD
    )
    assert k is not None and c == edge and extra == [inter.cert]
    k, c, extra = pkcs12.load_key_and_certificates(
        (OUT_DIR / "edge-nokey.pfx").read_bytes(), PFX_PASSWORD
    )
    assert k is None and c is None and edge in extra and inter.cert in extra

    # otherName values decode as intended.
    xo = x509.load_pem_x509_certificates((OUT_DIR / "xmpp-othernames.pem").read_bytes())[0]
    xsan = xo.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    others = {o.type_id: o.value for o in xsan.get_values_for_type(x509.OtherName)}
    assert others[ID_ON_DNSSRV] == b"\x16\x19_xmpp-server.contoso.test"
    assert others[ID_ON_XMPPADDR] == b"\x0c\x0dfabrikam.test"
    assert der_length(200) == b"\x81\xc8" and der_length(300) == b"\x82\x01\x2c"

    # Signature algorithms / keys of the weak variants.
    def first_cert(stem: str) -> x509.Certificate:
        return x509.load_pem_x509_certificates((OUT_DIR / f"{stem}.pem").read_bytes())[0]

    sha1_cert = first_cert("sha1")
    assert isinstance(sha1_cert.signature_hash_algorithm, hashes.SHA1)
    inter_pub = inter.cert.public_key()
    assert isinstance(inter_pub, rsa.RSAPublicKey)
    inter_pub.verify(
        sha1_cert.signature, sha1_cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA1()
    )
    first_cert("pss").verify_directly_issued_by(inter.cert)
    assert isinstance(first_cert("pss").signature_algorithm_parameters, padding.PSS)
    rsa1024_pub = first_cert("rsa1024").public_key()
    assert isinstance(rsa1024_pub, rsa.RSAPublicKey) and rsa1024_pub.key_size == 1024
    ss = first_cert("self-signed")
    assert ss.issuer == ss.subject
    ss.verify_directly_issued_by(ss)

    # Expiry arithmetic relative to NOW.
    assert first_cert("expires-soon-warning").not_valid_after_utc - NOW == dt.timedelta(days=20)
    assert first_cert("expires-soon-critical").not_valid_after_utc - NOW == dt.timedelta(days=10)

    real_chains_self_test(root)

    for csr_name in ("edge.csr", "csr-missing-xmpp.csr"):
        csr = x509.load_pem_x509_csr((OUT_DIR / csr_name).read_bytes())
        assert csr.is_signature_valid, csr_name


def real_chains_self_test(root: Issuer) -> None:
    """The issue-11 chains are what they claim, by cryptography's own verifiers."""

    def chain(stem: str) -> list[x509.Certificate]:
        return x509.load_pem_x509_certificates((OUT_DIR / f"{stem}.pem").read_bytes())

    def builder() -> PolicyBuilder:
        return PolicyBuilder().store(Store([root.cert])).time(NOW)

    # a serverAuth-only intermediate: a valid server path, refused as a client path
    leaf, *rest = chain("serverauth-ca")
    builder().build_server_verifier(x509.DNSName("sip.contoso.test")).verify(leaf, rest)
    try:
        builder().build_client_verifier().verify(leaf, rest)
    except VerificationError as exc:
        assert "EKU" in str(exc), exc
    else:
        raise AssertionError("serverauth-ca.pem verified as a client chain")
    # the expired cross-sign is served but not needed: the path ends at the trusted root
    leaf, *rest = chain("expired-cross-sign")
    path = builder().build_server_verifier(x509.DNSName("sip.contoso.test")).verify(leaf, rest)
    assert rest[1] not in path and rest[1].not_valid_after_utc < NOW and path[-1] == root.cert
    assert rest[1].subject == root.cert.subject and rest[1].issuer != root.cert.subject
    # the SHA-1 intermediate really is signed with SHA-1 by the root
    sha1_ca = chain("sha1-intermediate")[1]
    assert isinstance(sha1_ca.signature_hash_algorithm, hashes.SHA1)
    root_pub = root.cert.public_key()
    assert isinstance(root_pub, rsa.RSAPublicKey)
    root_pub.verify(sha1_ca.signature, sha1_ca.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA1())
    # the CA certificate used as a leaf
    bc = chain("ca-leaf")[0].extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca
    # the fractional notAfter is really in the DER (and cryptography refuses to load it)
    der = chain_der_of("fractional-notafter")
    assert b"\x18\x1220291231235959.25Z" in der
    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        pass
    else:
        raise AssertionError("cryptography now loads fractional seconds: revisit the README")
    with warnings.catch_warnings():  # the warning comes on load and on every serial read
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        assert x509.load_der_x509_certificate(chain_der_of("zero-serial")).serial_number == 0


def chain_der_of(stem: str) -> bytes:
    pem = (OUT_DIR / f"{stem}.pem").read_bytes()
    return base64.b64decode(b"".join(pem.split(b"-----")[2].split()))


# --------------------------------------------------------------------------- main


def main() -> None:
    started = time.monotonic()

    root = make_root("Fedscan Test Root CA", serial=0x01)
    inter = make_intermediate(root, "Fedscan Test Issuing CA 1", serial=0x02)
    untrusted_root = make_root("Fedscan Untrusted Root CA", serial=0x03)

    write(OUT_DIR / "root.pem", cert_pem(root.cert))
    write(OUT_DIR / "root.key", key_pem(root.key))
    write(OUT_DIR / "intermediate.pem", cert_pem(inter.cert))
    write(OUT_DIR / "intermediate.key", key_pem(inter.key))
    write(OUT_DIR / "untrusted-root.pem", cert_pem(untrusted_root.cert))
    write(OUT_DIR / "untrusted-root.key", key_pem(untrusted_root.key))
    write(OUT_DIR / "ca-bundle.pem", cert_pem(root.cert))

    edge_cert: x509.Certificate | None = None
    edge_key: PrivateKey | None = None
    for stem, spec in variant_specs().items():
        cert, key = build_leaf(spec, inter)
        write(OUT_DIR / f"{stem}.pem", cert_pem(cert, inter.cert))
        write(OUT_DIR / f"{stem}.key", key_pem(key))
        if stem == "edge":
            edge_cert, edge_key = cert, key
    assert edge_cert is not None and edge_key is not None

    # Public chains as they really are served (issue 11): each file = leaf, then what the
    # server sends. The CAs here are not written on their own: they live in these files.
    server_only_ca = make_intermediate(root, "Fedscan Test Server-Only CA", 0x04, eku=(SERVER,))
    legacy_root = make_root("Fedscan Legacy Root CA", serial=0x05)
    cross = cross_sign(root, legacy_root, serial=0x06, not_after=utc(2021))
    sha1_ca = make_intermediate(root, "Fedscan Test SHA-1 CA", 0x07, sha1=True)
    t = LeafSpec(serial=0x101A)
    real_chains: dict[str, tuple[LeafSpec, Issuer, tuple[x509.Certificate, ...]]] = {
        "serverauth-ca": (t, server_only_ca, (server_only_ca.cert,)),
        "expired-cross-sign": (replace(t, serial=0x101B), inter, (inter.cert, cross)),
        "sha1-intermediate": (replace(t, serial=0x101C), sha1_ca, (sha1_ca.cert,)),
        "ca-leaf": (replace(t, serial=0x101D, ca=True), inter, (inter.cert,)),
        # 0.75 s before NOW, in a GeneralizedTime with fractional seconds (RFC 5280 forbids
        # them; OpenSSL reads them)
        "fractional-notafter": (
            replace(t, serial=0x101E, raw_not_after="20291231235959.25Z"),
            inter,
            (inter.cert,),
        ),
        "zero-serial": (replace(t, serial=0x101F, raw_serial=0), inter, (inter.cert,)),
    }
    for stem, (spec, issuer, served) in real_chains.items():
        der, key = build_leaf_der(spec, issuer)
        write(OUT_DIR / f"{stem}.pem", pem_of(der) + cert_pem(*served))
        write(OUT_DIR / f"{stem}.key", key_pem(key))

    template = LeafSpec(serial=0x100E)
    cert, key = build_leaf(template, None)
    write(OUT_DIR / "self-signed.pem", cert_pem(cert))
    write(OUT_DIR / "self-signed.key", key_pem(key))

    cert, key = build_leaf(replace(template, serial=0x100F), untrusted_root)
    write(OUT_DIR / "untrusted.pem", cert_pem(cert, untrusted_root.cert))
    write(OUT_DIR / "untrusted.key", key_pem(key))

    # Repackagings of the healthy edge leaf.
    edge_key_pem = key_pem(edge_key)
    write(OUT_DIR / "leaf-only.pem", cert_pem(edge_cert))
    write(OUT_DIR / "leaf-only.key", edge_key_pem)
    write(OUT_DIR / "misordered.pem", cert_pem(edge_cert, root.cert, inter.cert))
    write(OUT_DIR / "misordered.key", edge_key_pem)
    write(OUT_DIR / "edge.der", edge_cert.public_bytes(serialization.Encoding.DER))
    enc = serialization.BestAvailableEncryption(PFX_PASSWORD)
    write(
        OUT_DIR / "edge.pfx",
        pkcs12.serialize_key_and_certificates(
            b"sip.contoso.test", edge_key, edge_cert, [inter.cert], enc
        ),
    )
    write(
        OUT_DIR / "edge-nokey.pfx",
        pkcs12.serialize_key_and_certificates(
            b"sip.contoso.test", None, None, [edge_cert, inter.cert], enc
        ),
    )

    # Certificate signing requests (both from edge-csr.key).
    csr_key = rsa_key()
    write(OUT_DIR / "edge-csr.key", key_pem(csr_key))
    csr = build_csr(csr_key, TEMPLATE_SAN, (SERVER, CLIENT))
    write(OUT_DIR / "edge.csr", csr.public_bytes(serialization.Encoding.PEM))
    csr = build_csr(csr_key, without("contoso.test", "fabrikam.test"), (SERVER,))
    write(OUT_DIR / "csr-missing-xmpp.csr", csr.public_bytes(serialization.Encoding.PEM))

    self_test(root, inter)
    elapsed = time.monotonic() - started
    print(f"wrote {len(WRITTEN)} files to {OUT_DIR} in {elapsed:.1f}s; self-test passed")


if __name__ == "__main__":
    main()
