"""The go-live readiness report for our own Edge, as a model: the verdict and its evidence.

Theory of this module
---------------------
* The report answers one question first — can we go live? — with a one-line verdict and its
  reasons, then gives the evidence in the order a change ticket needs it: the certificate the
  Lync/SfB certificate summary asks for (:mod:`scanner.readiness_checks`), entry by entry;
  the DNS records expected versus found, with the exact record text to publish
  (:mod:`scanner.readiness_dns`); every endpoint; DANE (:mod:`scanner.readiness_dane`); the
  partners' verdicts on our certificate (:mod:`scanner.readiness_acceptance`); and for every
  failed check the remedy (``CodeInfo.remedy`` plus where it applies).
* READY means no CRITICAL and no UNKNOWN anywhere (:func:`blocks_go_live`): warnings are
  listed but do not block a go-live (an ECDSA key or a SHA-1 intermediate is a decision, not
  an outage). The exit code is the worst status, as everywhere in fedscan.
* Pure: :class:`Readiness` is built from a :class:`ScanReport` or an offline
  :class:`FileCheck` and holds typed values only (statuses, states, rows); the words of the
  verdict are built here once. :mod:`scanner.readiness_markdown` and
  :mod:`scanner.readiness_html` render it, each escaping for its own format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scanner import readiness_dane as dane_section
from scanner.certsummary import CertSummary
from scanner.deployment import Deployment
from scanner.findings import CODES, Finding, Status, worst
from scanner.offline import FileCheck
from scanner.plan import certificate_plan
from scanner.readiness_acceptance import AcceptedRow
from scanner.readiness_checks import Evidence, Requirement, State, requirements, worst_by_code
from scanner.readiness_dane import DaneSection
from scanner.readiness_dns import DnsRow, dns_rows
from scanner.results import EndpointResult, ScanReport, iso


def blocks_go_live(status: Status) -> bool:
    """CRITICAL and UNKNOWN block a go-live; a WARNING is listed for review, not blocking."""
    return status.rank >= Status.UNKNOWN.rank


@dataclass(frozen=True)
class EndpointRow:
    domain: str
    service: str
    target: str
    port: int
    address: str
    status: Status
    tls: str
    findings: tuple[str, ...]


@dataclass(frozen=True)
class Remedy:
    code: str
    status: Status
    summary: str
    remedy: str
    where: tuple[str, ...]


@dataclass(frozen=True)
class Readiness:
    generated_at: str
    source: str  # "live scan of ..." or "certificate file ..."
    status: Status
    ready: bool
    reasons: tuple[str, ...]
    subject: str
    certificates: tuple[str, ...]  # which certificates the table was judged on
    requirements: tuple[Requirement, ...]
    dns: tuple[DnsRow, ...] | None = None
    endpoints: tuple[EndpointRow, ...] | None = None
    remedies: tuple[Remedy, ...] = ()
    dane: DaneSection | None = None
    accepted_by: tuple[AcceptedRow, ...] | None = None  # [acceptance]: partners' verdicts on us

    @property
    def verdict_word(self) -> str:
        return "READY" if self.ready else "NOT READY"

    @property
    def verdict(self) -> str:
        return f"{self.verdict_word}: {'; '.join(self.reasons)}"


# ------------------------------------------------------------------------ building


def from_scan(report: ScanReport, dep: Deployment, *, client_auth_required: bool = True,
              addresses: Mapping[str, tuple[str, ...] | None] | None = None) -> Readiness:
    """Readiness of our Edge from a live own-Edge scan of the deployment's domains.

    ``addresses``: the A/AAAA answers for :func:`scanner.readiness_dns.address_hosts` (looked
    up by the caller, so the report states what DNS says of each name, not what the scan
    happened to reach)."""
    plan = certificate_plan(dep)
    evidence = scan_evidence(report.endpoints)
    reqs = requirements(plan, evidence, client_auth_required)
    dns = dns_rows(report, dep, addresses)
    endpoints = tuple(_endpoint_row(e) for e in report.endpoints)
    findings = [(d.domain, "DNS", f) for d in report.domains for f in d.all_findings]
    findings += [(e.endpoint.domain, where(e), f) for e in report.endpoints for f in e.findings]
    publish = {r.record.split(" ")[0]: r.publish for r in dns if r.publish}
    fixes = remedies(findings, publish)
    status = worst([report.status, *(r.verdict_status for r in reqs)])
    reasons = _reasons(status, reqs, dns, endpoints, fixes, report.interrupted)
    domains = ", ".join(d.domain for d in report.domains)
    return Readiness(
        iso(report.evaluated_at), f"live scan of {domains}", status, not blocks_go_live(status),
        tuple(reasons), plan.subject, tuple(e.label for e in evidence), tuple(reqs), dns,
        endpoints, tuple(fixes), dane_section.from_endpoints(report.endpoints),
    )


def from_file(check: FileCheck, dep: Deployment, generated_at: str, *,
              client_auth_required: bool = True, dane_checked: bool = False) -> Readiness:
    """Readiness from a certificate or CSR file, before the Edge exists: no DNS, no endpoints."""
    plan = certificate_plan(dep)
    evidence = [Evidence(f"{check.kind} {check.path.name}", check.summary, check.coverage,
                         frozenset(f.code for f in check.findings), worst_by_code(check.findings))
                ] if check.summary is not None else []
    reqs = requirements(plan, evidence, client_auth_required)
    fixes = remedies([(check.path.name, check.kind, f) for f in check.findings], {})
    status = worst([check.status, *(r.verdict_status for r in reqs)])
    reasons = _reasons(status, reqs, None, None, fixes, False)
    return Readiness(
        generated_at, f"{check.kind} file {check.path.name} (DNS and endpoints not checked)", status,
        not blocks_go_live(status), tuple(reasons), plan.subject,
        tuple(e.label for e in evidence), tuple(reqs), None, None, tuple(fixes),
        dane_section.from_findings(check.path.name, check.findings, dane_checked),
    )


def scan_evidence(endpoints: Sequence[EndpointResult]) -> list[Evidence]:
    """One piece of evidence per distinct leaf the endpoints serve, with all their findings."""
    by_cert: dict[str, list[tuple[EndpointResult, CertSummary]]] = {}
    for e in endpoints:
        if e.certificate is not None:
            by_cert.setdefault(e.certificate.sha256, []).append((e, e.certificate))
    out = []
    for sha, group in by_cert.items():
        first, cert = group[0]
        found = [f for e, _ in group for f in e.findings]
        n = len(group)
        out.append(Evidence(f"SHA-256 {sha[:16]}… on {n} endpoint{'' if n == 1 else 's'}",
                            cert, first.coverage, frozenset(f.code for f in found), worst_by_code(found)))
    return out


def _endpoint_row(e: EndpointResult) -> EndpointRow:
    ep = e.endpoint
    tls = e.tls.version if e.tls and e.tls.version else "-"
    counts: dict[str, int] = {}
    for f in e.findings:
        counts[f.code] = counts.get(f.code, 0) + 1
    # "san-missing x3", not "san-missing, san-missing, san-missing"
    codes = tuple(code if n == 1 else f"{code} x{n}" for code, n in counts.items())
    return EndpointRow(ep.domain, ep.service, ep.target, ep.port, ep.address, e.status, tls, codes)


def where(e: EndpointResult) -> str:
    """``sip-federation sip.contoso.test:5061 [192.0.2.1]``: an endpoint in a remediation line."""
    ep = e.endpoint
    return f"{ep.service} {ep.target}:{ep.port} [{ep.address}]"


def remedies(findings: Sequence[tuple[str, str, Finding]], publish: dict[str, str]) -> list[Remedy]:
    """One entry per failed check (status not OK), worst first, with every place it applies."""
    grouped: dict[str, list[tuple[str, str, Finding]]] = {}
    for item in findings:
        if item[2].status is not Status.OK:
            grouped.setdefault(item[2].code, []).append(item)
    out = []
    for code, items in grouped.items():
        info = CODES[code]
        # one line per distinct problem, with the places it applies: the same missing SAN on
        # the 8 endpoints that serve one certificate is one step to take, not 8
        places: dict[str, list[tuple[str, str]]] = {}
        for domain, place, f in items:
            places.setdefault(f.message, []).append((domain, place))
        where = []
        for message, at in places.items():
            unique = list(dict.fromkeys(at))
            if len(unique) == 1:
                text = f"{unique[0][0]} {unique[0][1]}: {message}"
            else:
                text = f"{message} — on {len(unique)} endpoints ({_places(unique)})"
            f = next(f for _, _, f in items if f.message == message)
            record = publish.get(str(f.details.get("name", "")))
            if code == "srv-missing" and record:
                text += f" — publish: {record}"
            where.append(text)
        out.append(Remedy(code, worst(f.status for _, _, f in items), info.summary, info.remedy,
                          tuple(dict.fromkeys(where))))
    return sorted(out, key=lambda r: -r.status.rank)


def _places(places: Sequence[tuple[str, str]]) -> str:
    """``contoso.test sip-federation x2, xmpp-server x2; fabrikam.test sip-federation``."""
    by_domain: dict[str, dict[str, int]] = {}
    for domain, place in places:
        service = place.split(" ", 1)[0]
        counts = by_domain.setdefault(domain, {})
        counts[service] = counts.get(service, 0) + 1
    return "; ".join(f"{d} " + ", ".join(s if n == 1 else f"{s} x{n}" for s, n in c.items())
                     for d, c in by_domain.items())


#: the verdict's words for a warning (the code's summary is a sentence: too long for a verdict)
_WARNING_WORDS = {
    "no-crl-distribution-point": "no CRL distribution point",
    "expires-soon": "the certificate expires soon",
    "weak-signature": "a SHA-1 signature",
    "eku-client-auth-missing": "no clientAuth EKU",
    "cn-not-in-san": "the subject CN is not repeated in the SAN",
    "wildcard-san": "a wildcard SAN",
    "wildcard-cn": "a wildcard subject CN",
    "pool-certificate-mismatch": "pool nodes serve different certificates",
    "client-certificate-required": "an endpoint demands a client certificate",
    "srv-records-capped": "too many SRV records",
    "suppression-expired": "a lapsed suppression",
}


def _reasons(
    status: Status,
    reqs: Sequence[Requirement],
    dns: Sequence[DnsRow] | None,
    endpoints: Sequence[EndpointRow] | None,
    fixes: Sequence[Remedy],
    interrupted: bool,
) -> list[str]:
    """The verdict's sentence: what blocks the go-live, then what to review. Its status is the
    worst of what it names, so a lone warning (say, no CRL distribution point) reads as one."""
    reasons: list[str] = []
    failed = [r for r in reqs if r.state is State.MISSING]
    entries = list(dict.fromkeys(r.lacks for r in failed if r.status is Status.CRITICAL
                                 and r.item.is_name_or_usage))
    if entries:
        noun = "entry" if len(entries) == 1 else "entries"
        reasons.append(f"the certificate lacks {len(entries)} required {noun} ({', '.join(entries)})")
    other = list(dict.fromkeys(r.lacks for r in failed if r.status is Status.CRITICAL
                               and not r.item.is_name_or_usage))
    if other:
        reasons.append("the certificate needs " + ", ".join(other))
    unknown = [r.required for r in reqs if r.state is State.UNKNOWN]
    if unknown and not failed:
        reasons.append("no certificate could be retrieved")
    if dns is not None:
        absent = [r.record for r in dns if not r.ok]
        if absent:
            reasons.append(f"{len(absent)} DNS record{'' if len(absent) == 1 else 's'} to publish or fix "
                           f"({', '.join(absent)})")
    if endpoints is not None:
        bad = [e for e in endpoints if blocks_go_live(e.status)]
        if bad:
            reasons.append(f"{len(bad)} of {len(endpoints)} endpoints failing")
        elif not endpoints:
            reasons.append("no endpoint could be scanned")
    if interrupted:
        reasons.append("the scan was interrupted")
    if blocks_go_live(status) and not reasons:
        reasons.append("failed checks: " + ", ".join(r.code for r in fixes if blocks_go_live(r.status)))
    if not reasons:
        if dns is None:  # a file: nothing was looked up or connected to
            reasons.append("every required name and usage is in the certificate; DNS records "
                           "and endpoints were not checked")
        else:
            all_ok = endpoints and all(e.status is Status.OK for e in endpoints)
            checked = f", all {len(endpoints)} endpoints OK" if endpoints and all_ok else ""
            reasons.append(f"every required name, usage and record is in place{checked}")
    # every warning-level entry of the table comes from a finding, so the remedies hold them all
    warnings = list(dict.fromkeys(_WARNING_WORDS.get(m.code, m.code) for m in fixes
                                  if m.status is Status.WARNING))
    if warnings:
        noun = "warning" if len(warnings) == 1 else "warnings"
        reasons.append(f"{len(warnings)} {noun} to review: {', '.join(warnings)}")
    return reasons
