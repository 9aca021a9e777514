"""Orchestration of a live scan: discover, handshake, verify, report — concurrently, on trio.

Theory of this module
---------------------
* One nursery for the whole scan. Every (domain, service) discovery and every endpoint
  handshake is a task that turns its own failures into results: one hostile peer must never
  cancel its siblings, so nothing here raises except cancellation.
* Handshakes are bounded by :mod:`scanner.limits`: open connections (``--connections``,
  within the file-descriptor limit), endpoints at work between waits (``--concurrency``) and
  connections per address (``--per-address``); DNS by its own limiter. A silent peer holds a
  connection, never a work token, so dead peers cost about one timeout in all.
  Domains enter the scan through a window (about one domain per three connection slots in
  progress at once): discovery is faster than handshakes, and without the window every
  endpoint of a 100,000-domain census would be discovered up front and wait, in memory.
* Results are handed to ``sink`` the moment they exist, so a ``jsonl`` writer streams and a
  Ctrl-C still leaves every finished endpoint in the report (which is filled in place).
* An endpoint's chain is judged (:class:`scanner.judge.Judge`: names, chain, with the
  :class:`scanner.verify.Verifier` the caller built for the run) and dropped; this module only
  schedules and collects.
* A streaming scan (``retain_endpoints=False``, the ``jsonl`` format) forgets a domain's
  endpoint results once the sink has them, keeping only status counts: memory stays flat
  however many domains are scanned.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.asyncresolver
import trio

from scanner.acceptance import Presenting
from scanner.acceptance_model import not_reached
from scanner.dane_dns import DaneResolver
from scanner.deployment import Deployment
from scanner.direct import DirectEndpoint
from scanner.discovery import AddressCache, ServiceDiscovery, discover_service, resolve_hosts
from scanner.findings import finding
from scanner.handshake import AfterTls, HandshakeResult, Target, handshake
from scanner.judge import Judge, empty_domain_findings, pool_findings
from scanner.limits import DEFAULT_CONNECTIONS, DEFAULT_DNS, DEFAULT_PER_ADDRESS, Limits
from scanner.results import DomainResult, EndpointResult, ScanReport, ServiceResult
from scanner.srv import Endpoint
from scanner.tls_client import ClientCredentials
from scanner.verify import Policy, Verifier

DOMAIN_WINDOW_PER_SLOT = 2  # domains in progress per work token (a domain is ~4 endpoints)
CONNECTIONS_PER_DOMAIN = 3  # ... and at least one domain per this many connection slots


@dataclass(frozen=True)
class ScanOptions:
    services: tuple[str, ...]
    deployment: Deployment = field(default_factory=Deployment)
    policy: Policy = field(default_factory=Policy)
    timeout: float = 10.0
    concurrency: int = 64  # endpoints at work (between waits on the peer) at once
    dns_concurrency: int = DEFAULT_DNS
    connections: int = DEFAULT_CONNECTIONS  # open connections at once (file descriptors)
    per_address: int = DEFAULT_PER_ADDRESS  # open connections to one IP address (0: no cap)
    credentials: ClientCredentials | None = None
    from_domain: str | None = None
    dnssec_resolver: tuple[str, int] | None = None  # validating resolver for DANE (TLSA)
    # with credentials: who we are, and the probe of each partner's verdict on our certificate
    presenting: Presenting | None = None
    endpoints: tuple[DirectEndpoint, ...] = ()  # --endpoint: scan these, without SRV lookups

    def to_json(self) -> dict[str, Any]:
        """What a report records of how it was made (the JSON ``options``; no secrets)."""
        return {
            "services": list(self.services),
            "timeout": self.timeout,
            "concurrency": self.concurrency,
            "warn_days": self.policy.warn_days,
            "crit_days": self.policy.crit_days,
            "client_auth": "required" if self.policy.client_auth_required else "optional",
            "client_certificate": self.credentials is not None,
            "from_domain": self.from_domain,
            "dnssec_resolver": _address(self.dnssec_resolver) if self.dnssec_resolver else None,
            "our_certificate_sha256": self.presenting.certificate_sha256 if self.presenting else None,
            "endpoints": [f"{e.service}={e.host}:{e.port}" for e in self.endpoints],
        }


def _address(server: tuple[str, int]) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Shared:
    """What the scans of one run share (``fedscan monitor`` runs one scan per view), so that
    the limits bound the run, not each scan, and a host is resolved once."""

    limits: Limits
    dns: trio.CapacityLimiter
    addresses: AddressCache
    dane: DaneResolver | None = None  # None: DANE not checked (no validating resolver)

    @classmethod
    def for_options(cls, options: ScanOptions, *, nofile: int | None = None,
                    notify: Callable[[str], None] | None = None) -> Shared:
        """``nofile``: plan with this descriptor limit (default: the process's soft limit);
        ``notify``: told once if that limit is what bounds the run."""
        limits = Limits.create(connections=options.connections, work=options.concurrency,
                               per_address=options.per_address, dns=options.dns_concurrency,
                               timeout=options.timeout, nofile=nofile, notify=notify)
        resolver = options.dnssec_resolver
        dane = DaneResolver(resolver, timeout=min(options.timeout, 5.0)) if resolver else None
        return cls(limits, trio.CapacityLimiter(limits.budget.dns), AddressCache(), dane)


class Sink:
    """Receives results as they happen; the default ignores them."""

    def endpoints_planned(self, count: int) -> None:
        """``count`` more endpoints will be handshaken."""

    def endpoint_done(self, result: EndpointResult) -> None:
        """One endpoint finished (its result is final)."""

    def domain_done(self, result: DomainResult) -> None:
        """A domain finished, with its domain-wide findings (pool mismatch) added."""


class Scan:
    """One scan run. ``report`` is filled in place as results arrive."""

    def __init__(
        self,
        domains: Sequence[str],
        options: ScanOptions,
        *,
        resolver: dns.asyncresolver.Resolver,
        verifier: Verifier,
        sink: Sink | None = None,
        rng: random.Random | None = None,
        retain_endpoints: bool = True,
        shared: Shared | None = None,
    ) -> None:
        self.domains = list(dict.fromkeys(domains))
        self.options = options
        self.resolver = resolver
        if verifier.policy != options.policy:  # the report's options must say what was judged
            raise ValueError("the Verifier's policy is not the scan's")
        self.now = verifier.now
        self.sink = sink or Sink()
        self.rng = rng or random.Random()
        self.report = ScanReport(started=dt.datetime.now(dt.UTC), evaluated_at=self.now, domains=[],
                                 options=options.to_json())
        names = [*self.domains, *(e.name for e in options.endpoints if e.name not in self.domains)]
        self._by_domain = {d: DomainResult(d) for d in dict.fromkeys(names)}
        self.report.domains = list(self._by_domain.values())
        self.retain_endpoints = retain_endpoints
        self._judge = Judge(deployment=options.deployment, verifier=verifier)
        self._pending: dict[str, int] = defaultdict(int)
        shared = shared or Shared.for_options(options)
        self._limits = shared.limits
        self._dns_limiter = shared.dns
        self._addresses = shared.addresses
        self._dane = shared.dane
        window = max(options.concurrency * DOMAIN_WINDOW_PER_SLOT,
                     options.dns_concurrency * DOMAIN_WINDOW_PER_SLOT,
                     shared.limits.budget.connections // CONNECTIONS_PER_DOMAIN)
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
        limits = self._limits
        pace = await limits.open(endpoint.address)
        try:
            shake = await handshake(
                target,
                timeout=self.options.timeout,
                from_domain=self._from_domain(endpoint),
                credentials=self.options.credentials,
                pace=pace,
                after_tls=self._after_tls(),
            )
        finally:
            limits.close(pace)
        answer = None
        if self._dane is not None:
            async with self._dns_limiter:
                answer = await self._dane.answer_for(endpoint)
        result = self._with_acceptance(self._judge.endpoint(endpoint, shake, answer), shake)
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

    def _with_acceptance(self, result: EndpointResult, shake: HandshakeResult) -> EndpointResult:
        """The partner's verdict on our certificate, when we presented it (issue 12)."""
        presenting = self.options.presenting
        if presenting is None or self.options.credentials is None:
            return result
        acceptance = shake.acceptance or not_reached(presenting.certificate_sha256)
        return dataclasses.replace(result, findings=(*result.findings, *acceptance.findings),
                                   acceptance=acceptance)

    def _maybe_domain_done(self, domain: str) -> None:
        if self._pending[domain] != 0:
            return
        del self._pending[domain]
        self._window.release()
        result = self._by_domain[domain]
        result.finished = True
        result.findings += pool_findings(result.endpoints)
        result.findings += empty_domain_findings(result, self.options.services)
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
