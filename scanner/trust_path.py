"""Trust path building: which certificates form the path to a trust anchor, and why not.

Theory of this module
---------------------
* Trust is decided by ``cryptography.x509.verification`` (a browser-grade path builder), with
  the end-entity extension policy relaxed so that EKU and names are judged by
  :mod:`scanner.cert_rules`, with our codes. Dates are judged there too: the path is built at
  a time inside the leaf's validity, so an expired leaf reads as ``expired``, not as untrusted.
* When the path builder refuses, we explain why with a plain walk over issuer names and
  signatures: a leaf served without its issuer is ``chain-incomplete``; a chain that ends in
  an unknown root, or in an intermediate whose issuer nobody has, is ``chain-untrusted``; a
  chain that does reach a trusted root and was refused only for its weak key or hash, or an
  out-of-date certificate, is already explained by ``weak-*`` / ``expired`` findings.
* Path building depends on the chain, not on the names it must cover, so its result is cached
  by fingerprints (a domain's SIP and XMPP endpoints serve one chain).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from scanner.certinfo import CertInfo, cert_info, name_text
from scanner.findings import Finding, finding

MAX_CHAIN_DEPTH = 8


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


def cached_trust(
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
        reason = short_error(exc)
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
            f"the issuer of {leaf.subject} ({leaf.issuer}) "
            f"{'was not served' if served else 'is not in the file'} and is not a trusted root",
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
            f"the chain ends at {top.subject}, whose issuer {top.issuer} is neither "
            f"{'served' if served else 'in the file'} nor a trusted root ({trust.label})"
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


def short_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
