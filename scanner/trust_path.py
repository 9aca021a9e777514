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
* Nothing here is cached: :class:`scanner.verify.Verifier` keeps the results of
  :func:`build_path` (one per chain, whatever names it must cover: a domain's SIP and XMPP
  endpoints serve one chain) and the trust anchors' facts, for one trust store and one time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from scanner.cert_rules import weak_hash, weak_key
from scanner.certinfo import SERVER_AUTH, CertInfo, cert_info, eku_name, name_text
from scanner.findings import Finding, finding

MAX_CHAIN_DEPTH = 8


@dataclass(frozen=True)
class TrustStore:
    """Trust anchors. ``public`` marks a public root program (Mozilla's), for which public-CA
    policy changes such as the clientAuth removal apply."""

    roots: tuple[x509.Certificate, ...]
    public: bool
    label: str
    # the DER each root was read from, in the same order (:func:`scanner.certload.load_pem_with_der`:
    # a root with fractional-second times is a whole-seconds copy; the original says the truth)
    originals: tuple[bytes, ...] = field(default=(), compare=False)

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

    @cached_property
    def _copied(self) -> dict[bytes, bytes]:
        """The roots loaded from a whole-seconds copy: the copy's DER to the original."""
        pairs = zip((r.public_bytes(Encoding.DER) for r in self.roots), self.originals, strict=False)
        return {copy: der for copy, der in pairs if copy != der}

    def der_of(self, root: x509.Certificate) -> bytes:
        """The DER ``root`` was read from."""
        der = root.public_bytes(Encoding.DER)
        return self._copied.get(der, der) if self.originals else der


def _build_time(leaf: CertInfo, now: dt.datetime) -> dt.datetime:
    """A time inside the leaf's validity, so that dates are judged by our own date rules."""
    return min(max(now, leaf.not_before), leaf.not_after)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate, signed_tbs: bytes | None = None) -> bool:
    """Did ``issuer`` sign ``cert``? ``signed_tbs``: the bytes really signed, for a certificate
    loaded from a whole-seconds copy (scanner.certload)."""
    if cert.issuer != issuer.subject:
        return False
    if signed_tbs is not None:
        return _legacy_signature_ok(cert, issuer, signed_tbs)
    try:
        cert.verify_directly_issued_by(issuer)
    except ValueError:
        # cryptography refuses SHA-1/MD5 here; the walk only asks "who signed this?", so
        # check the signature itself and let weak-signature judge the hash.
        return _legacy_signature_ok(cert, issuer)
    except Exception:  # bad signature, unsupported key type
        return False
    return True


def _legacy_signature_ok(cert: x509.Certificate, issuer: x509.Certificate, tbs: bytes | None = None) -> bool:
    tbs = cert.tbs_certificate_bytes if tbs is None else tbs
    try:
        key = issuer.public_key()  # a hostile issuer's key may not even decode
        digest = cert.signature_hash_algorithm
        if digest is None:
            return False
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, tbs, padding.PKCS1v15(), digest)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, tbs, ec.ECDSA(digest))
        else:
            return False
    except Exception:  # InvalidSignature, UnsupportedAlgorithm
        return False
    return True


AnchorInfo = Callable[[x509.Certificate], CertInfo]


def _walk(
    leaf: CertInfo, rest: Sequence[CertInfo], trust: TrustStore, anchor_info: AnchorInfo
) -> tuple[str, tuple[CertInfo, ...]]:
    """Follow issuer links by hand: "anchored", "untrusted-root", "missing-issuer" or
    "too-long", with the certificates walked, leaf first (and the anchor, when reached)."""
    walked = [leaf]
    pool = list(rest)
    for _ in range(MAX_CHAIN_DEPTH + 1):
        current, signed = walked[-1].cert, walked[-1].signed_tbs
        anchor = next((r for r in trust.issuers_of(current) if _issued_by(current, r, signed)), None)
        if anchor is not None:
            if anchor != current:
                walked.append(_info(anchor, rest, anchor_info))
            return "anchored", tuple(walked)
        if current.issuer == current.subject:
            return "untrusted-root", tuple(walked)
        nxt = next((c for c in pool if _issued_by(current, c.cert, signed)), None)
        if nxt is None:
            return "missing-issuer", tuple(walked)
        pool.remove(nxt)
        walked.append(nxt)
    return "too-long", tuple(walked)


def _info(cert: x509.Certificate, served: Sequence[CertInfo], anchor_info: AnchorInfo) -> CertInfo:
    """The served certificate's facts when it was served, else (a trust anchor) ``anchor_info``:
    the Verifier reads each anchor once, since the same few roots end every path of a scan."""
    return next((c for c in served if c.cert is cert or c.cert == cert), None) or anchor_info(cert)


@dataclass(frozen=True)
class PathResult:
    """What path building concluded.

    ``path``: the certificates that validate, leaf first and the trust anchor last; when no
    path validates, the ones a peer would try (issuer links followed from the leaf). Dates,
    strength and client-auth permission are judged on these, never on certificates that are
    served but not needed. ``trusted``: the path reaches a trust anchor (possibly refused by
    the builder only for what weak-* or date findings already say)."""

    findings: tuple[Finding, ...]
    trusted: bool
    path: tuple[CertInfo, ...]
    anchored: bool = False


# --------------------------------------------------------------------------- policies


def _ee_policy(*, strict: bool, name_checked: bool) -> ExtensionPolicy:
    """The end-entity policy: the web PKI defaults, relaxed only where fedscan judges the
    leaf itself with its own codes (one rule at a time, each saying why).

    ``strict`` False is the fully relaxed policy, used only to tell "the path is fine, the
    leaf breaks the web PKI profile" (``leaf-is-ca``, ``leaf-profile-violation``) from "no
    path"; ``name_checked`` False when the server verifier cannot be used (no DNS name)."""
    policy = ExtensionPolicy.webpki_defaults_ee() if strict else ExtensionPolicy.permit_all()
    # EKU: judged by cert_rules (eku-server-auth-missing, eku-client-auth-missing,
    # eku-absent); the default would call a clientAuth-only leaf "untrusted".
    policy = policy.may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    if not name_checked:
        # SAN: with no DNS name to verify for, its absence is san-extension-missing and its
        # names are judged by cert_rules; the server verifier (which needs one) is not used.
        policy = policy.may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    elif not strict:
        # the server verifier refuses a policy that does not require the SAN
        policy = policy.require_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    # Dates are not relaxed here: the path is built at a time inside the leaf's validity
    # (_build_time), and cert_rules judges every date on the path at the real time.
    return policy


def _ca_server_auth(
    _policy: object, cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None
) -> None:
    """A CA's EKU must permit serverAuth: the server verifier's own CA rule, for the client
    verifier we fall back to when the leaf has no DNS name to verify for."""
    if eku is not None and not {ExtendedKeyUsageOID.SERVER_AUTH, _ANY_EKU} & set(eku):
        raise ValueError(f"the EKU of {name_text(cert.subject)} excludes Server Authentication")


_ANY_EKU = x509.ObjectIdentifier("2.5.29.37.0")


def _probe_name(leaf: CertInfo) -> x509.DNSName | None:
    """A DNS name the leaf presents, for the server verifier (which always checks one).
    Names are judged by cert_rules against the deployment; this only asks "is this a valid
    TLS server chain for a name it claims?". A wildcard gets a concrete label."""
    for name in leaf.names.dns:
        candidate = "fedscan-probe" + name[1:] if name.startswith("*.") else name
        try:
            candidate.encode("ascii")
        except UnicodeEncodeError:
            continue
        return x509.DNSName(candidate)
    return None


def _build(
    leaf: CertInfo, intermediates: list[x509.Certificate], trust: TrustStore, at: dt.datetime, *, strict: bool
) -> tuple[list[x509.Certificate] | None, str]:
    """The validated path as a TLS *server* chain (CA EKUs must permit serverAuth), or None
    and why not."""
    builder = PolicyBuilder().store(trust.store).time(at).max_chain_depth(MAX_CHAIN_DEPTH)
    name = _probe_name(leaf)
    try:
        if name is not None:
            try:
                verifier = builder.extension_policies(
                    ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                    ee_policy=_ee_policy(strict=strict, name_checked=True),
                ).build_server_verifier(name)
            except ValueError:  # a SAN dNSName that is not a valid DNS name
                name = None
            else:
                return verifier.verify(leaf.cert, intermediates), ""
        ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
            x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _ca_server_auth
        )
        client = builder.extension_policies(
            ca_policy=ca_policy, ee_policy=_ee_policy(strict=strict, name_checked=False)
        ).build_client_verifier()
        return client.verify(leaf.cert, intermediates).chain, ""
    except VerificationError as exc:
        return None, str(exc)
    except Exception as exc:  # unsupported key types and the like
        return None, short_error(exc)


def _explained(path: Sequence[CertInfo], at: dt.datetime, now: dt.datetime) -> bool:
    """A path that reaches an anchor but was refused for what weak-* or date findings
    already say (the builder rejects weak algorithms and out-of-date CAs)."""
    anchored_self_signed = path[-1].self_issued
    signed = path[:-1] if anchored_self_signed else path
    if any(weak_key(c.key) for c in path) or any(weak_hash(c.signature) for c in signed):
        return True
    return any(not (c.not_before <= t <= c.not_after) for c in path for t in (at, now))


# --------------------------------------------------------------------------- trust


def build_path(
    leaf: CertInfo,
    rest: Sequence[CertInfo],
    trust: TrustStore,
    now: dt.datetime,
    served: bool,
    *,
    anchor_info: AnchorInfo = cert_info,
) -> PathResult:
    """The path from ``leaf`` (with the ``rest`` of the chain) to an anchor of ``trust``, and
    the findings that explain a refusal. ``served`` is False for files, whose order means
    nothing (no ``chain-order``). Depends on the chain, the store and the time only."""
    if trust.contains(leaf.cert):
        return PathResult((), True, (leaf,), True)
    if leaf.self_issued and _issued_by(leaf.cert, leaf.cert, leaf.signed_tbs):
        return PathResult(
            (finding("self-signed", "the certificate is self-signed", subject=leaf.subject),),
            False,
            (leaf,),
        )
    at = _build_time(leaf, now)
    intermediates = [c.cert for c in rest]
    # A certificate read from a whole-seconds copy (fractional-second times) carries a
    # signature over other bytes than the copy's: the path builder would call it forged, so
    # such a chain is judged by the walk alone, which checks the bytes really signed.
    copied = any(c.signed_tbs is not None for c in (leaf, *rest))
    built, reason = (None, "") if copied else _build(leaf, intermediates, trust, at, strict=True)
    profile: list[Finding] = []
    if built is None and not copied:
        relaxed, _ = _build(leaf, intermediates, trust, at, strict=False)
        if relaxed is not None:
            # The path is fine; the web PKI end-entity profile refuses the leaf itself.
            built = relaxed
            if not leaf.is_ca and not leaf.key_cert_sign:  # that one is leaf-is-ca's
                profile.append(
                    finding(
                        "leaf-profile-violation",
                        "strict verifiers (web PKI profile) refuse the certificate: "
                        f"{_why(reason)}",
                        reason=reason,
                    )
                )
    if built is not None:
        path = tuple(_info(c, (leaf, *rest), anchor_info) for c in built)
        return PathResult((*profile, *_order_findings(rest, built, served)), True, path, True)
    outcome, walked = _walk(leaf, rest, trust, anchor_info)
    if outcome == "anchored" and (copied or _explained(walked, at, now)):
        return PathResult((), True, walked, True)
    return _refused(outcome, walked, trust, served, reason)


def _refused(
    outcome: str, walked: tuple[CertInfo, ...], trust: TrustStore, served: bool, reason: str
) -> PathResult:
    """Why no path validates, from the walk's ``outcome`` (see :func:`_walk`) and the
    builder's ``reason``: ``chain-incomplete`` or ``chain-untrusted``, in a reader's words."""
    leaf = walked[0]
    if outcome == "missing-issuer" and len(walked) == 1:
        incomplete = finding(
            "chain-incomplete",
            f"the issuer of {leaf.subject} ({leaf.issuer}) "
            f"{'was not served' if served else 'is not in the file'} and is not a trusted root",
            missing_issuer=leaf.issuer,
        )
        return PathResult((incomplete,), False, walked)
    top = walked[-1]
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
    elif blocker := next((c for c in walked[1:] if not _permits_server_auth(c)), None):
        message = (
            f"the chain reaches a trusted root, but CA certificate {blocker.subject} restricts "
            f"its EKU to {', '.join(eku_name(o) for o in blocker.eku or ())}: peers refuse it as "
            "a TLS server chain"
        )
    else:
        message = f"path validation failed: {_why(reason)}"
    finding_ = finding("chain-untrusted", message, reason=reason, trust_store=trust.label)
    return PathResult((finding_,), False, walked, outcome == "anchored")


def _permits_server_auth(cert: CertInfo) -> bool:
    return cert.eku is None or bool({SERVER_AUTH, _ANY_EKU.dotted_string} & set(cert.eku))


def _why(reason: str) -> str:
    """cryptography's reason without its prefix and the certificate repr it appends."""
    text = reason.removeprefix("validation failed: ").split(" (encountered processing", 1)[0]
    return text.removeprefix("candidates exhausted: ")


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
