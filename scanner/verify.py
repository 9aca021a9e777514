"""The verifier: a presented chain, the identities it must cover, a policy, trust anchors and a
time in; findings out. Pure: no sockets, no clock reads, no file reads.

Theory of this module
---------------------
This is the front door; the work is done in three modules (the split sslyze makes between
its analyzers):

* :mod:`scanner.cert_rules`: each rule (names, EKU, dates, key and signature strength) as a
  plain function with its own codes, so that one certificate's five problems are five findings;
* :mod:`scanner.trust_path`: which certificates form the path to a trust anchor
  (``cryptography.x509.verification``), and why there is none;
* :mod:`scanner.bundle`: files' bags of certificates put in order, one chain per leaf.

Names used by the rest of fedscan (``Policy``, ``TrustStore``, ``Coverage``, ``order_chain``,
``chains_in``) are re-exported here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from scanner.bundle import chains_in, order_chain
from scanner.cert_rules import (
    Coverage,
    Policy,
    client_auth_permission_findings,
    coverage,
    date_findings,
    eku_findings,
    key_findings,
    leaf_findings,
    name_findings,
    signature_findings,
    strength_findings,
)
from scanner.certinfo import (
    CLIENT_AUTH,
    CertInfo,
    RequestInfo,
    cert_info,
    request_info,
)
from scanner.certload import load_der_certificate
from scanner.findings import Finding, Severity, Status, finding, status_of
from scanner.names import Identity
from scanner.trust_path import TrustStore, cached_trust, short_error

__all__ = [
    "Coverage",
    "Policy",
    "TrustStore",
    "Verdict",
    "chains_in",
    "order_chain",
    "parse_certificate",
    "parse_request",
    "verify_chain",
    "verify_parsed",
    "verify_request",
]


@dataclass(frozen=True)
class Verdict:
    findings: tuple[Finding, ...]
    chain: tuple[CertInfo, ...] = ()  # parsed, in served order; chain[0] is the leaf
    coverage: tuple[Coverage, ...] = ()
    trusted: bool | None = None
    path: tuple[str, ...] = field(default=())  # subjects of the validated path, leaf first
    # the validated path as DER, leaf first: it may end at a root the server never sent, which
    # a PKIX-TA(0) TLSA record can name (scanner.dane)
    path_der: tuple[bytes, ...] = field(default=())

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
                    # the parser's own text ("ParseError { kind: ShortData ... }") stays in
                    # the details, for whoever debugs the peer; the line says what it means
                    f"certificate #{index} of the chain is not valid X.509 (its DER encoding "
                    f"does not parse; {len(der)} bytes)",
                    position=index, error=short_error(exc),
                )
            )
            if index == 0:
                return Verdict(tuple(findings))
    return verify_parsed(parsed, identities, policy, trust, now, served=served, pre=findings)


@lru_cache(maxsize=256)
def parse_certificate(der: bytes) -> CertInfo:
    """DER to :class:`CertInfo`, memoised: a scan meets the same intermediates (and a pool's
    shared leaf) over and over. Bounded, so a long scan never holds every chain it saw."""
    return cert_info(load_der_certificate(der))


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
    covered = coverage(leaf.names, identities)
    findings += name_findings(leaf.common_names, leaf.names, leaf.has_san, covered)
    findings += eku_findings(leaf.eku, policy)
    findings += leaf_findings(leaf)
    # Dates, strength and the CAs' EKU are judged on the path that validates (or, with none,
    # the one a peer would try), never on certificates served but not needed.
    built = cached_trust(leaf, served_rest, trust, now, served)
    path = built.path or (leaf,)
    on_path = {c.sha256 for c in path}
    unused = [c for c in served_rest if c.sha256 not in on_path]
    findings += date_findings(path, unused, policy, now)
    findings += strength_findings(path)
    client_auth = client_auth_permission_findings(path, policy)
    findings += client_auth
    if not leaf.crl_urls and not leaf.self_issued:
        findings.append(finding("no-crl-distribution-point", "the certificate has no CRL distribution point"))
    if leaf.key.type == "EC":
        findings.append(finding("ecdsa-key", f"the key is ECDSA ({leaf.key.curve})", key=leaf.key.describe()))
    findings += built.findings
    trusted = built.trusted
    if trusted and trust.public and leaf.eku is not None and CLIENT_AUTH in leaf.eku and not client_auth:
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
    subjects = tuple(c.subject for c in path) if trusted else ()
    path_der = tuple(c.cert.public_bytes(Encoding.DER) for c in path) if trusted else ()
    return Verdict(tuple(findings), tuple(chain), tuple(covered), trusted, subjects, path_der)


def verify_request(
    info: RequestInfo, identities: Iterable[Identity], policy: Policy
) -> tuple[list[Finding], tuple[Coverage, ...]]:
    """A CSR: the names, EKUs, key and signature it asks for. Trust and dates do not apply."""
    findings: list[Finding] = []
    if not info.signature_valid:
        findings.append(finding("csr-signature-invalid", "the CSR's signature does not verify"))
    covered = coverage(info.names, identities)
    findings += name_findings(info.common_names, info.names, info.has_san, covered)
    findings += eku_findings(info.eku, policy)
    findings += key_findings(info.key, "the requested key")
    findings += signature_findings(info.signature, "the CSR", sha1=Severity.WARNING)
    for problem in info.problems:
        findings.append(finding("certificate-unparseable", f"malformed extension: {problem}"))
    return findings, tuple(covered)


def parse_request(der_or_pem: bytes) -> RequestInfo:
    if b"-----BEGIN" in der_or_pem:
        return request_info(x509.load_pem_x509_csr(der_or_pem))
    return request_info(x509.load_der_x509_csr(der_or_pem))
