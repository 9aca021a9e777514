"""The readiness report's DNS table: the SRV and address records our Edge needs, expected
versus found, with the exact zone-file line to publish when one is missing or wrong.

Theory of this module
---------------------
* Expected comes from the deployment (each SIP and XMPP domain's SRV record pointing at the
  Access Edge, or ``sip.<domain>`` when the Edge FQDN lies outside the domain); found comes
  from the scan's SRV answers and the A/AAAA answers the caller looked up (DNS, not what the
  scan happened to reach). The service table is :data:`scanner.srv.SERVICES`: no second copy.
* Pure: a :class:`~scanner.results.ScanReport` in, rows out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scanner.deployment import Deployment
from scanner.results import ScanReport
from scanner.srv import SERVICES

SRV_TTL = 3600


@dataclass(frozen=True)
class DnsRow:
    record: str  # owner and type, e.g. "_sipfederationtls._tcp.contoso.com SRV"
    expected: str
    found: str
    ok: bool
    publish: str | None = None  # the exact zone-file line to add, when missing


def expected_target(dep: Deployment, domain: str) -> str:
    """Where a domain's SRV records should point: the Access Edge FQDN when it lies inside the
    domain (Lync/SfB's suffix rule), else ``sip.<domain>`` (an A record for the same Edge)."""
    edge = dep.access_edge_fqdn
    if edge and edge.endswith("." + domain):
        return edge
    return f"sip.{domain}"


def srv_record_text(service: str, domain: str, target: str) -> str:
    return f"{SERVICES[service].srv_prefix}.{domain}. {SRV_TTL} IN SRV 0 0 {SERVICES[service].port} {target}."


def address_hosts(report: ScanReport, dep: Deployment) -> list[str]:
    """The names whose A/AAAA records the DNS table reports on (SRV targets, or the expected
    ones when an SRV record is missing)."""
    return _srv_rows(report, dep)[1]


def dns_rows(report: ScanReport, dep: Deployment,
             addresses: Mapping[str, tuple[str, ...] | None] | None) -> tuple[DnsRow, ...]:
    rows, targets = _srv_rows(report, dep)
    endpoints = report.endpoints
    for host in targets:
        if addresses is not None and host in addresses:
            found_addresses = addresses[host]
        else:  # no lookup given: what the scan reached
            found_addresses = tuple(sorted({e.endpoint.address for e in endpoints
                                            if e.endpoint.target == host}))
        if found_addresses is None:
            rows.append(DnsRow(f"{host} A/AAAA", "an address of the Access Edge",
                               "DNS error (could not look)", False, None))
            continue
        ok = bool(found_addresses)
        rows.append(DnsRow(
            f"{host} A/AAAA", "an address of the Access Edge", ", ".join(found_addresses) or "none published",
            ok, None if ok else f"{host}. {SRV_TTL} IN A <public IP of the Access Edge>",
        ))
    return tuple(rows)


def _srv_rows(report: ScanReport, dep: Deployment) -> tuple[list[DnsRow], list[str]]:
    by_domain = {d.domain: d for d in report.domains}
    rows: list[DnsRow] = []
    targets: dict[str, None] = {}
    wanted = [(d, "sip-federation") for d in dep.sip_domains] + [(d, "xmpp-server") for d in dep.xmpp_domains]
    for domain, service in wanted:
        target = expected_target(dep, domain)
        owner = f"{SERVICES[service].srv_prefix}.{domain}"
        # the port is the Edge's choice (5061/5269 by convention): judged is the target
        expected = f"target {target}. (port {SERVICES[service].port} by convention)"
        result = by_domain.get(domain)
        svc = next((s for s in result.services if s.service == service), None) if result else None
        codes = {f.code for f in svc.findings} if svc else set()
        records = [r for r in svc.srv_records if r.target not in (".", "")] if svc else []
        if svc is None:
            found, ok = "not checked", False
        elif "dns-error" in codes:
            found, ok = "DNS error (could not look)", False
        elif not records:
            found = "disabled ('.' target)" if "srv-service-disabled" in codes else "not published"
            ok = False
        else:
            found = ", ".join(f"{r.priority} {r.weight} {r.port} {r.target}." for r in records)
            ok = "srv-target-outside-domain" not in codes
            for r in records:
                targets.setdefault(r.target.rstrip("."))
        if not records:
            targets.setdefault(target)
        publish = None if ok else srv_record_text(service, domain, target)
        rows.append(DnsRow(f"{owner} SRV", expected, found, ok, publish))
    return rows, list(targets)
