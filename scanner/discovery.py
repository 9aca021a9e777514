"""Discovery: ask DNS (dnspython on trio) and let :mod:`scanner.srv` judge the answers.

Theory of this module
---------------------
This is the thin I/O layer of the DNS stage. It knows how to ask, never what an answer means:

* Every lookup returns a :class:`~scanner.srv.Lookup`, never raises. NXDOMAIN and NoAnswer are
  "absent"; every other ``DNSException`` (SERVFAIL everywhere, lifetime timeout, a CNAME chain
  that is too long or loops, a malformed answer) is an ERROR carrying dnspython's reason text.
  A scan of a hundred domains must not lose ninety-nine to one broken name server.
* Names are queried absolute (trailing dot), so a system resolver's search list can never turn
  ``contoso.com`` into ``contoso.com.corp.example``.
* Truncated UDP answers are retried over TCP by dnspython itself (``Truncated`` sets
  ``retry_with_tcp`` in its resolution loop); nothing is needed here beyond not disabling it.
* A and AAAA of every target are asked concurrently, and services and domains concurrently,
  in trio nurseries; each task stores its result, so no failure cancels a sibling.
* User input is normalised once, at the edge (:func:`normalize_domain`,
  :func:`parse_nameserver`), with one-line ``ValueError`` messages fit for a CLI.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import trio

from scanner.findings import Finding

# parsing user input is pure (scanner.names); re-exported for callers that already resolve
from scanner.names import normalize_domain as normalize_domain
from scanner.names import parse_nameserver as parse_nameserver
from scanner.srv import (
    DEFAULT_SRV_CAP,
    SERVICES,
    Endpoint,
    Lookup,
    Outcome,
    SrvPlan,
    SrvRecord,
    existence_findings,
    needs_existence_check,
    normalize_target,
    plan_endpoints,
    plan_srv,
    srv_name,
)

K = TypeVar("K")
V = TypeVar("V")
DEFAULT_TIMEOUT = 5.0
DEFAULT_CONCURRENCY = 32
ADDRESS_TYPES = ("A", "AAAA")


@dataclass(frozen=True)
class ServiceDiscovery:
    """Everything discovery learnt about one service of one domain."""

    domain: str
    service: str
    findings: tuple[Finding, ...]
    endpoints: tuple[Endpoint, ...]
    srv_records: tuple[SrvRecord, ...]
    hosted: bool


def make_resolver(
    nameservers: Sequence[tuple[str, int]] | None, *, timeout: float = DEFAULT_TIMEOUT
) -> dns.asyncresolver.Resolver:
    """A resolver whose ``timeout`` bounds a whole lookup (dnspython's ``lifetime``).

    Each attempt gets half of it, so one lost UDP datagram is retried instead of spending the
    whole budget on it. Explicit name servers mean ``configure=False``: tests and
    ``--nameserver`` runs must not depend on the host's resolv.conf.
    """
    if nameservers is None:
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(a, p) for a, p in nameservers]
    resolver.lifetime = timeout
    resolver.timeout = timeout / 2
    resolver.cache = None
    return resolver


async def lookup_srv(resolver: dns.asyncresolver.Resolver, name: str) -> Lookup[SrvRecord]:
    outcome, rrset, reason = await _query(resolver, name, "SRV")
    records = tuple(
        SrvRecord(rd.priority, rd.weight, rd.port, normalize_target(rd.target.to_text()))
        for rd in rrset
    )
    return Lookup(name, "SRV", outcome, records, reason)


async def lookup_address(
    resolver: dns.asyncresolver.Resolver, name: str, rdtype: str
) -> Lookup[str]:
    outcome, rrset, reason = await _query(resolver, name, rdtype)
    return Lookup(name, rdtype, outcome, tuple(rd.to_text() for rd in rrset), reason)


async def _query(
    resolver: dns.asyncresolver.Resolver, name: str, rdtype: str
) -> tuple[Outcome, Sequence[Any], str]:
    """One question; dnspython's exceptions become an outcome and a reason."""
    try:
        answer = await resolver.resolve(
            dns.name.from_text(name), dns.rdatatype.from_text(rdtype), search=False
        )
    except dns.resolver.NXDOMAIN:
        return Outcome.NXDOMAIN, (), ""
    except dns.resolver.NoAnswer:
        return Outcome.NODATA, (), ""
    except dns.exception.DNSException as exc:
        return Outcome.ERROR, (), f"{type(exc).__name__}: {exc}"
    rrset = answer.rrset
    return (Outcome.ANSWER, list(rrset), "") if rrset is not None else (Outcome.NODATA, (), "")


class SingleFlight(Generic[K, V]):
    """Each key's answer is computed once per scan; concurrent askers of the same key wait for
    the first one's answer instead of asking again."""

    def __init__(self) -> None:
        self._done: dict[K, V] = {}
        self._pending: dict[K, trio.Event] = {}

    async def get(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        while key not in self._done:
            pending = self._pending.get(key)
            if pending is not None:
                await pending.wait()
                continue
            event = self._pending[key] = trio.Event()
            try:
                self._done[key] = await compute()
            finally:
                del self._pending[key]
                event.set()
        return self._done[key]


class AddressCache:
    """One A/AAAA question per host per scan: SIP and XMPP SRV records of a domain usually
    point at the same Edge, and a pool's nodes answer for several domains."""

    def __init__(self) -> None:
        self._flights: SingleFlight[tuple[str, str], Lookup[str]] = SingleFlight()

    async def lookup(
        self, resolver: dns.asyncresolver.Resolver, host: str, rdtype: str,
        limiter: trio.CapacityLimiter,
    ) -> Lookup[str]:
        async def ask() -> Lookup[str]:
            async with limiter:
                return await lookup_address(resolver, host, rdtype)

        return await self._flights.get((host, rdtype), ask)


async def resolve_hosts(
    resolver: dns.asyncresolver.Resolver,
    hosts: Sequence[str],
    limiter: trio.CapacityLimiter,
    cache: AddressCache | None = None,
) -> dict[str, tuple[Lookup[str], ...]]:
    """A and AAAA of every host, all concurrently (bounded by ``limiter``)."""
    cache = cache or AddressCache()
    results: dict[tuple[str, str], Lookup[str]] = {}

    async def one(host: str, rdtype: str) -> None:
        results[(host, rdtype)] = await cache.lookup(resolver, host, rdtype, limiter)

    async with trio.open_nursery() as nursery:
        for host in hosts:
            for rdtype in ADDRESS_TYPES:
                nursery.start_soon(one, host, rdtype)
    return {h: tuple(results[(h, t)] for t in ADDRESS_TYPES) for h in hosts}


async def discover_service(
    domain: str,
    service: str,
    resolver: dns.asyncresolver.Resolver,
    *,
    rng: random.Random | None = None,
    cap: int = DEFAULT_SRV_CAP,
    limiter: trio.CapacityLimiter | None = None,
    cache: AddressCache | None = None,
) -> ServiceDiscovery:
    """SRV, then addresses, judged by :mod:`scanner.srv`. DNS failures become findings.

    Raises only for caller mistakes: ``ValueError`` for a name :func:`normalize_domain`
    rejects, ``KeyError`` for an unknown service.
    """
    domain = normalize_domain(domain)
    spec = SERVICES[service]
    limiter = limiter or trio.CapacityLimiter(DEFAULT_CONCURRENCY)
    async with limiter:
        answer = await lookup_srv(resolver, srv_name(domain, spec))
    plan = plan_srv(domain, spec, answer, rng or random.Random(), cap=cap)
    addresses = await resolve_hosts(resolver, plan.hosts, limiter, cache)
    address_findings, endpoints = plan_endpoints(plan, addresses)
    if needs_existence_check(plan, answer):
        # the domain's A/AAAA, through the shared cache: free when the XMPP fallback asks too
        own = await resolve_hosts(resolver, [domain], limiter, cache)
        address_findings += existence_findings(plan, own.get(domain, ()))
    return _result(plan, address_findings, endpoints)


def _result(
    plan: SrvPlan, findings: tuple[Finding, ...], endpoints: tuple[Endpoint, ...]
) -> ServiceDiscovery:
    return ServiceDiscovery(
        plan.domain, plan.spec.name, plan.findings + findings, endpoints,
        plan.srv_records, plan.hosted,
    )


async def discover(
    domains: Sequence[str],
    services: Sequence[str],
    resolver: dns.asyncresolver.Resolver,
    *,
    rng: random.Random | None = None,
    cap: int = DEFAULT_SRV_CAP,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[ServiceDiscovery]:
    """Every service of every domain, concurrently; results in input order (domain-major).

    One ``rng`` is shared, so with concurrent tasks the exact draws depend on scheduling:
    pass a seeded generator to :func:`discover_service` when an order must be reproducible.
    """
    limiter = trio.CapacityLimiter(concurrency)
    shared = rng or random.Random()
    cache = AddressCache()
    pairs = [(d, s) for d in domains for s in services]
    results: list[ServiceDiscovery | None] = [None] * len(pairs)

    async def one(index: int, domain: str, service: str) -> None:
        results[index] = await discover_service(
            domain, service, resolver, rng=shared, cap=cap, limiter=limiter, cache=cache
        )

    async with trio.open_nursery() as nursery:
        for index, (domain, service) in enumerate(pairs):
            nursery.start_soon(one, index, domain, service)
    return [r for r in results if r is not None]
