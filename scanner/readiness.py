"""The go-live readiness report for our own Edge: certificate, DNS, endpoints, what to fix.

Theory of this module
---------------------
* The report answers one question first — can we go live? — with a one-line verdict and its
  reasons, then gives the evidence in the order a change ticket needs it: the certificate the
  Lync/SfB certificate summary asks for (:func:`scanner.plan.certificate_plan`), entry by
  entry, present or missing; the DNS records expected versus found, with the exact record text
  to publish; every endpoint; and for every failed check the remedy (``CodeInfo.remedy`` plus
  where it applies).
* READY means no CRITICAL and no UNKNOWN anywhere: warnings are listed but do not block a
  go-live (an ECDSA key or a SHA-1 intermediate is a decision, not an outage). The exit code is
  the worst status, as everywhere in fedscan.
* The model (:class:`Readiness`) is built by pure functions from a :class:`ScanReport` or an
  offline :class:`FileCheck`; Markdown and HTML are two renderings of it. Everything that comes
  from the network or a certificate is escaped in both (``html.escape`` in HTML; backslash
  escapes in Markdown, whose renderers pass inline HTML through and where ``|`` would break a
  table), so a hostile SAN cannot script the
  page a change board opens.
* The HTML is one self-contained file: inline CSS, no scripts, no external assets, and a print
  stylesheet, because it ends up attached to tickets and printed for change boards.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from scanner import readiness_dane as dane_section
from scanner.certsummary import CertSummary, RequestSummary
from scanner.deployment import Deployment
from scanner.findings import CODES, Finding, Status, worst
from scanner.offline import FileCheck
from scanner.plan import CertificatePlan, certificate_plan
from scanner.readiness_acceptance import AcceptedRow
from scanner.readiness_acceptance import html as acceptance_html
from scanner.readiness_acceptance import markdown as acceptance_markdown
from scanner.readiness_dane import DaneSection
from scanner.results import EndpointResult, ScanReport, iso
from scanner.safe_text import one_line
from scanner.srv import SERVICES
from scanner.verify import Coverage

PRESENT, MISSING, UNKNOWN, NA = "present", "missing", "unknown", "n/a"
NOT_CHECKED = "not checked"  # cannot be known from what fedscan sees; never blocks a go-live
SRV_TTL = 3600


@dataclass(frozen=True)
class Requirement:
    item: str  # "SAN", "Subject", "EKU", ...
    required: str  # the name or value the plan requires
    why: str
    state: str  # present | missing | unknown | n/a
    detail: str = ""
    # when missing: how bad (the severity of the finding behind it, e.g. a missing CRL
    # distribution point is a warning) and the words the verdict uses for it
    status: Status = Status.CRITICAL
    lacks: str = ""


@dataclass(frozen=True)
class DnsRow:
    record: str  # owner and type, e.g. "_sipfederationtls._tcp.contoso.com SRV"
    expected: str
    found: str
    ok: bool
    publish: str | None = None  # the exact zone-file line to add, when missing


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
    def verdict(self) -> str:
        word = "READY" if self.ready else "NOT READY"
        return f"{word}: {'; '.join(self.reasons)}"


@dataclass(frozen=True)
class _Evidence:
    """One certificate (or CSR) the requirements are judged on."""

    label: str
    cert: CertSummary | RequestSummary
    coverage: tuple[Coverage, ...]
    codes: frozenset[str]
    statuses: Mapping[str, Status] | None = None  # the worst status of each finding code


# ------------------------------------------------------------------------ building


def from_scan(report: ScanReport, dep: Deployment, *, client_auth_required: bool = True,
              addresses: Mapping[str, tuple[str, ...] | None] | None = None) -> Readiness:
    """Readiness of our Edge from a live own-Edge scan of the deployment's domains.

    ``addresses``: the A/AAAA answers for :func:`address_hosts` (looked up by the caller, so
    the report states what DNS says of each name, not what the scan happened to reach)."""
    plan = certificate_plan(dep)
    evidence = _scan_evidence(report.endpoints)
    requirements = _requirements(plan, evidence, client_auth_required)
    dns = _dns_rows(report, dep, addresses)
    endpoints = tuple(_endpoint_row(e) for e in report.endpoints)
    findings = [(d.domain, "DNS", f) for d in report.domains for f in d.all_findings]
    findings += [(e.endpoint.domain, _where(e), f) for e in report.endpoints for f in e.findings]
    publish = {r.record.split(" ")[0]: r.publish for r in dns if r.publish}
    remedies = _remedies(findings, publish)
    status = worst([report.status, *(_req_status(r) for r in requirements)])
    reasons = _reasons(status, requirements, dns, endpoints, remedies, report.interrupted)
    domains = ", ".join(d.domain for d in report.domains)
    return Readiness(
        iso(report.evaluated_at), f"live scan of {domains}", status, status.rank < Status.UNKNOWN.rank,
        tuple(reasons), plan.subject, tuple(e.label for e in evidence), tuple(requirements), dns,
        endpoints, tuple(remedies), dane_section.from_endpoints(report.endpoints),
    )


def from_file(check: FileCheck, dep: Deployment, generated_at: str, *,
              client_auth_required: bool = True, dane_checked: bool = False) -> Readiness:
    """Readiness from a certificate or CSR file, before the Edge exists: no DNS, no endpoints."""
    plan = certificate_plan(dep)
    evidence = [_Evidence(f"{check.kind} {check.path.name}", check.summary, check.coverage,
                          frozenset(f.code for f in check.findings),
                          _worst_by_code(check.findings))] if check.summary is not None else []
    requirements = _requirements(plan, evidence, client_auth_required)
    remedies = _remedies([(check.path.name, check.kind, f) for f in check.findings], {})
    status = worst([check.status, *(_req_status(r) for r in requirements)])
    reasons = _reasons(status, requirements, None, None, remedies, False)
    return Readiness(
        generated_at, f"{check.kind} file {check.path.name} (DNS and endpoints not checked)", status,
        status.rank < Status.UNKNOWN.rank, tuple(reasons), plan.subject,
        tuple(e.label for e in evidence), tuple(requirements), None, None, tuple(remedies),
        dane_section.from_findings(check.path.name, check.findings, dane_checked),
    )


def _worst_by_code(findings: Iterable[Finding]) -> dict[str, Status]:
    out: dict[str, Status] = {}
    for f in findings:
        out[f.code] = worst([out.get(f.code, Status.OK), f.status])
    return out


def _scan_evidence(endpoints: Sequence[EndpointResult]) -> list[_Evidence]:
    by_cert: dict[str, list[EndpointResult]] = {}
    for e in endpoints:
        if e.leaf_sha256 and e.certificate is not None:
            by_cert.setdefault(e.leaf_sha256, []).append(e)
    out = []
    for sha, group in by_cert.items():
        first = group[0]
        assert first.certificate is not None
        found = [f for e in group for f in e.findings]
        n = len(group)
        out.append(_Evidence(f"SHA-256 {sha[:16]}… on {n} endpoint{'' if n == 1 else 's'}",
                             first.certificate, first.coverage, frozenset(f.code for f in found),
                             statuses=_worst_by_code(found)))
    return out


def _requirements(
    plan: CertificatePlan, evidence: Sequence[_Evidence], client_auth_required: bool
) -> list[Requirement]:
    out: list[Requirement] = []

    def row(item: str, required: str, why: str, verdicts: Iterable[tuple[str, str]],
            codes: Sequence[str] = (), lacks: str = "") -> None:
        """``codes``: the findings that make this entry missing; their worst status among the
        certificates judged is the entry's (CRITICAL when none says otherwise)."""
        got = list(verdicts)
        if not got:
            out.append(Requirement(item, required, why, UNKNOWN, "no certificate was retrieved"))
            return
        seen = [ev.statuses[c] for ev in evidence for c in codes if ev.statuses and c in ev.statuses]
        status = worst(seen) if seen else Status.CRITICAL
        states = [s for s, _ in got]
        for state in (MISSING, UNKNOWN, NA, PRESENT):
            if state in states:
                details = [d for s, d in got if s == state and d]
                if len(set(states)) > 1:
                    # endpoints serve different certificates: say which ones this row is about
                    which = [ev.label for ev, s in zip(evidence, states, strict=True) if s == state]
                    details.append(f"{len(which)} of {len(got)} certificates: {', '.join(which)}")
                out.append(Requirement(item, required, why, state, "; ".join(dict.fromkeys(details)),
                                       status, lacks or required))
                return

    row("Subject CN", plan.subject, "Access Edge FQDN",
        (_subject_state(ev, plan.subject) for ev in evidence))
    for entry in plan.sans:
        row("SAN", entry.name, entry.reason, (_san_state(ev, entry.name) for ev in evidence))
    row("EKU", "serverAuth", "peers refuse a TLS server without it",
        (_eku_state(ev, "serverAuth") for ev in evidence), ("eku-server-auth-missing",))
    row("EKU", "clientAuth",
        "federation is mutual TLS" if client_auth_required else "advised (client_auth = optional)",
        (_eku_state(ev, "clientAuth") for ev in evidence), ("eku-client-auth-missing",))
    key, _, exportable = plan.key.partition(", ")
    row("Key", key, "Lync/SfB and older peers",
        (_code_state(ev, ("weak-key",), ev.cert.key) for ev in evidence), ("weak-key",), "a strong key")
    if exportable:
        # neither a served certificate nor a CSR shows how its private key was stored
        out.append(Requirement("Key", exportable, "every node of a pool installs the same key",
                               NOT_CHECKED, "a certificate does not show it: check the key's export "
                               "policy where the request was made"))
    row("Signature", plan.signature, "Lync/SfB do not support RSASSA-PSS",
        (_code_state(ev, ("weak-signature", "pss-signature"), ev.cert.signature) for ev in evidence),
        ("weak-signature", "pss-signature"), "a supported signature")
    row("CRL distribution point", "required", "Lync/SfB check revocation",
        (_crl_state(ev) for ev in evidence), ("no-crl-distribution-point",), "no CRL distribution point")
    row("Validity", "valid now, beyond the warning threshold", "an expired certificate breaks federation",
        (_validity_state(ev) for ev in evidence), ("expired", "not-yet-valid", "expires-soon"),
        "a valid date range")
    row("Trusted chain", "chain to a public root, intermediates served", "peers must build the path",
        (_chain_state(ev) for ev in evidence), ("chain-untrusted", "chain-incomplete", "self-signed"),
        "a trusted chain")
    return out


def _subject_state(ev: _Evidence, subject: str) -> tuple[str, str]:
    if any(cn.lower() == subject.lower() for cn in ev.cert.common_names):
        return PRESENT, ""
    return MISSING, f"subject is {ev.cert.subject or '(empty)'}"


def _san_state(ev: _Evidence, name: str) -> tuple[str, str]:
    for c in ev.coverage:
        if c.identity.name == name:
            if c.covered_by is None:
                return MISSING, ""
            if c.how == "wildcard":
                return MISSING, f"only the wildcard {c.covered_by} (not accepted by Lync/SfB)"
            return PRESENT, "" if c.how == "dns-id" else f"as {c.how}"
    dns_names = [n.lower() for n in ev.cert.dns_names]
    return (PRESENT, "") if name.lower() in dns_names else (MISSING, "")


def _eku_state(ev: _Evidence, usage: str) -> tuple[str, str]:
    eku = ev.cert.eku
    if eku is None:
        return PRESENT, "no EKU extension: any purpose"
    return (PRESENT, "") if usage in eku else (MISSING, "EKU is " + (", ".join(eku) or "empty"))


def _code_state(ev: _Evidence, codes: Sequence[str], value: str) -> tuple[str, str]:
    hit = [c for c in codes if c in ev.codes]
    return (MISSING, f"{value} ({', '.join(hit)})") if hit else (PRESENT, value)


def _crl_state(ev: _Evidence) -> tuple[str, str]:
    if not isinstance(ev.cert, CertSummary):
        return NA, "added by the CA when it issues the certificate"
    urls = ev.cert.crl_distribution_points
    return (PRESENT, ", ".join(urls)) if urls else (MISSING, "")


def _validity_state(ev: _Evidence) -> tuple[str, str]:
    if not isinstance(ev.cert, CertSummary):
        return NA, "set by the CA"
    until = f"notAfter {iso(ev.cert.not_after)} ({ev.cert.days_left} days left)"
    bad = [c for c in ("expired", "not-yet-valid", "expires-soon") if c in ev.codes]
    return (MISSING, f"{until}: {', '.join(bad)}") if bad else (PRESENT, until)


def _chain_state(ev: _Evidence) -> tuple[str, str]:
    if not isinstance(ev.cert, CertSummary):
        return NA, "install the CA's intermediates with the certificate"
    bad = [c for c in ("chain-untrusted", "chain-incomplete", "self-signed") if c in ev.codes]
    return (MISSING, ", ".join(bad)) if bad else (PRESENT, f"issuer {ev.cert.issuer}")


def _req_status(r: Requirement) -> Status:
    if r.state == MISSING:
        return r.status
    return Status.UNKNOWN if r.state == UNKNOWN else Status.OK


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


def _dns_rows(report: ScanReport, dep: Deployment,
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


def _endpoint_row(e: EndpointResult) -> EndpointRow:
    ep = e.endpoint
    tls = e.tls.version if e.tls and e.tls.version else "-"
    counts: dict[str, int] = {}
    for f in e.findings:
        counts[f.code] = counts.get(f.code, 0) + 1
    # "san-missing x3", not "san-missing, san-missing, san-missing"
    codes = tuple(code if n == 1 else f"{code} x{n}" for code, n in counts.items())
    return EndpointRow(ep.domain, ep.service, ep.target, ep.port, ep.address, e.status, tls, codes)


def _where(e: EndpointResult) -> str:
    ep = e.endpoint
    return f"{ep.service} {ep.target}:{ep.port} [{ep.address}]"


def _remedies(findings: Sequence[tuple[str, str, Finding]], publish: dict[str, str]) -> list[Remedy]:
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
    requirements: Sequence[Requirement],
    dns: Sequence[DnsRow] | None,
    endpoints: Sequence[EndpointRow] | None,
    remedies: Sequence[Remedy],
    interrupted: bool,
) -> list[str]:
    """The verdict's sentence: what blocks the go-live, then what to review. Its status is the
    worst of what it names, so a lone warning (say, no CRL distribution point) reads as one."""
    reasons: list[str] = []
    failed = [r for r in requirements if r.state == MISSING]
    entries = list(dict.fromkeys(r.lacks for r in failed if r.status is Status.CRITICAL
                                 and r.item in ("Subject CN", "SAN", "EKU")))
    if entries:
        noun = "entry" if len(entries) == 1 else "entries"
        reasons.append(f"the certificate lacks {len(entries)} required {noun} ({', '.join(entries)})")
    other = list(dict.fromkeys(r.lacks for r in failed if r.status is Status.CRITICAL
                               and r.item not in ("Subject CN", "SAN", "EKU")))
    if other:
        reasons.append("the certificate needs " + ", ".join(other))
    unknown = [r.required for r in requirements if r.state == UNKNOWN]
    if unknown and not failed:
        reasons.append("no certificate could be retrieved")
    if dns is not None:
        absent = [r.record for r in dns if not r.ok]
        if absent:
            reasons.append(f"{len(absent)} DNS record{'' if len(absent) == 1 else 's'} to publish or fix "
                           f"({', '.join(absent)})")
    if endpoints is not None:
        bad = [e for e in endpoints if e.status in (Status.CRITICAL, Status.UNKNOWN)]
        if bad:
            reasons.append(f"{len(bad)} of {len(endpoints)} endpoints failing")
        elif not endpoints:
            reasons.append("no endpoint could be scanned")
    if interrupted:
        reasons.append("the scan was interrupted")
    if status.rank >= Status.UNKNOWN.rank and not reasons:
        reasons.append("failed checks: " + ", ".join(r.code for r in remedies if r.status.rank >= 2))
    if not reasons:
        if dns is None:  # a file: nothing was looked up or connected to
            reasons.append("every required name and usage is in the certificate; DNS records "
                           "and endpoints were not checked")
        else:
            all_ok = endpoints and all(e.status is Status.OK for e in endpoints)
            checked = f", all {len(endpoints)} endpoints OK" if endpoints and all_ok else ""
            reasons.append(f"every required name, usage and record is in place{checked}")
    # every warning-level entry of the table comes from a finding, so the remedies hold them all
    warnings = list(dict.fromkeys(_WARNING_WORDS.get(m.code, m.code) for m in remedies
                                  if m.status is Status.WARNING))
    if warnings:
        noun = "warning" if len(warnings) == 1 else "warnings"
        reasons.append(f"{len(warnings)} {noun} to review: {', '.join(warnings)}")
    return reasons


# ------------------------------------------------------------------------ Markdown


def _state_words(q: Requirement) -> str:
    """"missing", or "missing (warning)" when the finding behind it is only a warning."""
    if q.state == MISSING and q.status is not Status.CRITICAL:
        return f"{q.state} ({q.status.name.lower()})"
    return q.state


def _md(text: object) -> str:
    """Escape text from certificates/the network for a Markdown table cell: every character
    Markdown or inline HTML gives a meaning is backslash-escaped (CommonMark shows ``\\<`` as
    ``<``), so the text reads as itself in a renderer and in the raw file (no ``&lt;``)."""
    s = one_line(str(text))  # also no terminal escapes for whoever reads the raw file
    return re.sub(r"([\\`*_\[\]|#!<>&])", r"\\\1", s)


def render_markdown(r: Readiness) -> str:
    lines = [
        "# fedscan go-live readiness",
        "",
        f"**{'READY' if r.ready else 'NOT READY'}** ({r.status.name}): {_md('; '.join(r.reasons))}",
        "",
        f"Generated {r.generated_at} from {_md(r.source)}.",
        "",
        "## Certificate",
        "",
        f"Subject (Access Edge FQDN): {_md(r.subject)}. Judged on: "
        + (", ".join(_md(c) for c in r.certificates) or "no certificate retrieved") + ".",
        "",
        "| Item | Required | Why | State | Detail |",
        "|---|---|---|---|---|",
    ]
    for q in r.requirements:
        state = _state_words(q)
        state = state.upper() if q.state == MISSING and q.status is Status.CRITICAL else state
        lines.append(f"| {_md(q.item)} | {_md(q.required)} | {_md(q.why)} | {state} | {_md(q.detail)} |")
    if r.dns is not None:
        lines += ["", "## DNS", "", "| Record | Expected | Found | OK |", "|---|---|---|---|"]
        for d in r.dns:
            lines.append(f"| {_md(d.record)} | {_md(d.expected)} | {_md(d.found)} | "
                         f"{'yes' if d.ok else 'NO'} |")
        publish = [d.publish for d in r.dns if d.publish]
        if publish:
            # verbatim, for copying (Markdown does not decode entities inside a code block):
            # the records are built from validated config names, and the fence is longer than
            # any backtick run in them, so nothing can close the block early
            fence = "`" * max(3, 1 + max(len(m) for p in publish for m in ["", *re.findall(r"`+", p)]))
            lines += ["", "Publish:", "", fence, *publish, fence]
    if r.endpoints is not None:
        lines += ["", "## Endpoints", "", "| Domain | Service | Target | Address | TLS | Status | Findings |",
                  "|---|---|---|---|---|---|---|"]
        for e in r.endpoints:
            lines.append(f"| {_md(e.domain)} | {_md(e.service)} | {_md(f'{e.target}:{e.port}')} | "
                         f"{_md(e.address)} | {_md(e.tls)} | {e.status.name} | "
                         f"{_md(', '.join(e.findings) or '-')} |")
    if r.dane is not None:
        lines += ["", "## DANE", ""]
        if r.dane.note:
            lines.append(_md(r.dane.note))
        if r.dane.rows:
            lines += ["| Where | TLSA | Status | Verdict |", "|---|---|---|---|"]
            lines += [f"| {_md(d.where)} | {_md(d.tlsa)} | {d.status.name} | {_md(d.verdict)} |"
                      for d in r.dane.rows]
    lines += acceptance_markdown(r.accepted_by, _md)
    lines += ["", "## Remediation", ""]
    if not r.remedies:
        lines.append("Nothing to fix.")
    for m in r.remedies:
        lines += [f"### {m.status.name}: {_md(m.code)}", "", f"{_md(m.summary)}", "",
                  f"**Fix:** {_md(m.remedy)}", ""]
        lines += [f"- {_md(w)}" for w in m.where]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------------ HTML

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;
max-width:1100px;margin:2em auto;padding:0 1em}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #ccd}
h3{font-size:1em;margin:1.2em 0 .3em}
.verdict{padding:.8em 1em;border-radius:6px;font-size:1.1em;border:2px solid}
.ready{background:#e8f5e9;border-color:#2e7d32}.notready{background:#fdecea;border-color:#c62828}
.ready.v-WARNING{background:#fff8e1;border-color:#b26a00}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #c9ced6;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eef1f5}td{overflow-wrap:break-word}.nw{white-space:nowrap}
.OK,.present,.yes{color:#1b5e20;font-weight:600}.WARNING{color:#8a5300;font-weight:600}
.CRITICAL,.missing,.NO{color:#b71c1c;font-weight:700}.UNKNOWN,.unknown{color:#4a148c;font-weight:700}
.missing.WARNING{color:#8a5300}
pre{background:#f4f6f8;padding:.6em;border:1px solid #c9ced6;overflow-x:auto;white-space:pre-wrap}
.meta{color:#555}
@media print{body{margin:0;max-width:none;font-size:10pt}a{color:inherit}
.verdict{border-width:1px}tr,pre,.remedy{page-break-inside:avoid}h2{page-break-after:avoid}
th{background:#eee!important;-webkit-print-color-adjust:exact;print-color-adjust:exact}}
@media screen and (max-width:700px){body{margin:1em auto}
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:auto}
table.stack thead{display:none}table.stack tr{border:1px solid #c9ced6;margin:.6em 0;padding:.3em .6em}
table.stack td{border:0;padding:.1em 0}table.stack td:empty{display:none}
table.stack td::before{content:attr(data-label) ": ";font-weight:400;color:#555}}
"""


def _h(text: object) -> str:
    return html.escape(str(text), quote=True)


def _hn(text: object) -> str:
    """Escaped, with a line-break opportunity after each dot: a long DNS name wraps between
    labels, never inside one (``overflow-wrap:anywhere`` once broke "present" into "prese/nt")."""
    return _h(text).replace(".", ".<wbr>")


def _table(headers: Sequence[str], rows: Iterable[Sequence[tuple[str, str]]]) -> list[str]:
    """A table that becomes one card per row on a phone (``data-label`` names each cell).
    Each cell is ``(html, css class)``; the html is already escaped."""
    out = ['<table class="stack"><thead><tr>' + "".join(f"<th>{_h(h)}</th>" for h in headers)
           + "</tr></thead><tbody>"]
    for row in rows:
        cells = "".join(f'<td data-label="{_h(h)}"' + (f' class="{_h(css)}"' if css else "") + f">{text}</td>"
                        for h, (text, css) in zip(headers, row, strict=True))
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return out


def render_html(r: Readiness) -> str:
    word = "READY" if r.ready else "NOT READY"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>fedscan readiness: {_h(word)} ({_h(r.subject)})</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>fedscan go-live readiness</h1>",
        f'<p class="verdict {"ready" if r.ready else "notready"} v-{r.status.name}">'
        f"<strong>{_h(word)}</strong> "
        f"({_h(r.status.name)}): {_h('; '.join(r.reasons))}</p>",
        f'<p class="meta">Generated {_h(r.generated_at)} from {_hn(r.source)}.</p>',
        "<h2>Certificate</h2>",
        f"<p>Subject (Access Edge FQDN): <code>{_hn(r.subject)}</code>. Judged on: "
        + (", ".join(_h(c) for c in r.certificates) or "no certificate retrieved") + ".</p>",
    ]
    out += _table(("Item", "Required", "Why", "State", "Detail"), (
        ((_h(q.item), ""), (f"<code>{_hn(q.required)}</code>", ""), (_h(q.why), ""),
         (_h(_state_words(q)), f"nw {q.state} {q.status.name}" if q.state == MISSING else f"nw {q.state}"),
         (_hn(q.detail), ""))
        for q in r.requirements))
    if r.dns is not None:
        out.append("<h2>DNS</h2>")
        out += _table(("Record", "Expected", "Found", "OK"), (
            ((f"<code>{_hn(d.record)}</code>", ""), (f"<code>{_hn(d.expected)}</code>", ""),
             (_hn(d.found), ""), ("yes" if d.ok else "NO", "nw " + ("yes" if d.ok else "NO")))
            for d in r.dns))
        publish = [d.publish for d in r.dns if d.publish]
        if publish:
            out.append("<p>Publish:</p><pre>" + "\n".join(_h(p) for p in publish) + "</pre>")
    if r.endpoints is not None:
        out.append("<h2>Endpoints</h2>")
        out += _table(("Domain", "Service", "Target", "Address", "TLS", "Status", "Findings"), (
            ((_hn(e.domain), ""), (_h(e.service), "nw"), (_hn(f"{e.target}:{e.port}"), ""),
             (_h(e.address), ""), (_h(e.tls), "nw"), (e.status.name, f"nw {e.status.name}"),
             (_h(", ".join(e.findings) or "-"), ""))
            for e in r.endpoints))
    if r.dane is not None:
        out.append("<h2>DANE</h2>")
        if r.dane.note:
            out.append(f"<p>{_h(r.dane.note)}</p>")
        if r.dane.rows:
            out += _table(("Where", "TLSA", "Status", "Verdict"), (
                ((_hn(d.where), ""), (f"<code>{_hn(d.tlsa)}</code>", ""),
                 (d.status.name, f"nw {d.status.name}"), (_h(d.verdict), ""))
                for d in r.dane.rows))
    out += acceptance_html(r.accepted_by, _h)
    out.append("<h2>Remediation</h2>")
    if not r.remedies:
        out.append("<p>Nothing to fix.</p>")
    for m in r.remedies:
        out += [f'<div class="remedy"><h3><span class="{m.status.name}">{m.status.name}</span> '
                f"<code>{_h(m.code)}</code></h3>",
                f"<p>{_h(m.summary)}</p><p><strong>Fix:</strong> {_h(m.remedy)}</p><ul>"]
        out += [f"<li>{_h(w)}</li>" for w in m.where]
        out.append("</ul></div>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"

