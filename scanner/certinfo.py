"""What a certificate or CSR says, read once into plain values.

Theory of this module
---------------------
The verifier's rules, the reports and the JSON schema all want the same facts (names, EKUs,
key, signature, validity); reading them from ``cryptography`` objects in one place keeps every
rule a comparison of plain values, and keeps malformed extensions from raising deep inside a
rule. A certificate whose extensions cannot be parsed is reported, not crashed on: each
accessor here swallows cryptography's parse errors and records them in ``problems``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from scanner.certload import Exact, serial_number
from scanner.certsummary import CertSummary, RequestSummary, to_the_second
from scanner.names import PresentedNames, presented_to_a_label

OID_SRV_NAME = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.7")
OID_XMPP_ADDR = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.5")

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string
_EKU_NAMES = {SERVER_AUTH: "serverAuth", CLIENT_AUTH: "clientAuth"}

_MD5 = {SignatureAlgorithmOID.RSA_WITH_MD5}
_SHA1 = {
    SignatureAlgorithmOID.RSA_WITH_SHA1,
    SignatureAlgorithmOID.ECDSA_WITH_SHA1,
    SignatureAlgorithmOID.DSA_WITH_SHA1,
    SignatureAlgorithmOID._RSA_WITH_SHA1,  # legacy OID seen on very old roots
}


@dataclass(frozen=True)
class KeyInfo:
    type: str  # "RSA", "EC", "DSA", "Ed25519", "Ed448", "unknown"
    bits: int
    curve: str | None = None

    def describe(self) -> str:
        return f"{self.type} {self.curve}" if self.curve else f"{self.type} {self.bits}"


@dataclass(frozen=True)
class SignatureInfo:
    algorithm: str  # e.g. "sha256WithRSAEncryption", "RSASSA-PSS"
    hash: str | None  # "sha256", "sha1", "md5", None when not applicable
    pss: bool


@dataclass(frozen=True)
class CertInfo:
    """Facts about one certificate; ``der`` kept for fingerprints and chain checks."""

    cert: x509.Certificate
    subject: str
    issuer: str
    common_names: tuple[str, ...]
    names: PresentedNames
    has_san: bool
    eku: tuple[str, ...] | None  # dotted OIDs; None when the extension is absent
    key: KeyInfo
    signature: SignatureInfo
    not_before: dt.datetime
    not_after: dt.datetime
    serial: str
    sha256: str
    is_ca: bool
    self_issued: bool
    crl_urls: tuple[str, ...]
    problems: tuple[str, ...] = field(default=())
    key_cert_sign: bool = False  # keyUsage keyCertSign: a CA key
    serial_positive: bool = True  # RFC 5280 4.1.2.2
    # the TBS the issuer signed, when ``cert`` is a whole-seconds copy of a certificate with
    # fractional-second times (see scanner.certload); None otherwise
    signed_tbs: bytes | None = None

    def summary(self, now: dt.datetime | None = None) -> CertSummary:
        """What the report keeps of the certificate (``days_left`` counted from ``now``)."""
        return CertSummary(
            **_request_facts(self.subject, self.common_names, self.names, self.eku, self.key,
                             self.signature),
            issuer=self.issuer,
            serial=self.serial,
            sha256=self.sha256,
            not_before=to_the_second(self.not_before),
            not_after=to_the_second(self.not_after),
            crl_distribution_points=self.crl_urls,
            days_left=None if now is None else days_left(self.not_after, now),
        )


def _request_facts(
    subject: str, common_names: tuple[str, ...], names: PresentedNames, eku: tuple[str, ...] | None,
    key: KeyInfo, signature: SignatureInfo,
) -> dict[str, Any]:
    """What a certificate and a CSR both say, as :class:`RequestSummary` fields."""
    return {
        "subject": subject,
        "subject_cns": common_names,
        "dns_names": names.dns,
        "srv_names": names.srv,
        "xmpp_addrs": names.xmpp_addrs,
        "eku": None if eku is None else tuple(eku_name(o) for o in eku),
        "key": key.describe(),
        "signature": signature.algorithm,
    }


def eku_name(oid: str) -> str:
    return _EKU_NAMES.get(oid, oid)


def days_left(not_after: dt.datetime, now: dt.datetime) -> int:
    """Whole days until expiry, rounded down (negative once expired)."""
    return (not_after - now) // dt.timedelta(days=1)




def read_der_string(value: bytes) -> str | None:
    """Decode the DER of an otherName value: an IA5/UTF8/Printable string, possibly wrapped
    in one explicit [0] tag (encoders disagree). None for anything else."""
    for _ in range(2):
        if len(value) < 2:
            return None
        tag, length, offset = value[0], value[1], 2
        if length & 0x80:
            n = length & 0x7F
            if n == 0 or n > 3 or len(value) < 2 + n:
                return None
            length = int.from_bytes(value[2 : 2 + n], "big")
            offset = 2 + n
        body = value[offset : offset + length]
        if len(body) != length:
            return None
        if tag == 0xA0:
            value = body
            continue
        if tag in (0x16, 0x13):
            return body.decode("ascii", "replace")
        if tag == 0x0C:
            return body.decode("utf-8", "replace")
        return None
    return None


def presented_names(general_names: Sequence[x509.GeneralName]) -> PresentedNames:
    dns: list[str] = []
    srv: list[str] = []
    xmpp: list[str] = []
    for gn in general_names:
        if isinstance(gn, x509.DNSName):
            dns.append(gn.value.lower().rstrip("."))
        elif isinstance(gn, x509.OtherName):
            text = read_der_string(gn.value)
            if text is None:
                continue
            if gn.type_id == OID_SRV_NAME:
                srv.append(presented_to_a_label(text) or text)
            elif gn.type_id == OID_XMPP_ADDR:
                xmpp.append(text)
    return PresentedNames(tuple(dns), tuple(srv), tuple(xmpp))


def key_info(public_key: object) -> KeyInfo:
    if isinstance(public_key, rsa.RSAPublicKey):
        return KeyInfo("RSA", public_key.key_size)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return KeyInfo("EC", public_key.key_size, public_key.curve.name)
    if isinstance(public_key, dsa.DSAPublicKey):
        return KeyInfo("DSA", public_key.key_size)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return KeyInfo("Ed25519", 256)
    if isinstance(public_key, ed448.Ed448PublicKey):
        return KeyInfo("Ed448", 456)
    return KeyInfo("unknown", 0)


def signature_info(oid: x509.ObjectIdentifier, hash_alg: hashes.HashAlgorithm | None) -> SignatureInfo:
    name = getattr(oid, "_name", None) or oid.dotted_string
    pss = oid == SignatureAlgorithmOID.RSASSA_PSS
    if oid in _MD5:
        h: str | None = "md5"
    elif oid in _SHA1:
        h = "sha1"
    else:
        h = hash_alg.name if hash_alg is not None else None
    return SignatureInfo("RSASSA-PSS" if pss else name, h, pss)


def _hash_of(obj: x509.Certificate | x509.CertificateSigningRequest) -> hashes.HashAlgorithm | None:
    try:
        return obj.signature_hash_algorithm
    except Exception:  # unsupported algorithm: cryptography raises UnsupportedAlgorithm
        return None


def _extension(exts: x509.Extensions | None, problems: list[str], ext_type: type[x509.ExtensionType]) -> Any:
    if exts is None:
        return None
    try:
        return exts.get_extension_for_class(ext_type).value
    except x509.ExtensionNotFound:
        return None
    except Exception as exc:  # malformed extension bytes from a hostile or broken CA
        problems.append(f"{ext_type.__name__}: {exc}")
        return None


def _extensions(
    obj: x509.Certificate | x509.CertificateSigningRequest, problems: list[str]
) -> x509.Extensions | None:
    try:
        return obj.extensions
    except Exception as exc:  # duplicate or undecodable extensions
        problems.append(f"extensions: {exc}")
        return None


def name_text(name: x509.Name) -> str:
    """A distinguished name as RFC 4514 text (what reports show), never raising."""
    try:
        return name.rfc4514_string()
    except Exception:
        return "<undecodable name>"


_name_text = name_text


def _common_names(name: x509.Name) -> tuple[str, ...]:
    out = []
    for attr in name.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attr.value
        out.append(value if isinstance(value, str) else value.decode("utf-8", "replace"))
    return tuple(out)


@dataclass(frozen=True)
class RequestInfo:
    """Facts about a PKCS#10 CSR: what the certificate would be, were it issued as asked."""

    csr: x509.CertificateSigningRequest
    subject: str
    common_names: tuple[str, ...]
    names: PresentedNames
    has_san: bool
    eku: tuple[str, ...] | None
    key: KeyInfo
    signature: SignatureInfo
    signature_valid: bool
    problems: tuple[str, ...] = ()

    def summary(self) -> RequestSummary:
        return RequestSummary(**_request_facts(self.subject, self.common_names, self.names, self.eku,
                                               self.key, self.signature))


def _common_facts(
    obj: x509.Certificate | x509.CertificateSigningRequest,
) -> tuple[PresentedNames, bool, tuple[str, ...] | None, list[str], x509.Extensions | None]:
    problems: list[str] = []
    exts = _extensions(obj, problems)
    san = _extension(exts, problems, x509.SubjectAlternativeName)
    eku = _extension(exts, problems, x509.ExtendedKeyUsage)
    names = presented_names(list(san)) if san is not None else PresentedNames()
    ekus = tuple(o.dotted_string for o in eku) if eku is not None else None
    return names, san is not None, ekus, problems, exts


def cert_info(cert: x509.Certificate, exact: Exact | None = None) -> CertInfo:
    """A certificate's facts. ``exact``: what it really says when ``cert`` is the whole-seconds
    copy of one with fractional-second times (:func:`scanner.certload.load_der_exact`)."""
    names, has_san, ekus, problems, exts = _common_facts(cert)
    bc = _extension(exts, problems, x509.BasicConstraints)
    cdp = _extension(exts, problems, x509.CRLDistributionPoints)
    crl_urls: list[str] = []
    for point in cdp or ():
        for gn in point.full_name or ():
            if isinstance(gn, x509.UniformResourceIdentifier):
                crl_urls.append(gn.value)
    ku = _extension(exts, problems, x509.KeyUsage)
    try:
        public_key: object = cert.public_key()
    except Exception as exc:
        problems.append(f"public key: {exc}")
        public_key = None
    serial = serial_number(cert)
    return CertInfo(
        cert=cert,
        subject=_name_text(cert.subject),
        issuer=_name_text(cert.issuer),
        common_names=_common_names(cert.subject),
        names=names,
        has_san=has_san,
        eku=ekus,
        key=key_info(public_key),
        signature=signature_info(cert.signature_algorithm_oid, _hash_of(cert)),
        not_before=exact.not_before if exact else cert.not_valid_before_utc,
        not_after=exact.not_after if exact else cert.not_valid_after_utc,
        serial=format(serial, "x"),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        is_ca=bool(bc is not None and bc.ca),
        self_issued=cert.issuer == cert.subject,
        crl_urls=tuple(crl_urls),
        problems=tuple(problems),
        key_cert_sign=bool(ku is not None and ku.key_cert_sign),
        serial_positive=serial > 0,
        signed_tbs=exact.signed_tbs if exact else None,
    )


def request_info(csr: x509.CertificateSigningRequest) -> RequestInfo:
    names, has_san, ekus, problems, _ = _common_facts(csr)
    try:
        public_key: object = csr.public_key()
    except Exception as exc:
        problems.append(f"public key: {exc}")
        public_key = None
    try:
        valid = csr.is_signature_valid
    except Exception:
        valid = False
    try:
        subject: x509.Name | None = csr.subject
    except Exception as exc:  # cryptography decodes names lazily; hostile bytes fail here
        problems.append(f"subject: {exc}")
        subject = None
    return RequestInfo(
        csr=csr,
        subject=_name_text(subject) if subject is not None else "<undecodable name>",
        common_names=_common_names(subject) if subject is not None else (),
        names=names,
        has_san=has_san,
        eku=ekus,
        key=key_info(public_key),
        signature=signature_info(csr.signature_algorithm_oid, _hash_of(csr)),
        signature_valid=valid,
        problems=tuple(problems),
    )
