"""The verifier: a presented chain, the identities it must cover, a policy, trust anchors and a
time in; findings out. Pure: no sockets, no clock reads, no file reads.

Theory of this module
---------------------
* One certificate can have five problems; the administrator must see all five at once, each
  under its own code. So every rule runs independently: names, EKU, dates, key and signature
  strength, CRL, trust. No rule stops another.
* Trust is decided by ``cryptography.x509.verification`` (a browser-grade path builder), with
  the end-entity extension policy relaxed to ``permit_all`` so that EKU and names are judged
  here, by our rules, with our codes. Dates are judged here too: the path is built at a time
  inside the leaf's validity, so an expired leaf reads as ``expired``, not as untrusted.
* When the path builder refuses, we explain why with a plain walk over issuer names and
  signatures: a leaf served without its issuer is ``chain-incomplete``; a chain that ends in
  an unknown root, or in an intermediate whose issuer nobody has, is ``chain-untrusted``; a
  chain that does reach a trusted root and was refused only for its weak key or hash, or an
  out-of-date certificate, is already explained by ``weak-*`` / ``expired`` findings.
* A CN never stands in for a SAN (RFC 6125); it is checked only for being repeated in the SAN.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from scanner.certinfo import (
    CLIENT_AUTH,
    SERVER_AUTH,
    CertInfo,
    KeyInfo,
    RequestInfo,
    SignatureInfo,
    cert_info,
    days_left,
    name_text,
    request_info,
)
from scanner.findings import Finding, Severity, Status, finding, status_of
from scanner.names import Identity, IdentityKind, PresentedNames, covering_name, is_wildcard

ANY_EKU = "2.5.29.37.0"
MAX_CHAIN_DEPTH = 8


@dataclass(frozen=True)
class Policy:
    """What the deployment demands; thresholds are days before notAfter."""

    client_auth_required: bool = True
    warn_days: int = 30
    crit_days: int = 14


@dataclass(frozen=True)
class TrustStore:
    """Trust anchors. ``public`` marks a public root program (Mozilla's), for which public-CA
    policy changes such as the clientAuth removal apply."""

    roots: tuple[x509.Certificate, ...]
    public: bool
    label: str

    @cached_property
    def store(self) -> Store:
        return Store(list(self.roots))

    @cached_property
    def _by_subject(self) -> dict[x509.Name, list[x509.Certificate]]:
        out: dict[x509.Name, list[x509.Certificate]] = {}
        for root in self.roots:
            out.setdefault(root.subject, []).append(root)
        return out

    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        return self._by_subject.get(cert.issuer, [])

    def contains(self, cert: x509.Certificate) -> bool:
        return any(r == cert for r in self._by_subject.get(cert.subject, []))


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


@dataclass(frozen=True)
class Verdict:
    findings: tuple[Finding, ...]
    chain: tuple[CertInfo, ...] = ()  # parsed, in served order; chain[0] is the leaf
    coverage: tuple[Coverage, ...] = ()
    trusted: bool | None = None
    path: tuple[str, ...] = field(default=())  # subjects of the validated path, leaf first

    @property
    def leaf(self) -> CertInfo | None:
        return self.chain[0] if self.chain else None

    @property
    def status(self) -> Status:
        return status_of(self.findings)


# --------------------------------------------------------------------------- entry points


def verify_chain(
    chain_der: Sequence[bytes],
    identities: Iterable[Identity],
    policy: Policy,
    trust: TrustStore,
    now: dt.datetime,
    *,
    served: bool = True,
) -> Verdict:
    """Judge a chain as a peer would. ``served`` is False for files, whose order means nothing."""
    if not chain_der:
        return Verdict((finding("no-certificate", "no certificate was presented"),))
    parsed: list[CertInfo] = []
    findings: list[Finding] = []
    for index, der in enumerate(chain_der):
        try:
            parsed.append(parse_certificate(der))
        except Exception as exc:  # hostile DER must become a finding, never a traceback
            findings.append(
                finding(
                    "certificate-unparseable",
                    f"certificate #{index} of the chain is not valid X.509: {_short(exc)}",
                    position=index,
                )
            )
            if index == 0:
                return Verdict(tuple(findings))
    return verify_parsed(parsed, identities, policy, trust, now, served=served, pre=findings)


@lru_cache(maxsize=256)
def parse_certificate(der: bytes) -> CertInfo:
    """DER to :class:`CertInfo`, memoised: a scan meets the same intermediates (and a pool's
    shared leaf) over and over. Bounded, so a long scan never holds every chain it saw."""
    return cert_info(x509.load_der_x509_certificate(der))


def verify_parsed(
    chain: Sequence[CertInfo],
    identities: Iterable[Identity],
    policy: Policy,
    trust: TrustStore,
    now: dt.datetime,
    *,
    served: bool = True,
    pre: Sequence[Finding] = (),
) -> Verdict:
    leaf = chain[0]
    served_rest = list(chain[1:])
    findings = list(pre)
    coverage = _coverage(leaf.names, identities)
    findings += _name_findings(leaf.common_names, leaf.names, leaf.has_san, coverage)
    findings += _eku_findings(leaf.eku, policy)
    findings += _date_findings(leaf, served_rest, policy, now)
    findings += _strength_findings([leaf, *[c for c in served_rest if not c.self_issued]])
    if not leaf.crl_urls and not leaf.self_issued:
        findings.append(finding("no-crl-distribution-point", "the certificate has no CRL distribution point"))
    if leaf.key.type == "EC":
        findings.append(finding("ecdsa-key", f"the key is ECDSA ({leaf.key.curve})", key=leaf.key.describe()))
    trust_findings, trusted, path = _cached_trust(leaf, served_rest, trust, now, served, findings)
    findings += trust_findings
    if trusted and trust.public and leaf.eku is not None and CLIENT_AUTH in leaf.eku:
        findings.append(
            finding(
                "client-auth-renewal-risk",
                "publicly trusted certificate with clientAuth: public CAs are removing it "
                "(Let's Encrypt since 2026-02-11, Chrome Root Program from 2027-03-15); "
                "the next renewal may break mutual TLS federation",
                issuer=leaf.issuer,
            )
        )
    for problem in leaf.problems:
        findings.append(finding("certificate-unparseable", f"malformed extension: {problem}"))
    return Verdict(tuple(findings), tuple(chain), tuple(coverage), trusted, path)


def verify_request(
    info: RequestInfo, identities: Iterable[Identity], policy: Policy
) -> tuple[list[Finding], tuple[Coverage, ...]]:
    """A CSR: the names, EKUs, key and signature it asks for. Trust and dates do not apply."""
    findings: list[Finding] = []
    if not info.signature_valid:
        findings.append(finding("csr-signature-invalid", "the CSR's signature does not verify"))
    coverage = _coverage(info.names, identities)
    findings += _name_findings(info.common_names, info.names, info.has_san, coverage)
    findings += _eku_findings(info.eku, policy)
    findings += _key_findings(info.key, "the requested key")
    findings += _signature_findings(info.signature, "the CSR")
    for problem in info.problems:
        findings.append(finding("certificate-unparseable", f"malformed extension: {problem}"))
    return findings, tuple(coverage)


def parse_request(der_or_pem: bytes) -> RequestInfo:
    if b"-----BEGIN" in der_or_pem:
        return request_info(x509.load_pem_x509_csr(der_or_pem))
    return request_info(x509.load_der_x509_csr(der_or_pem))


def order_chain(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """Put a bag of certificates (a PEM file in any order) in issuance order, leaf first.

    The leaf is the certificate that issued no other one in the bag, preferring a non-CA.
    Certificates whose names cannot even be decoded go last, for the verifier to report.
    """
    if len(certs) < 2:
        return list(certs)
    names = {id(c): _subject_issuer(c) for c in certs}
    readable = [c for c in certs if names[id(c)] is not None]
    broken = [c for c in certs if names[id(c)] is None]

    def subject(c: x509.Certificate) -> x509.Name:
        pair = names[id(c)]
        assert pair is not None
        return pair[0]

    def issuer(c: x509.Certificate) -> x509.Name:
        pair = names[id(c)]
        assert pair is not None
        return pair[1]

    issuing = {issuer(c) for c in readable if issuer(c) != subject(c)}
    candidates = sorted((c for c in readable if subject(c) not in issuing), key=_is_ca)
    if not candidates:
        return list(certs)
    ordered = [candidates[0]]
    rest = [c for c in readable if c is not candidates[0]]
    while rest and issuer(ordered[-1]) != subject(ordered[-1]):
        nxt = next((c for c in rest if subject(c) == issuer(ordered[-1])), None)
        if nxt is None:
            break
        ordered.append(nxt)
        rest.remove(nxt)
    return ordered + rest + broken


def chains_in(certs: Sequence[x509.Certificate]) -> list[list[x509.Certificate]]:
    """Every end-entity certificate of a bag, each followed by its issuers from the bag.

    Administrators concatenate the old and the new certificate into one PEM; judging only
    whichever comes first would give a false OK, so each leaf is a chain of its own.
    """
    names = {id(c): _subject_issuer(c) for c in certs}
    readable = [c for c in certs if names[id(c)] is not None]
    issuing = {pair[1] for c in readable if (pair := names[id(c)]) and pair[0] != pair[1]}
    leaves = [
        c for c in readable if (pair := names[id(c)]) and pair[0] not in issuing and not _is_ca(c)
    ]
    if len(leaves) < 2:
        return [order_chain(certs)]
    pool = [c for c in readable if not any(c is leaf for leaf in leaves)]
    return [_issuer_chain(leaf, pool, names) for leaf in leaves]


def _issuer_chain(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    names: dict[int, tuple[x509.Name, x509.Name] | None],
) -> list[x509.Certificate]:
    """``leaf`` followed by its issuers found in ``pool``, by issuer name."""
    chain, remaining = [leaf], list(pool)
    current = names[id(leaf)]
    while current is not None and current[0] != current[1]:
        issuer = current[1]
        nxt = next((c for c in remaining if (n := names[id(c)]) and n[0] == issuer), None)
        if nxt is None:
            break
        remaining.remove(nxt)
        chain.append(nxt)
        current = names[id(nxt)]
    return chain


def _subject_issuer(cert: x509.Certificate) -> tuple[x509.Name, x509.Name] | None:
    try:
        return cert.subject, cert.issuer
    except Exception:  # cryptography decodes names lazily; hostile bytes fail here
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except Exception:  # absent or undecodable: not known to be a CA
        return False


# --------------------------------------------------------------------------- names


def _coverage(names: PresentedNames, identities: Iterable[Identity]) -> list[Coverage]:
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


def _name_findings(
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


def _eku_findings(eku: tuple[str, ...] | None, policy: Policy) -> list[Finding]:
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


def _date_findings(
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


def _key_findings(key: KeyInfo, role: str) -> list[Finding]:
    weak = (
        (key.type == "RSA" and key.bits < 2048)
        or key.type == "DSA"
        or (key.type == "EC" and key.bits < 256)
        or key.type == "unknown"
    )
    if not weak:
        return []
    return [finding("weak-key", f"{role} is {key.describe()}", key=key.describe())]


def _signature_findings(sig: SignatureInfo, role: str) -> list[Finding]:
    out: list[Finding] = []
    if sig.hash == "md5":
        out.append(finding("weak-signature", f"{role} is signed with MD5", Severity.CRITICAL, hash="md5"))
    elif sig.hash == "sha1":
        out.append(finding("weak-signature", f"{role} is signed with SHA-1", hash="sha1"))
    if sig.pss:
        out.append(finding("pss-signature", f"{role} has an RSASSA-PSS signature", algorithm=sig.algorithm))
    return out


def _strength_findings(certs: Sequence[CertInfo]) -> list[Finding]:
    out: list[Finding] = []
    for position, cert in enumerate(certs):
        role = "the certificate's key" if position == 0 else f"the key of {cert.subject}"
        out += _key_findings(cert.key, role)
        out += _signature_findings(cert.signature, "the certificate" if position == 0 else cert.subject)
    return out


# --------------------------------------------------------------------------- trust


def _build_time(leaf: CertInfo, now: dt.datetime) -> dt.datetime:
    """A time inside the leaf's validity, so that dates are judged by our own date rules."""
    return min(max(now, leaf.not_before), leaf.not_after)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except ValueError:
        # cryptography refuses SHA-1/MD5 here; the walk only asks "who signed this?", so
        # check the signature itself and let weak-signature judge the hash.
        return _legacy_signature_ok(cert, issuer)
    except Exception:  # bad signature, unsupported key type
        return False
    return True


def _legacy_signature_ok(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        key = issuer.public_key()  # a hostile issuer's key may not even decode
        digest = cert.signature_hash_algorithm
        if digest is None:
            return False
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), digest)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(digest))
        else:
            return False
    except Exception:  # InvalidSignature, UnsupportedAlgorithm
        return False
    return True


def _walk(leaf: CertInfo, rest: Sequence[CertInfo], trust: TrustStore) -> tuple[str, x509.Certificate]:
    """Follow issuer links by hand: "anchored", "untrusted-root", "missing-issuer" or
    "too-long", with the last certificate reached."""
    current = leaf.cert
    pool = [c.cert for c in rest]
    for _ in range(MAX_CHAIN_DEPTH + 1):
        if any(_issued_by(current, root) for root in trust.issuers_of(current)):
            return "anchored", current
        if current.issuer == current.subject:
            return "untrusted-root", current
        nxt = next((c for c in pool if _issued_by(current, c)), None)
        if nxt is None:
            return "missing-issuer", current
        pool.remove(nxt)
        current = nxt
    return "too-long", current


_TRUST_CACHE_SIZE = 512
_TrustKey = tuple[tuple[str, ...], int, dt.datetime, bool, frozenset[str]]
_TrustResult = tuple[tuple[Finding, ...], bool, tuple[str, ...]]
_trust_cache: OrderedDict[_TrustKey, tuple[TrustStore, _TrustResult]] = OrderedDict()


def _cached_trust(
    leaf: CertInfo,
    rest: Sequence[CertInfo],
    trust: TrustStore,
    now: dt.datetime,
    served: bool,
    so_far: Sequence[Finding],
) -> _TrustResult:
    """Path building depends on the chain, not on the names it must cover: a chain judged
    for its SIP endpoint (SRV target) and its XMPP endpoint (domain) is built once. The
    cache is bounded and keyed by fingerprints; the store is compared by identity."""
    explained = frozenset(f.code for f in so_far) & _EXPLAINED
    key = (tuple(c.sha256 for c in (leaf, *rest)), id(trust), now, served, explained)
    hit = _trust_cache.get(key)
    if hit is not None and hit[0] is trust:
        _trust_cache.move_to_end(key)
        return hit[1]
    result = _trust(leaf, rest, trust, now, served, explained)
    _trust_cache[key] = (trust, result)
    if len(_trust_cache) > _TRUST_CACHE_SIZE:
        _trust_cache.popitem(last=False)
    return result


_EXPLAINED = frozenset({"weak-key", "weak-signature", "expired", "not-yet-valid"})


def _trust(
    leaf: CertInfo,
    rest: Sequence[CertInfo],
    trust: TrustStore,
    now: dt.datetime,
    served: bool,
    explained: frozenset[str],
) -> _TrustResult:
    """``explained``: codes already found (weak key or hash, dates) that account for a
    refusal by the path builder."""
    if trust.contains(leaf.cert):
        return (), True, (leaf.subject,)
    if leaf.self_issued and _issued_by(leaf.cert, leaf.cert):
        return (
            (finding("self-signed", "the certificate is self-signed", subject=leaf.subject),),
            False,
            (),
        )
    builder = (
        PolicyBuilder()
        .store(trust.store)
        .time(_build_time(leaf, now))
        .max_chain_depth(MAX_CHAIN_DEPTH)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all()
        )
    )
    try:
        built = builder.build_client_verifier().verify(leaf.cert, [c.cert for c in rest])
    except VerificationError as exc:
        reason = str(exc)
    except Exception as exc:  # unsupported key types and the like
        reason = _short(exc)
    else:
        path = tuple(name_text(c.subject) for c in built.chain)
        return tuple(_order_findings(rest, built.chain, served)), True, path
    outcome, last = _walk(leaf, rest, trust)
    if outcome == "anchored" and explained:
        # Signatures do reach a trusted root; the builder refused for what those findings
        # already say (it rejects weak algorithms and out-of-date CAs).
        return (), True, ()
    if outcome == "missing-issuer" and last == leaf.cert:
        incomplete = finding(
            "chain-incomplete",
            f"the issuer of {leaf.subject} ({leaf.issuer}) was not served and is not a trusted root",
            missing_issuer=leaf.issuer,
        )
        return (incomplete,), False, ()
    top = cert_info(last)
    if outcome == "too-long":
        message = f"the chain is longer than {MAX_CHAIN_DEPTH} certificates"
    elif outcome == "untrusted-root":
        message = f"the chain ends at {top.subject}, which is not a trusted root ({trust.label})"
    elif outcome == "missing-issuer":
        # The server does send intermediates; the missing link above them is far more often
        # a private or unknown root than one more forgotten intermediate.
        message = (
            f"the chain ends at {top.subject}, whose issuer {top.issuer} is neither served nor "
            f"a trusted root ({trust.label})"
        )
    else:
        message = f"path validation failed: {reason}"
    return (finding("chain-untrusted", message, reason=reason, trust_store=trust.label),), False, ()


def _order_findings(
    rest: Sequence[CertInfo], path: Sequence[x509.Certificate], served: bool
) -> list[Finding]:
    """The intermediates of the validated path must be served first, leaf's issuer first
    (the root may follow or not)."""
    if not served:
        return []
    intermediates = list(path[1:-1])
    if [c.cert for c in rest[: len(intermediates)]] == intermediates:
        return []
    return [
        finding(
            "chain-order",
            "the server sends its chain out of order (each certificate should be followed "
            "by its issuer)",
            served=[c.subject for c in rest],
        )
    ]


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
