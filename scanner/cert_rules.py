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
    leaf: CertInfo, rest: Sequence[CertInfo], policy: Policy, now: dt.datetime
) -> list[Finding]:
    out: list[Finding] = []
    for position, cert in enumerate([leaf, *rest]):
        role = "the certificate" if position == 0 else f"chain certificate {cert.subject}"
        if now > cert.not_after:
            out.append(
                finding(
                    "expired",
                    f"{role} expired on {cert.not_after:%Y-%m-%d} "
                    f"({-days_left(cert.not_after, now)} days ago)",
                    subject=cert.subject,
                    not_after=cert.not_after.isoformat(),
                    position=position,
                )
            )
        elif now < cert.not_before:
            out.append(
                finding(
                    "not-yet-valid",
                    f"{role} is not valid before {cert.not_before:%Y-%m-%d}",
                    subject=cert.subject,
                    not_before=cert.not_before.isoformat(),
                    position=position,
                )
            )
    left = days_left(leaf.not_after, now)
    if leaf.not_before <= now <= leaf.not_after and left <= policy.warn_days:
        severity = Severity.CRITICAL if left <= policy.crit_days else Severity.WARNING
        out.append(
            finding(
                "expires-soon",
                f"the certificate expires in {left} days ({leaf.not_after:%Y-%m-%d})",
                severity,
                days_left=left,
                not_after=leaf.not_after.isoformat(),
            )
        )
    return out


# --------------------------------------------------------------------------- strength


def key_findings(key: KeyInfo, role: str) -> list[Finding]:
    weak = (
        (key.type == "RSA" and key.bits < 2048)
        or key.type == "DSA"
        or (key.type == "EC" and key.bits < 256)
        or key.type == "unknown"
    )
    if not weak:
        return []
    return [finding("weak-key", f"{role} is {key.describe()}", key=key.describe())]


def signature_findings(sig: SignatureInfo, role: str) -> list[Finding]:
    out: list[Finding] = []
    if sig.hash == "md5":
        out.append(finding("weak-signature", f"{role} is signed with MD5", Severity.CRITICAL, hash="md5"))
    elif sig.hash == "sha1":
        out.append(finding("weak-signature", f"{role} is signed with SHA-1", hash="sha1"))
    if sig.pss:
        out.append(finding("pss-signature", f"{role} has an RSASSA-PSS signature", algorithm=sig.algorithm))
    return out


def strength_findings(certs: Sequence[CertInfo]) -> list[Finding]:
    out: list[Finding] = []
    for position, cert in enumerate(certs):
        role = "the certificate's key" if position == 0 else f"the key of {cert.subject}"
        out += key_findings(cert.key, role)
        out += signature_findings(cert.signature, "the certificate" if position == 0 else cert.subject)
    return out
