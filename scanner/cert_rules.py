"""The certificate rules: names, EKU, dates, key and signature strength, each with its codes.

Theory of this module
---------------------
One certificate can have five problems; the administrator must see all five at once, each
under its own code. So every rule here is a plain function of plain values (``CertInfo``
facts, the deployment's :class:`Policy`, a time given by the caller) returning findings, and
no rule stops another. Trust (which certificates form the path) is decided elsewhere
(:mod:`scanner.trust_path`); the rules are told which certificates to judge.
A CN never stands in for a SAN (RFC 6125); it is checked only for being repeated in the SAN.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from scanner.certinfo import (
    CLIENT_AUTH,
    SERVER_AUTH,
    CertInfo,
    KeyInfo,
    SignatureInfo,
    days_left,
    eku_name,
)
from scanner.findings import Finding, Severity, finding
from scanner.names import Identity, IdentityKind, PresentedNames, covering_name, is_wildcard

ANY_EKU = "2.5.29.37.0"


@dataclass(frozen=True)
class Policy:
    """What the deployment demands; thresholds are days before notAfter."""

    client_auth_required: bool = True
    warn_days: int = 30
    crit_days: int = 14


@dataclass(frozen=True)
class Coverage:
    identity: Identity
    covered_by: str | None
    how: str | None  # "dns-id", "wildcard", "srv-id", "xmpp-addr"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.identity.name,
            "kind": str(self.identity.kind),
            "reason": self.identity.reason,
            "covered_by": self.covered_by,
            "match": self.how,
        }


# --------------------------------------------------------------------------- names


def coverage(names: PresentedNames, identities: Iterable[Identity]) -> list[Coverage]:
    seen: set[str] = set()
    out: list[Coverage] = []
    for ident in identities:
        if ident.name in seen:
            continue
        seen.add(ident.name)
        hit = covering_name(names, ident)
        out.append(Coverage(ident, hit[0] if hit else None, hit[1] if hit else None))
    return out


_KIND_TEXT = {
    IdentityKind.SRV_TARGET: "SRV target",
    IdentityKind.SIP_NAMESPACE: "SIP namespace",
    IdentityKind.XMPP_DOMAIN: "XMPP domain",
    IdentityKind.EXTRA: "extra name",
    IdentityKind.EDGE_FQDN: "Access Edge FQDN",
}


def name_findings(
    common_names: Sequence[str],
    names: PresentedNames,
    has_san: bool,
    coverage: Sequence[Coverage],
) -> list[Finding]:
    out: list[Finding] = []
    if not has_san:
        out.append(finding("san-extension-missing", "the certificate has no subjectAltName extension"))
    for cov in coverage:
        if cov.covered_by is None:
            ident = cov.identity
            why = ident.reason or _KIND_TEXT[ident.kind]
            out.append(
                finding(
                    "san-missing",
                    f"{ident.name} ({why}) is not in the SAN",
                    name=ident.name,
                    kind=str(ident.kind),
                    reason=ident.reason,
                )
            )
    dns_lower = {n.lower() for n in names.dns}
    for cn in common_names:
        if is_wildcard(cn):
            out.append(finding("wildcard-cn", f"the subject CN is a wildcard: {cn}", cn=cn))
        if cn.lower().rstrip(".") not in dns_lower:
            out.append(finding("cn-not-in-san", f"the subject CN {cn} is not repeated in the SAN", cn=cn))
    wildcards = [n for n in names.dns if is_wildcard(n)]
    if wildcards:
        out.append(
            finding(
                "wildcard-san",
                f"wildcard SAN {', '.join(wildcards)}: not supported on a Lync/SfB Access Edge",
                names=wildcards,
            )
        )
    return out


# --------------------------------------------------------------------------- key usage


def eku_findings(eku: tuple[str, ...] | None, policy: Policy) -> list[Finding]:
    if eku is None:
        return [finding("eku-absent", "no Extended Key Usage extension: every purpose is permitted")]
    out: list[Finding] = []
    present = ", ".join(eku) or "none"
    if SERVER_AUTH not in eku and ANY_EKU not in eku:
        out.append(
            finding(
                "eku-server-auth-missing",
                "Extended Key Usage lacks Server Authentication",
                eku=list(eku),
            )
        )
    if CLIENT_AUTH not in eku and ANY_EKU not in eku:
        severity = Severity.CRITICAL if policy.client_auth_required else Severity.WARNING
        out.append(
            finding(
                "eku-client-auth-missing",
                "Extended Key Usage lacks Client Authentication (federation is mutual TLS)",
                severity,
                eku=list(eku),
                present=present,
            )
        )
    return out


# --------------------------------------------------------------------------- dates


def date_findings(
    path: Sequence[CertInfo], unused: Sequence[CertInfo], policy: Policy, now: dt.datetime
) -> list[Finding]:
    """Dates of the certificates on the path (``path[0]``, the leaf, always), at the exact
    instant ``now``. A served certificate the path does not need (an old cross-sign still sent
    after a CA rollover, a stale intermediate in a bundle) is a warning of its own when
    expired: peers that build their path through it (older OpenSSL, some Java and Windows
    builds) fail, the others do not care."""
    out: list[Finding] = []
    for position, cert in enumerate(path):
        role = "the certificate" if position == 0 else f"chain certificate {cert.subject}"
        if now > cert.not_after:
            out.append(
                finding(
                    "expired",
                    f"{role} expired {_ago(cert.not_after, now)}",
                    subject=cert.subject,
                    not_after=_iso(cert.not_after),
                    days_ago=(now - cert.not_after) // dt.timedelta(days=1),
                    position=position,
                )
            )
        elif now < cert.not_before:
            out.append(
                finding(
                    "not-yet-valid",
                    f"{role} is not valid before {cert.not_before:%Y-%m-%d}",
                    subject=cert.subject,
                    not_before=_iso(cert.not_before),
                    position=position,
                )
            )
    for cert in unused:
        if now > cert.not_after:
            out.append(
                finding(
                    "chain-unused-expired",
                    f"the server also sends {cert.subject} (issued by {cert.issuer}), which "
                    f"expired {_ago(cert.not_after, now)}; the valid path does not need it, "
                    "but peers that build their path through it fail",
                    subject=cert.subject,
                    issuer=cert.issuer,
                    not_after=_iso(cert.not_after),
                )
            )
    leaf = path[0]
    left = days_left(leaf.not_after, now)
    if leaf.not_before <= now <= leaf.not_after and left <= policy.warn_days:
        severity = Severity.CRITICAL if left <= policy.crit_days else Severity.WARNING
        when = "today" if left == 0 else f"in {left} day{'' if left == 1 else 's'}"
        out.append(
            finding(
                "expires-soon",
                f"the certificate expires {when} ({leaf.not_after:%Y-%m-%d})",
                severity,
                days_left=left,
                not_after=leaf.not_after.isoformat(),
            )
        )
    return out


def _ago(not_after: dt.datetime, now: dt.datetime) -> str:
    """"today" for less than a whole day (not "1 days ago" a millisecond after notAfter)."""
    days = (now - not_after) // dt.timedelta(days=1)
    if days == 0:
        return f"today ({_iso(not_after)})"
    return f"on {not_after:%Y-%m-%d} ({days} day{'' if days == 1 else 's'} ago)"


def _iso(t: dt.datetime) -> str:
    """ISO 8601 with the fraction of a second only when there is one."""
    return t.isoformat(timespec="microseconds" if t.microsecond else "seconds")


# --------------------------------------------------------------------------- strength


def weak_key(key: KeyInfo) -> bool:
    return (
        (key.type == "RSA" and key.bits < 2048)
        or key.type == "DSA"
        or (key.type == "EC" and key.bits < 256)
        or key.type == "unknown"
    )


def weak_hash(sig: SignatureInfo) -> bool:
    return sig.hash in ("md5", "sha1")


def key_findings(key: KeyInfo, role: str) -> list[Finding]:
    if not weak_key(key):
        return []
    return [finding("weak-key", f"{role} is {key.describe()}", key=key.describe())]


def signature_findings(
    sig: SignatureInfo, role: str, sha1: Severity = Severity.CRITICAL
) -> list[Finding]:
    """MD5 and SHA-1 are critical on a certificate: OpenSSL 3 at its default security level
    (prosody, ejabberd, kamailio) and current Windows refuse the chain ("CA signature digest
    algorithm too weak"). A CSR's hash is only advice (``sha1`` severity)."""
    out: list[Finding] = []
    if sig.hash == "md5":
        out.append(finding("weak-signature", f"{role} is signed with MD5", Severity.CRITICAL, hash="md5"))
    elif sig.hash == "sha1":
        out.append(finding("weak-signature", f"{role} is signed with SHA-1", sha1, hash="sha1"))
    if sig.pss:
        out.append(finding("pss-signature", f"{role} has an RSASSA-PSS signature", algorithm=sig.algorithm))
    return out


def strength_findings(path: Sequence[CertInfo]) -> list[Finding]:
    """Keys and signatures of every certificate on the path, except the signature a root
    puts on itself: nobody verifies it (the root is trusted as a key, not as a signature)."""
    out: list[Finding] = []
    for position, cert in enumerate(path):
        role = "the certificate's key" if position == 0 else f"the key of {cert.subject}"
        out += key_findings(cert.key, role)
        if position > 0 and position == len(path) - 1 and cert.self_issued:
            continue
        out += signature_findings(cert.signature, "the certificate" if position == 0 else cert.subject)
    return out


# --------------------------------------------------------------------------- the path's CAs


def client_auth_permission_findings(path: Sequence[CertInfo], policy: Policy) -> list[Finding]:
    """A CA on the path whose EKU excludes Client Authentication: peers that check EKU
    through the chain (OpenSSL's purpose check: prosody, ejabberd, kamailio) refuse the
    certificate as a TLS *client* certificate (kamailio: ``unsupported_certificate``), even
    when the leaf lists clientAuth. Public CAs are moving whole hierarchies to serverAuth
    only (2026); the server side is unaffected, so this is never ``chain-untrusted``."""
    out: list[Finding] = []
    severity = Severity.CRITICAL if policy.client_auth_required else Severity.WARNING
    for cert in path[1:]:
        if cert.eku is None or CLIENT_AUTH in cert.eku or ANY_EKU in cert.eku:
            continue
        out.append(
            finding(
                "chain-client-auth-not-permitted",
                f"CA certificate {cert.subject} restricts its EKU to "
                f"{', '.join(eku_name(o) for o in cert.eku) or 'nothing'}: peers that check EKU "
                "through the chain refuse this certificate for mutual TLS (federation), "
                "whatever the leaf's EKU says",
                severity,
                subject=cert.subject,
                eku=[eku_name(o) for o in cert.eku],
            )
        )
    return out


def leaf_findings(leaf: CertInfo) -> list[Finding]:
    """What the web PKI end-entity profile refuses and fedscan names itself."""
    out: list[Finding] = []
    if leaf.is_ca or leaf.key_cert_sign:
        flags = (("basicConstraints CA:TRUE", leaf.is_ca), ("keyUsage keyCertSign", leaf.key_cert_sign))
        what = ", ".join(text for text, on in flags if on)
        out.append(
            finding(
                "leaf-is-ca",
                f"the server's certificate is a CA certificate ({what}); TLS peers refuse a CA "
                "certificate as an end-entity certificate",
                ca=leaf.is_ca,
                key_cert_sign=leaf.key_cert_sign,
            )
        )
    if leaf.signed_tbs is not None:
        out.append(
            finding(
                "validity-fractional-seconds",
                "the validity dates are encoded with fractional seconds (RFC 5280 forbids "
                f"them; notAfter {_iso(leaf.not_after)}): OpenSSL and Windows accept the "
                "certificate, strict parsers (Go, rustls, Python cryptography) refuse it",
                not_before=_iso(leaf.not_before),
                not_after=_iso(leaf.not_after),
            )
        )
    if not leaf.serial_positive:
        out.append(
            finding(
                "serial-not-positive",
                f"the serial number is {'zero' if leaf.serial == '0' else 'negative'} (RFC 5280 "
                "requires a positive one); strict parsers (Go since 1.23, future Python "
                "cryptography) refuse the certificate",
                serial=leaf.serial,
            )
        )
    return out
