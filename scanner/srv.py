"""SRV planning: from what DNS said to the endpoints worth a TLS handshake (pure, no sockets).

Theory of this module
---------------------
Discovery is two questions asked in turn: "which SRV records does the domain publish?" and
"which addresses do their targets have?". The async layer (:mod:`scanner.discovery`) asks them;
this module only *judges* the answers, so every rule below is a two-line test.

The rules it keeps:

* A DNS answer is one of four outcomes (:class:`Outcome`). NXDOMAIN and NODATA both mean
  "not published" and are a *configuration* fact; ERROR (SERVFAIL, timeout, a malformed answer)
  means "could not look" and becomes ``dns-error`` (UNKNOWN), never a claim about the domain.
* No SRV record: SIP federation is broken (``srv-missing``, critical); XMPP server-to-server
  falls back to ``<domain>:5269`` (RFC 6120 3.2.2, ``srv-fallback``); optional services
  (xmpps-server, sip-access) are reported as ``srv-missing`` at info severity.
* A target of ``"."`` says the service is decidedly not offered (RFC 2782). Such records are
  dropped; if nothing else remains, ``srv-service-disabled`` and nothing is scanned.
* Records are put in RFC 2782 processing order (:func:`order_srv`), *then* capped, so the
  records kept are the ones a peer would try first.
* Microsoft 365 targets are reported (``hosted-microsoft-365``) and never scanned: their
  certificate is Microsoft's business, not the administrator's.
* A SIP federation target outside the SIP domain is critical (Lync/SfB "top-level suffix
  match") but still scanned: the certificate it serves is still worth knowing.
* Every A and AAAA address of every target is its own endpoint (pools: each node has its own
  certificate), deduplicated on (target, port, address).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Generic, TypeVar

from scanner.findings import Finding, Severity, finding

DEFAULT_SRV_CAP = 32
XMPP_FALLBACK_PORT = 5269  # RFC 6120 3.2.2


@dataclass(frozen=True)
class ServiceSpec:
    """One discoverable service and the rules that differ between services."""

    name: str
    srv_prefix: str
    xmpp: bool  # the certificate must cover the XMPP domain, else the SRV target
    required: bool  # a missing SRV record is critical
    fallback_port: int | None  # no SRV -> scan <domain>:<port> (RFC 6120 3.2.2)
    suffix_match: bool = False  # the SRV target must lie inside the domain (Lync/SfB rule)
    port: int = 0  # the port by convention, for the records we tell an administrator to publish
    direct_tls: bool = True  # TLS from the first byte; False: XMPP STARTTLS on the stream


SERVICES: Mapping[str, ServiceSpec] = MappingProxyType(
    {
        "sip-federation": ServiceSpec(
            "sip-federation", "_sipfederationtls._tcp", xmpp=False, required=True,
            fallback_port=None, suffix_match=True, port=5061,
        ),
        "xmpp-server": ServiceSpec(
            "xmpp-server", "_xmpp-server._tcp", xmpp=True, required=False,
            fallback_port=XMPP_FALLBACK_PORT, port=5269, direct_tls=False,
        ),
        "xmpps-server": ServiceSpec(
            "xmpps-server", "_xmpps-server._tcp", xmpp=True, required=False, fallback_port=None,
            port=5270,  # XEP-0368 fixes no port; 5270 is the common choice
        ),
        "sip-access": ServiceSpec(
            "sip-access", "_sip._tls", xmpp=False, required=False, fallback_port=None, port=443,
        ),
    }
)
DEFAULT_SERVICES: tuple[str, ...] = ("sip-federation", "xmpp-server", "xmpps-server")
# what a domain of our own Edge publishes: a SIP domain SIP federation, an XMPP domain both
# XMPP server services
SIP_DOMAIN_SERVICES: tuple[str, ...] = ("sip-federation",)
XMPP_DOMAIN_SERVICES: tuple[str, ...] = ("xmpp-server", "xmpps-server")


def parse_services(
    names: Sequence[str], option: str, quote: Callable[[str], str] = repr
) -> tuple[str, ...]:
    """User-chosen services, deduplicated in order; ``ValueError`` names ``option`` and the
    choices, quoting the bad name as the user wrote it (``repr`` on a command line, JSON in TOML)."""
    for name in names:
        if name not in SERVICES:
            raise ValueError(f"unknown {option} {quote(name)} (choose from {', '.join(SERVICES)})")
    return tuple(dict.fromkeys(names))

# Targets Microsoft publishes for Skype for Business Online / Teams (worldwide cloud). Other
# sovereign clouds are left out until their names are confirmed from Microsoft's documentation.
MICROSOFT_365_TARGETS: frozenset[str] = frozenset(
    {
        "sipfed.online.lync.com",  # _sipfederationtls._tcp
        "sipdir.online.lync.com",  # _sip._tls
    }
)


@dataclass(frozen=True)
class SrvRecord:
    """One SRV rdata; ``target`` is an A-label, lowercase, without trailing dot ("." stays ".")."""

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Endpoint:
    """One address to handshake with, and the names its certificate is judged against."""

    domain: str
    service: str
    target: str
    port: int
    address: str
    priority: int
    weight: int
    xmpp_domain: str | None


class Outcome(StrEnum):
    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    ERROR = "error"


T = TypeVar("T")


@dataclass(frozen=True)
class Lookup(Generic[T]):
    """What DNS said for one (name, type): the outcome, the values, and why it failed."""

    name: str
    rdtype: str
    outcome: Outcome
    values: tuple[T, ...] = ()
    reason: str = ""

    @property
    def absent(self) -> bool:
        """Nothing published (a fact about the zone), as opposed to "could not look"."""
        return self.outcome in (Outcome.NXDOMAIN, Outcome.NODATA) or (
            self.outcome is Outcome.ANSWER and not self.values
        )


@dataclass(frozen=True)
class SrvPlan:
    """The verdict on the SRV answer: findings so far and the records whose targets to resolve."""

    domain: str
    spec: ServiceSpec
    findings: tuple[Finding, ...]
    srv_records: tuple[SrvRecord, ...]  # what DNS published, in processing order, capped
    scan: tuple[SrvRecord, ...]  # the records whose targets get resolved and scanned
    hosted: bool = False
    fallback: bool = False

    @property
    def hosts(self) -> tuple[str, ...]:
        """Targets to resolve, each once, in processing order."""
        return tuple(dict.fromkeys(r.target for r in self.scan))


def normalize_target(text: str) -> str:
    """Compare names the way DNS does: case-insensitive, with or without the root dot."""
    if text in (".", ""):
        return "."
    return text.rstrip(".").lower()


def order_srv(records: Sequence[SrvRecord], rng: random.Random) -> list[SrvRecord]:
    """RFC 2782 processing order, deterministic given ``rng``.

    dnspython's ``processing_order()`` draws from the module-global ``random`` (no way to
    inject a seeded generator) and weighs weight-0 records as 0.1 rather than the RFC's
    "placed first, chosen only when the draw is 0", so the RFC's algorithm is kept here.
    """
    ordered: list[SrvRecord] = []
    for priority in sorted({r.priority for r in records}):
        ordered.extend(_order_priority([r for r in records if r.priority == priority], rng))
    return ordered


def _order_priority(group: list[SrvRecord], rng: random.Random) -> list[SrvRecord]:
    """Weighted selection within one priority (RFC 2782, "Usage rules").

    The group is shuffled first ("in any order") so that equal weights, including an all-zero
    group, share the load; then weight-0 records go to the front, where only a draw of exactly
    0 picks them: "a very small chance of being selected".
    """
    pending = list(group)
    rng.shuffle(pending)
    pending.sort(key=lambda r: r.weight != 0)  # stable: zero weights first
    ordered: list[SrvRecord] = []
    while pending:
        draw = rng.randint(0, sum(r.weight for r in pending))
        running = 0
        for index, record in enumerate(pending):
            running += record.weight
            if running >= draw:
                ordered.append(pending.pop(index))
                break
    return ordered


def target_in_sip_domain(target: str, sip_domain: str) -> bool:
    """Microsoft's suffix rule: the target must be ``<label(s)>.<sip domain>``.

    Lync/SfB peers accept an Edge found by DNS SRV only if its FQDN ends in the SIP domain
    (``sip.contoso.com`` for ``contoso.com``). The bare domain itself is accepted too: it
    trivially has the suffix, and refusing it would be a rule nobody documents. Matching is by
    whole labels, so ``sip.contoso.com.evil.com`` and ``evilcontoso.com`` are outside.
    """
    host, domain = normalize_target(target), normalize_target(sip_domain)
    if host == "." or domain == ".":
        return False
    return host == domain or host.endswith("." + domain)


def is_microsoft_365(target: str) -> bool:
    return normalize_target(target) in MICROSOFT_365_TARGETS


def srv_name(domain: str, spec: ServiceSpec) -> str:
    return f"{spec.srv_prefix}.{domain}"


def plan_srv(
    domain: str,
    spec: ServiceSpec,
    answer: Lookup[SrvRecord],
    rng: random.Random,
    *,
    cap: int = DEFAULT_SRV_CAP,
) -> SrvPlan:
    """Judge the SRV answer: which findings it earns, which targets deserve an address lookup."""
    if answer.outcome is Outcome.ERROR:
        return SrvPlan(domain, spec, (_dns_error(answer),), (), ())
    if answer.absent:
        return _plan_missing(domain, spec, answer.name)
    ordered = order_srv(answer.values, rng)
    kept = tuple(ordered[:cap])
    findings: list[Finding] = []
    if len(ordered) > cap:
        findings.append(finding(
            "srv-records-capped",
            f"{answer.name} has {len(ordered)} SRV records; only the first {cap} were used",
            name=answer.name, published=len(ordered), cap=cap,
        ))
    live = [r for r in kept if r.target != "."]
    if not live:
        findings.append(finding(
            "srv-service-disabled",
            f"{answer.name} has target '.': {domain} does not offer {spec.name}",
            name=answer.name, service=spec.name,
        ))
        return SrvPlan(domain, spec, tuple(findings), kept, ())
    hosted = [r for r in live if is_microsoft_365(r.target)]
    findings.extend(_hosted_findings(domain, spec, hosted))
    scan = tuple(r for r in live if not is_microsoft_365(r.target))
    findings.extend(_suffix_findings(domain, spec, scan))
    return SrvPlan(domain, spec, tuple(findings), kept, scan, hosted=bool(hosted))


def _plan_missing(domain: str, spec: ServiceSpec, name: str) -> SrvPlan:
    """No SRV record: fall back where the protocol says so, else say what is missing."""
    if spec.fallback_port is not None:
        fallback = SrvRecord(0, 0, spec.fallback_port, domain)
        note = finding(
            "srv-fallback",
            f"no SRV record at {name}: peers fall back to {domain}:{spec.fallback_port}",
            name=name, target=domain, port=spec.fallback_port,
        )
        return SrvPlan(domain, spec, (note,), (), (fallback,), fallback=True)
    severity = None if spec.required else Severity.INFO
    missing = finding(
        "srv-missing", f"no SRV record at {name} ({spec.name})", severity,
        name=name, service=spec.name,
    )
    return SrvPlan(domain, spec, (missing,), (), ())


def _hosted_findings(domain: str, spec: ServiceSpec, hosted: Sequence[SrvRecord]) -> list[Finding]:
    targets = sorted({r.target for r in hosted})
    if not targets:
        return []
    return [finding(
        "hosted-microsoft-365",
        f"{domain} ({spec.name}) is hosted by Microsoft 365 ({', '.join(targets)}); not scanned",
        service=spec.name, targets=targets,
    )]


def _suffix_findings(domain: str, spec: ServiceSpec, scan: Sequence[SrvRecord]) -> list[Finding]:
    if not spec.suffix_match:
        return []
    outside = dict.fromkeys(r.target for r in scan if not target_in_sip_domain(r.target, domain))
    return [
        finding(
            "srv-target-outside-domain",
            f"SRV target {target} is not inside the SIP domain {domain}",
            target=target, domain=domain,
        )
        for target in outside
    ]


def plan_endpoints(
    plan: SrvPlan, addresses: Mapping[str, Sequence[Lookup[str]]]
) -> tuple[tuple[Finding, ...], tuple[Endpoint, ...]]:
    """Turn the address answers of ``plan.hosts`` into findings and endpoints.

    ``addresses`` maps each host to its lookups (A and AAAA, in that order). A host with
    no address earns ``target-unresolvable`` only if every lookup was a definite "absent";
    one failed lookup makes it ``dns-error`` instead, because the address may well exist.
    An unresolvable *fallback* host is not a finding of its own: a domain with neither an
    XMPP SRV record nor an address simply does not do XMPP, which ``srv-fallback`` already says.
    """
    findings: list[Finding] = []
    for host in plan.hosts:
        lookups = addresses.get(host, ())
        findings.extend(_dns_error(lookup) for lookup in lookups if lookup.outcome is Outcome.ERROR)
        if plan.fallback and host == plan.domain and lookups and all(
            lookup.outcome is Outcome.NXDOMAIN for lookup in lookups
        ):
            # the fallback asks about the domain's own name: NXDOMAIN means there is no such
            # domain, which "peers fall back to <domain>:5269" would hide
            findings.append(finding(
                "domain-not-found", f"no such domain: {plan.domain} does not exist in DNS (NXDOMAIN)",
                domain=plan.domain,
            ))
        if not plan.fallback and _unresolvable(lookups):
            findings.append(finding(
                "target-unresolvable", f"SRV target {host} has no A or AAAA record",
                target=host, service=plan.spec.name,
            ))
    return tuple(findings), tuple(_endpoints(plan, addresses))


def needs_existence_check(plan: SrvPlan, answer: Lookup[SrvRecord]) -> bool:
    """A required service's SRV name is NXDOMAIN: is the domain itself there at all?

    ``_sipfederationtls._tcp.<d>`` is NXDOMAIN both when ``<d>`` publishes no SIP federation
    and when ``<d>`` does not exist; only a question about ``<d>`` itself tells them apart.
    """
    return plan.spec.required and not plan.fallback and answer.outcome is Outcome.NXDOMAIN


def existence_findings(plan: SrvPlan, lookups: Sequence[Lookup[str]]) -> tuple[Finding, ...]:
    """``domain-not-found`` in place of ``srv-missing`` when the domain's own name is NXDOMAIN."""
    if not lookups or not all(lookup.outcome is Outcome.NXDOMAIN for lookup in lookups):
        return ()
    return (finding("domain-not-found",
                    f"no such domain: {plan.domain} does not exist in DNS (NXDOMAIN)",
                    domain=plan.domain),)


def _unresolvable(lookups: Sequence[Lookup[str]]) -> bool:
    return bool(lookups) and all(lookup.absent for lookup in lookups)


def _endpoints(plan: SrvPlan, addresses: Mapping[str, Sequence[Lookup[str]]]) -> list[Endpoint]:
    seen: set[tuple[str, int, str]] = set()
    endpoints: list[Endpoint] = []
    xmpp_domain = plan.domain if plan.spec.xmpp else None
    for record in plan.scan:
        for address in _addresses(addresses.get(record.target, ())):
            key = (record.target, record.port, address)
            if key in seen:
                continue
            seen.add(key)
            endpoints.append(Endpoint(
                plan.domain, plan.spec.name, record.target, record.port, address,
                record.priority, record.weight, xmpp_domain,
            ))
    return endpoints


def _addresses(lookups: Iterable[Lookup[str]]) -> list[str]:
    return [address for lookup in lookups for address in lookup.values]


def _dns_error(lookup: Lookup[T]) -> Finding:
    return finding(
        "dns-error",
        f"DNS lookup {lookup.name} {lookup.rdtype} failed: {lookup.reason or 'no answer'}",
        name=lookup.name, rdtype=lookup.rdtype, reason=lookup.reason,
    )
