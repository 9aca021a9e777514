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

One :class:`Verifier` per scan or per command owns every cache of verification: it is built
with the trust store, the time of judgement and the :class:`Policy`, and handed to whoever
verifies (the endpoint judge, the offline checks, the bench). Nothing is cached at module level,
so two Verifiers (another trust store, another time) never share an answer, and a test or a
second command in the same process starts clean. A census verifies the same chain thousands of
times (a pool's nodes, one Edge answering for many domains, the same intermediates everywhere),
so each cache is keyed by what the answer depends on once trust, time and policy are fixed:

* ``certificates``: DER to :class:`CertInfo` (the same intermediates and a pool's shared leaf);
* ``anchors``: a trust anchor's facts (the same few roots end every path);
* ``paths``: path building (:func:`scanner.trust_path.build_path`) per chain, whatever names it
  must cover (a domain's SIP and XMPP endpoints serve one chain);
* ``judgements``: a chain judged for a set of names, JSON-ready (:class:`Judgement`): summaries,
  never the certificates, so memory stays flat over a census.

All are bounded LRU tables (:class:`scanner.lru.Lru`) that count their hits (:meth:`Verifier.stats`).
:func:`verify_chain` is the one-shot form (a Verifier for one chain), for tests and tools.

Names used by the rest of fedscan (``Policy``, ``TrustStore``, ``Coverage``) are re-exported
here; ordering a file's certificates is :mod:`scanner.bundle`'s, beside the loaders.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

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
from scanner.certload import exact_in, load_der_exact
from scanner.certsummary import CertSummary
from scanner.findings import Finding, Severity, Status, finding, status_of
from scanner.lru import CacheStats, Lru
from scanner.names import Identity
from scanner.trust_path import PathResult, TrustStore, build_path, short_error

__all__ = [
    "Coverage",
    "Judgement",
    "Policy",
    "TrustStore",
    "Verdict",
    "Verifier",
    "parse_certificate",
    "parse_request",
    "verify_chain",
    "verify_request",
]

# Cache sizes: a census meets a few thousand distinct chains, most of them several times in a
# row (a pool, a domain's SIP and XMPP endpoints); the tables only have to outlive that.
CERTIFICATES_CACHED = 256
ANCHORS_CACHED = 512
PATHS_CACHED = 512
JUDGEMENTS_CACHED = 1024


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


@dataclass(frozen=True)
class Judgement:
    """What a report takes from a verified chain: all of it JSON-ready, no certificates, so a
    cache of thousands of them stays small."""

    findings: tuple[Finding, ...]
    leaf: CertSummary | None  # the leaf's summary, days_left counted at the Verifier's time
    chain: tuple[CertSummary, ...]  # the rest of the chain as served, summarised
    coverage: tuple[Coverage, ...]
    trusted: bool = False  # the Web PKI path validated (PKIX-TA/EE TLSA usages need it)
    path: tuple[bytes, ...] = ()  # that path as DER, leaf first (a PKIX-TA may name its root)


# --------------------------------------------------------------------------- the Verifier


class Verifier:
    """Verification for one trust store, one time of judgement and one policy; owns the caches.

    ``trust`` may be a function that loads the store: it is called once, when a chain is first
    verified (a CSR check never needs it, so ``fedscan cert request.csr`` reads no CA bundle).
    """

    def __init__(
        self,
        trust: TrustStore | Callable[[], TrustStore],
        now: dt.datetime,
        policy: Policy | None = None,
    ) -> None:
        self._trust = trust
        self.now = now
        self.policy = policy or Policy()
        self._certificates: Lru[bytes, CertInfo] = Lru(CERTIFICATES_CACHED)
        self._anchors: Lru[x509.Certificate, CertInfo] = Lru(ANCHORS_CACHED)
        self._paths: Lru[tuple[tuple[tuple[str, bytes | None], ...], bool], PathResult] = (
            Lru(PATHS_CACHED)
        )
        self._judgements: Lru[tuple[tuple[bytes, ...], tuple[Identity, ...], bool], Judgement] = (
            Lru(JUDGEMENTS_CACHED)
        )

    @property
    def trust(self) -> TrustStore:
        if not isinstance(self._trust, TrustStore):
            self._trust = self._trust()
        return self._trust

    def stats(self) -> dict[str, CacheStats]:
        """Hits, misses and size of each cache (tests and the bench read the hit rates)."""
        return {
            "certificates": self._certificates.stats,
            "anchors": self._anchors.stats,
            "paths": self._paths.stats,
            "judgements": self._judgements.stats,
        }

    def certificate(self, der: bytes) -> CertInfo:
        """DER to :class:`CertInfo`, remembered. Raises ValueError for DER that does not parse."""
        return self._certificates.get(der, lambda: parse_certificate(der))

    def verify(
        self, chain_der: Sequence[bytes], identities: Iterable[Identity], *, served: bool = True
    ) -> Verdict:
        """Judge a chain as a peer would. ``served`` is False for files, whose order means nothing."""
        if not chain_der:
            return Verdict((finding("no-certificate", "no certificate was presented"),))
        parsed: list[CertInfo] = []
        findings: list[Finding] = []
        for index, der in enumerate(chain_der):
            try:
                parsed.append(self.certificate(der))
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
        return self.verify_parsed(parsed, identities, served=served, pre=findings)

    def verify_parsed(
        self,
        chain: Sequence[CertInfo],
        identities: Iterable[Identity],
        *,
        served: bool = True,
        pre: Sequence[Finding] = (),
    ) -> Verdict:
        leaf, rest = chain[0], chain[1:]
        trust = self.trust
        # keyed by fingerprint, and by the bytes really signed: two certificates that differ
        # only in fractional seconds load as one whole-seconds copy (scanner.certload)
        built = self._paths.get(
            (tuple((c.sha256, c.signed_tbs) for c in chain), served),
            lambda: build_path(leaf, rest, trust, self.now, served, anchor_info=self._anchor),
        )
        return _verdict(chain, identities, self.policy, trust, self.now, built, pre)

    def judged(
        self, chain_der: tuple[bytes, ...], identities: tuple[Identity, ...], *, served: bool = True
    ) -> Judgement:
        """:meth:`verify`, summarised for a report and remembered: a chain served by many nodes
        (a pool, one Edge answering for several domains) is judged once per set of names."""
        return self._judgements.get(
            (chain_der, identities, served), lambda: self._judge(chain_der, identities, served)
        )

    def request(
        self, info: RequestInfo, identities: Iterable[Identity]
    ) -> tuple[list[Finding], tuple[Coverage, ...]]:
        """A CSR, judged by this Verifier's policy (trust and dates do not apply)."""
        return verify_request(info, identities, self.policy)

    def _judge(
        self, chain_der: tuple[bytes, ...], identities: tuple[Identity, ...], served: bool
    ) -> Judgement:
        verdict = self.verify(chain_der, identities, served=served)
        leaf = verdict.leaf
        return Judgement(
            verdict.findings,
            leaf.summary(self.now) if leaf else None,
            tuple(c.summary(self.now) for c in verdict.chain[1:]),
            verdict.coverage,
            bool(verdict.trusted),
            verdict.path_der,
        )

    def _anchor(self, cert: x509.Certificate) -> CertInfo:
        return self._anchors.get(cert, lambda: cert_info(cert, exact_in(self.trust.der_of(cert))))


# --------------------------------------------------------------------------- one-shot forms


def verify_chain(
    chain_der: Sequence[bytes],
    identities: Iterable[Identity],
    policy: Policy,
    trust: TrustStore,
    now: dt.datetime,
    *,
    served: bool = True,
) -> Verdict:
    """One chain, judged by a Verifier of its own (nothing kept): for tests and tools. Whatever
    verifies many chains builds one :class:`Verifier` and keeps it."""
    return Verifier(trust, now, policy).verify(chain_der, identities, served=served)


def parse_certificate(der: bytes) -> CertInfo:
    """DER to :class:`CertInfo` (not remembered: :meth:`Verifier.certificate` is)."""
    return cert_info(*load_der_exact(der))


def _verdict(
    chain: Sequence[CertInfo],
    identities: Iterable[Identity],
    policy: Policy,
    trust: TrustStore,
    now: dt.datetime,
    built: PathResult,
    pre: Sequence[Finding],
) -> Verdict:
    """Every rule on a parsed chain whose path is built."""
    leaf = chain[0]
    served_rest = list(chain[1:])
    findings = list(pre)
    covered = coverage(leaf.names, identities)
    findings += name_findings(leaf.common_names, leaf.names, leaf.has_san, covered)
    findings += eku_findings(leaf.eku, policy)
    findings += leaf_findings(leaf)
    # Dates, strength and the CAs' EKU are judged on the path that validates (or, with none,
    # the one a peer would try), never on certificates served but not needed.
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
