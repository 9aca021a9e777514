"""Orchestration of a live scan: discover, handshake, verify, report — concurrently, on trio.

Theory of this module
---------------------
* One nursery for the whole scan. Every (domain, service) discovery and every endpoint
  handshake is a task that turns its own failures into results: one hostile peer must never
  cancel its siblings, so nothing here raises except cancellation.
* Handshakes are bounded by one ``CapacityLimiter`` (``--concurrency``); DNS by another.
  Domains enter the scan through a window (``DOMAIN_WINDOW_PER_SLOT`` x concurrency domains
  in progress at once): discovery is faster than handshakes, and without the window every
  endpoint of a 10,000-endpoint census would be discovered up front and wait, in memory.
* Results are handed to ``sink`` the moment they exist, so a ``jsonl`` writer streams and a
  Ctrl-C still leaves every finished endpoint in the report (which is filled in place).
* An endpoint's chain is verified, summarised and dropped. A chain served by many nodes (a
  pool, or one Edge answering for several domains) is verified once per identity set: the
  judgement (findings, summaries, coverage) is kept in a bounded LRU, never the chain itself.
* A streaming scan (``retain_endpoints=False``, the ``jsonl`` format) forgets a domain's
  endpoint results once the sink has them, keeping only status counts: memory stays flat
  however many domains are scanned.
* Which names an endpoint must cover: a SIP endpoint its SRV target, an XMPP endpoint its
  XMPP domain (what peers check); with a declared deployment, also every namespace it serves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.asyncresolver
import trio

from scanner.acceptance import Presenting
from scanner.acceptance_model import not_reached
from scanner.deployment import Deployment
from scanner.direct import DirectEndpoint
from scanner.discovery import AddressCache, ServiceDiscovery, discover_service, resolve_hosts
from scanner.findings import Finding, finding
from scanner.handshake import AfterTls, ClientCredentials, HandshakeResult, Target, handshake
from scanner.names import Identity, IdentityKind
from scanner.results import DomainResult, EndpointResult, ScanReport, ServiceResult
from scanner.srv import SERVICES, Endpoint
from scanner.verify import Coverage, Policy, TrustStore, verify_chain

VERDICT_CACHE_SIZE = 1024
DOMAIN_WINDOW_PER_SLOT = 2  # domains in progress per handshake slot (a domain is ~4 endpoints)


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
    # with credentials: who we are, and the probe of each partner's verdict on our certificate
    presenting: Presenting | None = None
    endpoints: tuple[DirectEndpoint, ...] = ()  # --endpoint: scan these, without SRV lookups


@dataclass(frozen=True)
class _Judgement:
    """What an endpoint result takes from a verified chain (all of it JSON-ready, no certs)."""

    findings: tuple[Finding, ...]
    leaf: dict[str, Any] | None
    chain: tuple[dict[str, Any], ...]
    coverage: tuple[Coverage, ...]


@dataclass(frozen=True)
class Shared:
    """What the scans of one run share (``fedscan monitor`` runs one scan per view), so that
    ``--concurrency`` bounds the run, not each scan, and a host is resolved once."""

    tls: trio.CapacityLimiter
    dns: trio.CapacityLimiter
    addresses: AddressCache

    @classmethod
    def for_options(cls, options: ScanOptions) -> Shared:
        return cls(
            trio.CapacityLimiter(options.concurrency),
            trio.CapacityLimiter(options.dns_concurrency),
            AddressCache(),
        )


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
        own = Identity(domain, IdentityKind.XMPP_DOMAIN, "the XMPP domain, which XMPP peers check")
    else:
        own = Identity(
            endpoint.target,
            IdentityKind.SRV_TARGET,
            f"the SRV target of {spec.srv_prefix}.{endpoint.domain}, which SIP peers check",
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
        retain_endpoints: bool = True,
        shared: Shared | None = None,
    ) -> None:
        self.domains = list(dict.fromkeys(domains))
        self.options = options
        self.resolver = resolver
        self.trust = trust
        self.now = now
        self.sink = sink or Sink()
        self.rng = rng or random.Random()
        self.report = ScanReport(started=dt.datetime.now(dt.UTC), evaluated_at=now, domains=[])
        names = [*self.domains, *(e.name for e in options.endpoints if e.name not in self.domains)]
        self._by_domain = {d: DomainResult(d) for d in dict.fromkeys(names)}
        self.report.domains = list(self._by_domain.values())
        self.retain_endpoints = retain_endpoints
        self._verdicts: OrderedDict[tuple[tuple[bytes, ...], tuple[Identity, ...]], _Judgement] = (
            OrderedDict()
        )
        self._pending: dict[str, int] = defaultdict(int)
        shared = shared or Shared.for_options(options)
        self._tls_limiter = shared.tls
        self._dns_limiter = shared.dns
        self._addresses = shared.addresses
        window = max(options.concurrency, options.dns_concurrency) * DOMAIN_WINDOW_PER_SLOT
        self._window = trio.Semaphore(window)

    async def run(self) -> ScanReport:
        try:
            async with trio.open_nursery() as nursery:
                per_name = Counter(direct.name for direct in self.options.endpoints)
                for name, count in per_name.items():
                    await self._window.acquire()  # released when the name is done
                    self._pending[name] = count
                for direct in self.options.endpoints:
                    nursery.start_soon(self._direct, nursery, direct)
                for domain in self.domains:
                    await self._window.acquire()  # released when the domain is done
                    self._pending[domain] = len(self.options.services)
                    for service in self.options.services:
                        nursery.start_soon(self._discover, nursery, domain, service)
        finally:
            self.report.finished = dt.datetime.now(dt.UTC)
        return self.report

    async def _discover(self, nursery: trio.Nursery, domain: str, service: str) -> None:
        found = await discover_service(
            domain, service, self.resolver, rng=self.rng, limiter=self._dns_limiter,
            cache=self._addresses,
        )
        self._by_domain[domain].services.append(_service_result(found))
        self._pending[domain] += len(found.endpoints) - 1
        self.sink.endpoints_planned(len(found.endpoints))
        for endpoint in found.endpoints:
            nursery.start_soon(self._endpoint, endpoint)
        self._maybe_domain_done(domain)

    async def _direct(self, nursery: trio.Nursery, direct: DirectEndpoint) -> None:
        """An endpoint named by the user: its addresses (HOST itself, or its A/AAAA records)."""
        name = direct.name
        if direct.is_address:
            addresses = [direct.host]
        else:
            found = await resolve_hosts(self.resolver, [direct.host], self._dns_limiter,
                                        self._addresses)
            addresses = [a for lookup in found[direct.host] for a in lookup.values]
            if not addresses:
                reasons = "; ".join(f"{lookup.rdtype}: {lookup.reason or lookup.outcome.value}"
                                    for lookup in found[direct.host])
                self._by_domain[name].findings.append(finding(
                    "target-unresolvable", f"{direct.host} has no address ({reasons})",
                    target=direct.host))
        xmpp = name if direct.service.startswith("xmpp") else None
        self._pending[name] += len(addresses) - 1
        self.sink.endpoints_planned(len(addresses))
        for address in addresses:
            endpoint = Endpoint(name, direct.service, name, direct.port, address, 0, 0, xmpp)
            nursery.start_soon(self._endpoint, endpoint)
        self._maybe_domain_done(name)

    async def _endpoint(self, endpoint: Endpoint) -> None:
        target = Target(
            endpoint.service, endpoint.target, endpoint.port, endpoint.address, endpoint.xmpp_domain
        )
        async with self._tls_limiter:
            shake = await handshake(
                target,
                timeout=self.options.timeout,
                from_domain=self._from_domain(endpoint),
                credentials=self.options.credentials,
                after_tls=self._after_tls(),
            )
        result = self._judge(endpoint, shake)
        self._by_domain[endpoint.domain].endpoints.append(result)
        self.sink.endpoint_done(result)
        self._pending[endpoint.domain] -= 1
        self._maybe_domain_done(endpoint.domain)

    def _from_domain(self, endpoint: Endpoint) -> str | None:
        """The stream ``from`` before TLS: ours, when we present our certificate."""
        presenting = self.options.presenting
        if self.options.from_domain is None and presenting is not None and endpoint.xmpp_domain:
            return presenting.xmpp_from
        return self.options.from_domain

    def _after_tls(self) -> AfterTls | None:
        presenting = self.options.presenting
        if presenting is None or self.options.credentials is None:
            return None
        return presenting.probe()

    def _judge(self, endpoint: Endpoint, shake: HandshakeResult) -> EndpointResult:
        result = self._judge_chain(endpoint, shake)
        presenting = self.options.presenting
        if presenting is None or self.options.credentials is None:
            return result
        acceptance = shake.acceptance or not_reached(presenting.certificate_sha256)
        return dataclasses.replace(result, findings=(*result.findings, *acceptance.findings),
                                   acceptance=acceptance)

    def _judge_chain(self, endpoint: Endpoint, shake: HandshakeResult) -> EndpointResult:
        findings: list[Finding] = [shake.failure] if shake.failure else []
        if shake.starttls_required is False and shake.tls is not None:
            domain = endpoint.xmpp_domain or endpoint.domain
            findings.append(finding("starttls-optional",
                                    f"{domain}: STARTTLS is offered but not required",
                                    features=list(shake.xmpp_features)))
        if not shake.chain:
            return EndpointResult(
                endpoint, tuple(findings), shake.tls, None, (), (), dict(shake.timings),
                shake.xmpp_features,
            )
        judged = self._judgement(shake.chain, identities_for(endpoint, self.options.deployment))
        return EndpointResult(
            endpoint,
            (*findings, *judged.findings),
            shake.tls,
            judged.leaf,
            judged.chain,
            judged.coverage,
            dict(shake.timings),
            shake.xmpp_features,
        )

    def _judgement(self, chain: tuple[bytes, ...], identities: tuple[Identity, ...]) -> _Judgement:
        key = (chain, identities)
        judged = self._verdicts.get(key)
        if judged is not None:
            self._verdicts.move_to_end(key)
            return judged
        try:
            verdict = verify_chain(chain, identities, self.options.policy, self.trust, self.now)
        except Exception as exc:  # a verifier bug costs this endpoint, never the whole scan
            error = finding(
                "scan-error", f"internal error verifying the chain: {exc!r}", error=repr(exc)
            )
            return _Judgement((error,), None, (), ())
        leaf = verdict.leaf
        judged = _Judgement(
            verdict.findings,
            leaf.summary(self.now) if leaf else None,
            tuple(c.summary(self.now) for c in verdict.chain[1:]),
            verdict.coverage,
        )
        self._verdicts[key] = judged
        if len(self._verdicts) > VERDICT_CACHE_SIZE:
            self._verdicts.popitem(last=False)
        return judged

    def _maybe_domain_done(self, domain: str) -> None:
        if self._pending[domain] != 0:
            return
        del self._pending[domain]
        self._window.release()
        result = self._by_domain[domain]
        result.finished = True
        result.findings += pool_findings(result.endpoints)
        presenting = self.options.presenting
        if presenting is not None and not presenting.client_auth and self.options.credentials:
            result.findings.append(finding(
                "client-certificate-no-client-auth",
                "the certificate we present has no Client Authentication EKU: partners that "
                "check it will refuse it", certificate_sha256=presenting.certificate_sha256))
        result.services.sort(key=lambda s: self.options.services.index(s.service))
        result.endpoints.sort(key=_endpoint_order(self.options.services))
        self.sink.domain_done(result)
        if not self.retain_endpoints:
            result.release_endpoints()


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
