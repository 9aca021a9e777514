"""Judging one endpoint: which names it must cover, what its handshake and chain say.

Theory of this module
---------------------
* Pure (Core): the orchestrator (:mod:`scanner.scan`) hands over what a handshake observed and
  gets back the endpoint's result; nothing here waits, connects or reads the clock (``now`` is
  given), so every rule is tested without sockets.
* Which names an endpoint must cover: a SIP endpoint its SRV target, an XMPP endpoint its XMPP
  domain (what peers check); with a declared deployment, also every namespace it serves.
* A chain served by many nodes (a pool, or one Edge answering for several domains) is verified
  once per identity set: the scan's :class:`scanner.verify.Verifier` (handed in, never made
  here) keeps the judgement (findings, summaries, coverage), never the chain itself, so memory
  stays flat over a census.
* Domain-wide rules (every node of a pool presents the same certificate) live here too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Protocol

from scanner.dane import assess
from scanner.deployment import Deployment
from scanner.findings import Finding, finding, status_of
from scanner.names import Identity, IdentityKind
from scanner.results import DomainResult, EndpointResult, TlsInfo
from scanner.srv import SERVICES, Endpoint
from scanner.tlsa import TlsaAnswer
from scanner.verify import Judgement, Verifier


class Observed(Protocol):
    """What a handshake observed (:class:`scanner.handshake.HandshakeResult` is one)."""

    @property
    def chain(self) -> tuple[bytes, ...]: ...
    @property
    def tls(self) -> TlsInfo | None: ...
    @property
    def failure(self) -> Finding | None: ...
    @property
    def timings(self) -> Mapping[str, float]: ...
    @property
    def xmpp_features(self) -> tuple[str, ...]: ...
    @property
    def starttls_required(self) -> bool | None: ...


def identities_for(endpoint: Endpoint, deployment: Deployment) -> tuple[Identity, ...]:
    spec = SERVICES[endpoint.service]
    if spec.xmpp:
        domain = endpoint.xmpp_domain or endpoint.domain
        own = Identity(domain, IdentityKind.XMPP_DOMAIN, "the XMPP domain, which XMPP peers check")
    else:
        own = Identity(
            endpoint.target,
            IdentityKind.SRV_TARGET,
            f"the SRV target of {spec.srv_prefix}.{endpoint.domain}, which SIP peers check",
        )
    rest = deployment.identities() if deployment.declared else []
    return (own, *(i for i in rest if i.name != own.name))


def connection_findings(endpoint: Endpoint, shake: Observed) -> list[Finding]:
    """What the connection itself says, before any certificate is looked at."""
    findings: list[Finding] = [shake.failure] if shake.failure else []
    if shake.starttls_required is False and shake.tls is not None:
        domain = endpoint.xmpp_domain or endpoint.domain
        findings.append(finding("starttls-optional",
                                f"{domain}: STARTTLS is offered but not required",
                                features=list(shake.xmpp_features)))
    return findings


class Judge:
    """Turns observations into endpoint results for one scan, with the scan's Verifier."""

    def __init__(self, *, deployment: Deployment, verifier: Verifier) -> None:
        self.deployment = deployment
        self.verifier = verifier

    def endpoint(
        self, endpoint: Endpoint, shake: Observed, answer: TlsaAnswer | None = None
    ) -> EndpointResult:
        """``answer``: the TLSA answer of a validating resolver, None when DANE is not checked."""
        findings = connection_findings(endpoint, shake)
        where = f"{endpoint.target}:{endpoint.port}"
        if not shake.chain:
            dane = assess(answer, (), pkix_valid=False, where=where)
            return EndpointResult(
                endpoint, (*findings, *dane.findings), shake.tls, None, (), (),
                dict(shake.timings), shake.xmpp_features, dane,
            )
        judged = self._judgement(shake.chain, identities_for(endpoint, self.deployment))
        dane = assess(answer, shake.chain, pkix_valid=judged.trusted, path=judged.path, where=where)
        return EndpointResult(
            endpoint,
            (*findings, *judged.findings, *dane.findings),
            shake.tls,
            judged.leaf,
            judged.chain,
            judged.coverage,
            dict(shake.timings),
            shake.xmpp_features,
            dane,
        )

    def _judgement(self, chain: tuple[bytes, ...], identities: tuple[Identity, ...]) -> Judgement:
        try:
            return self.verifier.judged(chain, identities)
        except Exception as exc:  # a verifier bug costs this endpoint, never the whole scan
            error = finding(
                "scan-error", f"internal error verifying the chain: {exc!r}", error=repr(exc)
            )
            return Judgement((error,), None, (), ())


def empty_domain_findings(result: DomainResult, services: Sequence[str]) -> list[Finding]:
    """Say "no such domain" once, in place of the notes that would describe a domain that
    does not exist; and "nothing to scan" when no endpoint was found and nothing else is wrong,
    so that an empty result is UNKNOWN, never "OK, 0 endpoints"."""
    if any(f.code == "domain-not-found" for s in result.services for f in s.findings):
        said = False  # once per domain, whichever service's question found it out
        for s in result.services:  # the srv-fallback / srv-missing notes of a name that is not
            kept = []
            for f in s.findings:
                if f.code in ("srv-fallback", "srv-missing") or (f.code == "domain-not-found" and said):
                    continue
                said = said or f.code == "domain-not-found"
                kept.append(f)
            s.findings = tuple(kept)
        return []
    if result.endpoints or any(s.hosted for s in result.services):
        return []
    if status_of(result.all_findings).rank > 0:
        return []  # already says what is wrong (srv-missing for SIP, dns-error, ...)
    return [finding("nothing-to-scan",
                    f"nothing to scan: {result.domain} publishes none of {', '.join(services)}",
                    services=list(services))]


def pool_findings(endpoints: Sequence[EndpointResult]) -> list[Finding]:
    """Nodes behind one SRV target that present different leaf certificates."""
    groups: dict[tuple[str, str, int], dict[str, str]] = defaultdict(dict)
    for r in endpoints:
        if r.leaf_sha256:
            e = r.endpoint
            groups[(e.service, e.target, e.port)][e.address] = r.leaf_sha256
    out = []
    for (service, target, port), by_address in sorted(groups.items()):
        if len(set(by_address.values())) > 1:
            out.append(
                finding(
                    "pool-certificate-mismatch",
                    f"{service} {target}:{port}: {len(by_address)} nodes present "
                    f"{len(set(by_address.values()))} different certificates",
                    service=service,
                    target=target,
                    port=port,
                    certificates=dict(sorted(by_address.items())),
                )
            )
    return out
