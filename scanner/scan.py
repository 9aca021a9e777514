"""Orchestration of a live scan: discover, handshake, verify, report — concurrently, on trio.

Theory of this module
---------------------
* One nursery for the whole scan. Every (domain, service) discovery and every endpoint
  handshake is a task that turns its own failures into results: one hostile peer must never
  cancel its siblings, so nothing here raises except cancellation.
* Handshakes are bounded by one ``CapacityLimiter`` (``--concurrency``); DNS by another.
* Results are handed to ``sink`` the moment they exist, so a ``jsonl`` writer streams and a
  Ctrl-C still leaves every finished endpoint in the report (which is filled in place).
* An endpoint's chain is verified, summarised and dropped. A chain served by many nodes (a
  pool, or one Edge answering for several domains) is verified once per identity set.
* Which names an endpoint must cover: a SIP endpoint its SRV target, an XMPP endpoint its
  XMPP domain (what peers check); with a declared deployment, also every namespace it serves.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dns.asyncresolver
import trio

from scanner.deployment import Deployment
from scanner.discovery import ServiceDiscovery, discover_service
from scanner.findings import Finding, finding
from scanner.handshake import ClientCredentials, HandshakeResult, Target, handshake
from scanner.names import Identity, IdentityKind
from scanner.results import DomainResult, EndpointResult, ScanReport, ServiceResult
from scanner.srv import SERVICES, Endpoint
from scanner.verify import Policy, TrustStore, Verdict, verify_chain


@dataclass(frozen=True)
class ScanOptions:
    services: tuple[str, ...]
    deployment: Deployment = field(default_factory=Deployment)
    policy: Policy = field(default_factory=Policy)
    timeout: float = 10.0
    concurrency: int = 64
    dns_concurrency: int = 32
    credentials: ClientCredentials | None = None
    from_domain: str | None = None


class Sink:
    """Receives results as they happen; the default ignores them."""

    def endpoints_planned(self, count: int) -> None:
        """``count`` more endpoints will be handshaken."""

    def endpoint_done(self, result: EndpointResult) -> None:
        """One endpoint finished (its result is final)."""

    def domain_done(self, result: DomainResult) -> None:
        """A domain finished, with its domain-wide findings (pool mismatch) added."""


def identities_for(endpoint: Endpoint, deployment: Deployment) -> tuple[Identity, ...]:
    spec = SERVICES[endpoint.service]
    if spec.xmpp:
        domain = endpoint.xmpp_domain or endpoint.domain
        own = Identity(domain, IdentityKind.XMPP_DOMAIN, "XMPP domain: XMPP peers check it")
    else:
        own = Identity(
            endpoint.target,
            IdentityKind.SRV_TARGET,
            f"SRV target of {spec.srv_prefix}.{endpoint.domain}: SIP peers check it",
        )
    rest = deployment.identities() if deployment.declared else []
    return (own, *(i for i in rest if i.name != own.name))


class Scan:
    """One scan run. ``report`` is filled in place as results arrive."""

    def __init__(
        self,
        domains: Sequence[str],
        options: ScanOptions,
        *,
        resolver: dns.asyncresolver.Resolver,
        trust: TrustStore,
        now: dt.datetime,
        sink: Sink | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.domains = list(dict.fromkeys(domains))
        self.options = options
        self.resolver = resolver
        self.trust = trust
        self.now = now
        self.sink = sink or Sink()
        self.rng = rng or random.Random()
        self.report = ScanReport(started=dt.datetime.now(dt.UTC), evaluated_at=now, domains=[])
        self._by_domain = {d: DomainResult(d) for d in self.domains}
        self.report.domains = list(self._by_domain.values())
        self._verdicts: dict[tuple[tuple[bytes, ...], tuple[Identity, ...]], Verdict] = {}
        self._pending: dict[str, int] = defaultdict(int)
        self._tls_limiter = trio.CapacityLimiter(options.concurrency)
        self._dns_limiter = trio.CapacityLimiter(options.dns_concurrency)

    async def run(self) -> ScanReport:
        try:
            async with trio.open_nursery() as nursery:
                for domain in self.domains:
                    self._pending[domain] = len(self.options.services)
                    for service in self.options.services:
                        nursery.start_soon(self._discover, nursery, domain, service)
        finally:
            self.report.finished = dt.datetime.now(dt.UTC)
        return self.report

    async def _discover(self, nursery: trio.Nursery, domain: str, service: str) -> None:
        found = await discover_service(
            domain, service, self.resolver, rng=self.rng, limiter=self._dns_limiter
        )
        self._by_domain[domain].services.append(_service_result(found))
        self._pending[domain] += len(found.endpoints) - 1
        self.sink.endpoints_planned(len(found.endpoints))
        for endpoint in found.endpoints:
            nursery.start_soon(self._endpoint, endpoint)
        self._maybe_domain_done(domain)

    async def _endpoint(self, endpoint: Endpoint) -> None:
        target = Target(
            endpoint.service, endpoint.target, endpoint.port, endpoint.address, endpoint.xmpp_domain
        )
        async with self._tls_limiter:
            shake = await handshake(
                target,
                timeout=self.options.timeout,
                from_domain=self.options.from_domain,
                credentials=self.options.credentials,
            )
        result = self._judge(endpoint, shake)
        self._by_domain[endpoint.domain].endpoints.append(result)
        self.sink.endpoint_done(result)
        self._pending[endpoint.domain] -= 1
        self._maybe_domain_done(endpoint.domain)

    def _judge(self, endpoint: Endpoint, shake: HandshakeResult) -> EndpointResult:
        findings: list[Finding] = [shake.failure] if shake.failure else []
        if not shake.chain:
            return EndpointResult(
                endpoint, tuple(findings), shake.tls, None, (), (), dict(shake.timings),
                shake.xmpp_features,
            )
        identities = identities_for(endpoint, self.options.deployment)
        key = (shake.chain, identities)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = verify_chain(shake.chain, identities, self.options.policy, self.trust, self.now)
            self._verdicts[key] = verdict
        leaf = verdict.leaf
        return EndpointResult(
            endpoint,
            (*findings, *verdict.findings),
            shake.tls,
            leaf.summary(self.now) if leaf else None,
            tuple(c.summary(self.now) for c in verdict.chain[1:]),
            verdict.coverage,
            dict(shake.timings),
            shake.xmpp_features,
        )

    def _maybe_domain_done(self, domain: str) -> None:
        if self._pending[domain] != 0:
            return
        result = self._by_domain[domain]
        result.findings += pool_findings(result.endpoints)
        result.services.sort(key=lambda s: self.options.services.index(s.service))
        result.endpoints.sort(key=_endpoint_order(self.options.services))
        self.sink.domain_done(result)


def _endpoint_order(services: Sequence[str]) -> Callable[[EndpointResult], tuple[int, int, str, str]]:
    def key(r: EndpointResult) -> tuple[int, int, str, str]:
        e = r.endpoint
        return (services.index(e.service), e.priority, e.target, e.address)

    return key


def _service_result(found: ServiceDiscovery) -> ServiceResult:
    return ServiceResult(found.service, found.srv_records, found.findings, found.hosted)


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
