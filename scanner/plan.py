"""The certificate an external Edge needs, and a CSR that asks for exactly that.

Modelled on the Lync Server 2013 certificate summary for "SIP, XMPP federation and public IM":
subject = Access Edge FQDN, repeated as the first SAN; the web conferencing FQDN; sip.<domain>
for every SIP domain; <domain> for every XMPP domain; EKU Server and Client Authentication.
Pure except :func:`write_csr`, which writes the key and the request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scanner.deployment import Deployment
from scanner.tlsa import TlsaRecord, tlsa_for


class PlanError(ValueError):
    """A deployment that cannot yield a certificate plan (one line for the user)."""


@dataclass(frozen=True)
class PlanEntry:
    name: str
    reason: str


@dataclass(frozen=True)
class CertificatePlan:
    subject: str
    sans: tuple[PlanEntry, ...]
    eku: tuple[str, ...] = ("serverAuth", "clientAuth")
    key: str = "RSA 2048 (or larger), exportable"
    signature: str = "sha256WithRSAEncryption (PKCS#1 v1.5; not RSASSA-PSS)"

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "sans": [{"name": e.name, "reason": e.reason} for e in self.sans],
            "eku": list(self.eku),
            "key": self.key,
            "signature": self.signature,
            "crl_distribution_point": "required (Lync/SfB check revocation)",
        }


def certificate_plan(dep: Deployment) -> CertificatePlan:
    subject = dep.access_edge_fqdn
    if subject is None:
        raise PlanError("give at least one --sip-domain, or --edge-fqdn")
    entries: dict[str, str] = {subject: "subject name, repeated in the SAN (Access Edge FQDN)"}
    if dep.webconf_fqdn:
        entries.setdefault(dep.webconf_fqdn, "web conferencing Edge FQDN")
    for d in dep.sip_domains:
        entries.setdefault(f"sip.{d}", f"SIP namespace of {d}: SRV target partners check")
    for d in dep.xmpp_domains:
        entries.setdefault(d, f"XMPP namespace of {d}: XMPP peers check the bare domain")
    for n in dep.extra_sans:
        entries.setdefault(n, "extra name")
    return CertificatePlan(subject, tuple(PlanEntry(n, r) for n, r in entries.items()))


def build_csr(plan: CertificatePlan, key: rsa.RSAPrivateKey) -> x509.CertificateSigningRequest:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, plan.subject)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(e.name) for e in plan.sans]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def write_csr(plan: CertificatePlan, csr_path: Path, key_path: Path, *, bits: int = 2048) -> None:
    """Write a new private key (mode 0600, never overwriting) and the CSR for the plan."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    csr_path.write_bytes(build_csr(plan, key).public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True)
class TlsaEntry:
    """One TLSA record to publish, with the zone-file line and why."""

    owner: str
    record: TlsaRecord
    why: str

    @property
    def zone_line(self) -> str:
        return f"{self.owner}. IN TLSA {self.record.text}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.owner, "record": self.record.text, "description": self.record.acronym,
                "zone_line": self.zone_line, "why": self.why}


TLSA_PORTS = ((5061, "SIP federation"), (5269, "XMPP server-to-server"))


def tlsa_plan(
    host: str | None,
    leaf: x509.Certificate | x509.CertificateSigningRequest,
    issuer: x509.Certificate | None = None,
) -> tuple[TlsaEntry, ...]:
    """The TLSA records that make DANE peers accept ``leaf``'s key on ``host`` (the SRV target:
    the Access Edge FQDN), or on a placeholder owner when no host is known.

    ``3 1 1`` (DANE-EE, SPKI, SHA2-256) first: RFC 7671's advice, and the only record a CSR can
    give, so it can be published before the certificate is even issued ("3 1 1 then rotate").
    ``2 0 1`` of the issuing CA, when the file carries it, survives renewals from that CA but
    needs the server to send the intermediate.
    """
    owners = [(f"_{port}._tcp.{host}", what) for port, what in TLSA_PORTS] if host else [
        ("_<port>._tcp.<SRV target>", "each federation SRV target and port")]
    entries = [TlsaEntry(owner, tlsa_for(leaf), f"this key on {what} (recommended; RFC 7671)")
               for owner, what in owners]
    if issuer is not None:
        entries += [TlsaEntry(owner, tlsa_for(issuer, usage=2, selector=0),
                              f"the issuing CA on {what}: survives renewals from this CA, if the "
                              "server sends the intermediate")
                    for owner, what in owners]
    return tuple(entries)
