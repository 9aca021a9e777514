"""TLSA records: what one says and what it is matched against (RFC 6698, RFC 7218 names).

Theory of this module
---------------------
The data DANE works with, apart from any verdict: a record's presentation form and its
RFC 7218 description, why a peer cannot use it (:attr:`TlsaRecord.problem`), the association
data a certificate or key gives for a selector and matching type, the record that names a
key (``fedscan plan``, renewal checks), and the answer a validating resolver gave
(:class:`TlsaAnswer`: the Edge, :mod:`scanner.dane_dns`, fills it). Kept apart from
:mod:`scanner.dane`, which judges records against a served chain, so that the DNS side, the
planner and the lab read and write records without importing the judge. Pure: no DNS, no
sockets, no clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

USAGES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}
SELECTORS = {0: "Cert", 1: "SPKI"}
MATCHING = {0: "Full", 1: "SHA2-256", 2: "SHA2-512"}
DIGEST_SIZE = {1: 32, 2: 64}
PREVIEW = 16  # hex characters of association data shown in messages


class Security(StrEnum):
    """What the validating resolver said about an answer (the AD bit, or SERVFAIL)."""

    SECURE = "secure"
    INSECURE = "insecure"
    BOGUS = "bogus"  # SERVFAIL from the validating resolver: bogus signatures or no answer
    ERROR = "error"  # timeout, malformed answer: could not ask


@dataclass(frozen=True)
class TlsaRecord:
    usage: int
    selector: int
    mtype: int
    data: bytes

    @classmethod
    def parse(cls, text: str) -> TlsaRecord:
        """Presentation form ``"3 1 1 ab12..."`` (the hex may be split by spaces)."""
        parts = text.split()
        if len(parts) < 4 or not all(p.isdigit() for p in parts[:3]):
            raise ValueError(f"not a TLSA record: {text!r} (expected 'USAGE SELECTOR MTYPE HEX')")
        try:
            data = bytes.fromhex("".join(parts[3:]))
        except ValueError:
            raise ValueError(f"not a TLSA record: {text!r} (association data is not hex)") from None
        return cls(int(parts[0]), int(parts[1]), int(parts[2]), data)

    @property
    def text(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"

    @property
    def short(self) -> str:
        hexdata = self.data.hex()
        tail = "..." if len(hexdata) > PREVIEW else ""
        return f"{self.usage} {self.selector} {self.mtype} {hexdata[:PREVIEW]}{tail}"

    @property
    def acronym(self) -> str:
        """RFC 7218 form, e.g. ``DANE-EE(3) SPKI(1) SHA2-256(1)``."""
        return (f"{USAGES.get(self.usage, 'unknown')}({self.usage}) "
                f"{SELECTORS.get(self.selector, 'unknown')}({self.selector}) "
                f"{MATCHING.get(self.mtype, 'unknown')}({self.mtype})")

    @property
    def problem(self) -> str | None:
        """Why a peer cannot use this record, or None."""
        if self.usage not in USAGES:
            return f"unknown certificate usage {self.usage}"
        if self.selector not in SELECTORS:
            return f"unknown selector {self.selector}"
        if self.mtype not in MATCHING:
            return f"unknown matching type {self.mtype}"
        size = DIGEST_SIZE.get(self.mtype)
        if size is not None and len(self.data) != size:
            return f"{MATCHING[self.mtype]} data is {len(self.data)} bytes, not {size}"
        if not self.data:
            return "empty association data"
        return None


@dataclass(frozen=True)
class TlsaAnswer:
    """What the validating resolver said: the Edge fills this, the Core judges it."""

    name: str  # _<port>._tcp.<target>
    security: Security
    records: tuple[TlsaRecord, ...] = ()
    srv_name: str | None = None  # the SRV owner asked, None for the XMPP fallback
    srv_security: Security | None = None
    resolver: str = ""
    reason: str = ""  # for ERROR/BOGUS: the resolver's words


# --------------------------------------------------------------------------- matching


def spki_der(cert: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def association(data: bytes, mtype: int) -> bytes:
    """The association data of ``data`` (certificate DER or SPKI DER) for a matching type."""
    if mtype == 0:
        return data
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    raise ValueError(f"unknown matching type {mtype}")


def _selected(cert_der: bytes, cert: x509.Certificate | None, selector: int) -> bytes | None:
    if selector == 0:
        return cert_der
    return spki_der(cert) if cert is not None else None


def record_matches(record: TlsaRecord, cert_der: bytes, cert: x509.Certificate | None) -> bool:
    selected = _selected(cert_der, cert, record.selector)
    return selected is not None and association(selected, record.mtype) == record.data


def parse_chain(chain: Sequence[bytes]) -> list[x509.Certificate | None]:
    """Served DER, parsed; None for bytes that are not a certificate (a hostile peer's)."""
    out: list[x509.Certificate | None] = []
    for der in chain:
        try:
            out.append(x509.load_der_x509_certificate(der))
        except ValueError:
            out.append(None)
    return out


# --------------------------------------------------------------------------- naming


def tlsa_for(cert: x509.Certificate | x509.CertificateSigningRequest, *, usage: int = 3,
             selector: int = 1, mtype: int = 1) -> TlsaRecord:
    """The record naming this key (or certificate): ``3 1 1`` by default (RFC 7671 advice)."""
    if selector == 0:
        if not isinstance(cert, x509.Certificate):
            raise ValueError("a CSR has no certificate yet: use selector 1 (SPKI)")
        data = cert.public_bytes(Encoding.DER)
    else:
        data = spki_der(cert)
    return TlsaRecord(usage, selector, mtype, association(data, mtype))


def tlsa_owner(port: int, host: str) -> str:
    """``_<port>._tcp.<host>`` (RFC 6698 section 3; RFC 7673 for SRV targets)."""
    return f"_{port}._tcp.{host.rstrip('.')}"
