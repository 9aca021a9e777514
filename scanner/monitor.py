"""Monitoring runs: scan the configured world, apply suppressions, compare with the last run.

Theory of this module
---------------------
* Two views in one run. Our own Edge is judged against every namespace its one certificate
  serves (the ``[deployment]``); a partner is judged as any peer judges it, on its own names.
  :class:`scanner.scan.Scan` applies one deployment to every domain it scans, so a run is
  several ``Scan`` objects — one for the deployment's domains, one per distinct service set of
  partners — run concurrently in one nursery and merged into one :class:`ScanReport` in
  config order (deployment domains first).
* Suppression is a *filter over results*, never a change to what is checked: a suppressed
  finding is taken out of a copy of the report (so every status, count, metric and exit code
  downstream is computed the same way as for ``scan``) and kept aside with its reason. A lapsed
  suppression hides nothing and adds ``suppression-expired`` to its domain.
* Everything here is pure and tested without sockets: the model of a run, suppressions, the
  human text and the JSON. Running the scans is :mod:`scanner.monitor_run`'s job, so output
  formats (:mod:`scanner.prometheus`, :mod:`scanner.nagios`) never depend on the runner.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from scanner.config_model import Config, Suppression
from scanner.findings import Finding, Status, finding
from scanner.history import Change
from scanner.isotime import iso
from scanner.results import DomainResult, EndpointResult, ScanReport
from scanner.safe_text import one_line
from scanner.verify import Policy


@dataclass(frozen=True)
class Suppressed:
    """A finding hidden by a suppression: where it was, and why the operator accepted it."""

    domain: str
    endpoint: EndpointResult | None
    finding: Finding
    suppression: Suppression

    def to_json(self) -> dict[str, Any]:
        e = self.endpoint.endpoint if self.endpoint else None
        return {
            "domain": self.domain,
            "service": e.service if e else None,
            "target": e.target if e else None,
            "address": e.address if e else None,
            "finding": self.finding.to_json(),
            "reason": self.suppression.reason,
            "until": self.suppression.until.isoformat() if self.suppression.until else None,
            "config": self.suppression.where,
        }


@dataclass
class MonitorResult:
    """One monitoring run: the filtered report plus what monitoring adds to it."""

    report: ScanReport  # suppressions applied: statuses and counts are the monitored ones
    suppressed: list[Suppressed] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    previous_at: str | None = None
    history_problem: str | None = None
    config_source: str | None = None
    duration: float = 0.0

    @property
    def status(self) -> Status:
        return self.report.status

    def to_json(self) -> dict[str, Any]:
        doc = self.report.to_json()
        doc["monitor"] = {
            "config": self.config_source,
            "duration_seconds": round(self.duration, 3),
            "previous_run": self.previous_at,
            "history_problem": self.history_problem,
            "changes": [c.to_json() for c in self.changes],
            "suppressed": [s.to_json() for s in self.suppressed],
        }
        return doc


# ------------------------------------------------------------------------ suppressions


def apply_suppressions(
    report: ScanReport, by_domain: Mapping[str, Sequence[Suppression]], on: dt.date
) -> tuple[ScanReport, list[Suppressed]]:
    """A copy of ``report`` without suppressed findings, and the findings taken out.

    A suppression matches its domain and code everywhere in that domain (endpoints, DNS,
    domain-wide). An expired one (``until`` before ``on``) matches nothing and adds a
    ``suppression-expired`` warning to the domain, until it is renewed or removed.
    """
    hidden: list[Suppressed] = []
    domains: list[DomainResult] = []
    for d in report.domains:
        rules = list(by_domain.get(d.domain, ()))
        active = {s.code: s for s in rules if not s.expired(on)}

        def keep(findings: Sequence[Finding], endpoint: EndpointResult | None,
                 domain: str = d.domain, active: Mapping[str, Suppression] = active) -> list[Finding]:
            out = []
            for f in findings:
                rule = active.get(f.code)
                if rule is None:
                    out.append(f)
                else:
                    hidden.append(Suppressed(domain, endpoint, f, rule))
            return out

        services = [replace(s, findings=tuple(keep(s.findings, None))) for s in d.services]
        endpoints = [replace(e, findings=tuple(keep(e.findings, e))) for e in d.endpoints]
        domain_findings = keep(d.findings, None)
        domain_findings += [_expired(d.domain, s) for s in rules if s.expired(on)]
        domains.append(replace(d, services=services, endpoints=endpoints, findings=domain_findings))
    return replace(report, domains=domains), hidden


def _expired(domain: str, s: Suppression) -> Finding:
    until = s.until.isoformat() if s.until else "?"
    return finding(
        "suppression-expired",
        f"the suppression of {s.code} for {domain} lapsed after {until} ({s.reason})",
        suppressed_code=s.code, domain=domain, until=until, reason=s.reason, config=s.where,
    )


# ------------------------------------------------------------------------ scanning


def policy_for(config: Config) -> Policy:
    t = config.thresholds
    return Policy(config.deployment.client_auth_required, t.warn_days, t.crit_days)


def merge_reports(
    reports: Sequence[ScanReport],
    *,
    now: dt.datetime,
    started: dt.datetime,
    interrupted: bool = False,
    deployment: dict[str, Any] | None = None,
) -> ScanReport:
    finished = [r.finished for r in reports if r.finished is not None]
    return ScanReport(
        started=min([started, *(r.started for r in reports)]),
        evaluated_at=now,
        domains=[d for r in reports for d in r.domains],
        finished=max(finished) if finished else dt.datetime.now(dt.UTC),
        interrupted=interrupted or any(r.interrupted for r in reports),
        deployment=deployment,
    )


def deployment_json(config: Config) -> dict[str, Any]:
    d = config.deployment.deployment
    return {
        "sip_domains": list(d.sip_domains),
        "xmpp_domains": list(d.xmpp_domains),
        "edge_fqdn": d.access_edge_fqdn,
        "webconf_fqdn": d.webconf_fqdn,
        "extra_sans": list(d.extra_sans),
        "client_auth": "required" if config.deployment.client_auth_required else "optional",
        "partners": [p.domain for p in config.partners],
    }


# ------------------------------------------------------------------------ human text


def render_text(result: MonitorResult, *, verbose: bool, width: int | None = None) -> str:
    """Cron's mail body: changes first, then what is wrong; empty when all is well.

    "All is well" means OK *and* nothing changed since the last run: a replaced certificate
    is worth one mail even when the new one is fine. ``verbose`` prints everything.
    """
    report = result.report
    if not verbose and result.status is Status.OK and not result.changes:
        return ""
    lines: list[str] = []
    if result.changes:
        lines.append(f"Changes since {result.previous_at}:")
        lines += [f"  {c.message}" for c in result.changes]
        lines.append("")
    problems = problem_lines(report, include_ok=verbose)
    if problems:
        lines.append("Findings:" if verbose else "Problems:")
        lines += [f"  {p}" for p in problems]
        lines.append("")
    if verbose:
        lines.append("Endpoints:")
        for e in report.endpoints:
            lines.append(f"  {e.status.name:8} {e.endpoint.domain} {endpoint_phrase(e)}"
                         + (f" notAfter {iso(e.not_after)}" if e.not_after else ""))
        lines.append("")
    if verbose and result.suppressed:
        lines.append("Suppressed:")
        for s in result.suppressed:
            where = endpoint_phrase(s.endpoint) if s.endpoint else "(domain)"
            until = f" until {s.suppression.until.isoformat()}" if s.suppression.until else ""
            lines.append(f"  {s.domain} {where}: {s.finding.code} — {s.suppression.reason}{until}")
        lines.append("")
    lines.append(report.summary_line(f"{len(result.suppressed)} suppressed" if result.suppressed else ""))
    lines = [one_line(line) for line in lines]  # peer text must not forge lines nor drive a terminal
    if width is None:
        return "\n".join(lines) + "\n"
    # wrapped at word boundaries, continuation lines indented under their first word
    out: list[str] = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip(" ")))
        out += textwrap.wrap(line, width, subsequent_indent=indent + "    ", break_long_words=False,
                             break_on_hyphens=False) or [""]
    return "\n".join(out) + "\n"


def endpoint_phrase(e: EndpointResult) -> str:
    ep = e.endpoint
    return f"{ep.service} {ep.target}:{ep.port} [{ep.address}]"


def problem_lines(report: ScanReport, *, include_ok: bool = False) -> list[str]:
    """``SEVERITY domain where: code: message`` for every finding worth reading, worst first,
    each one line of visible text whatever the peer put in it.

    A certificate finding shared by several endpoints (one Edge certificate behind six
    endpoints) is one line naming them all, where the first of them stands, not six lines.
    """
    rows: list[tuple[int, str] | tuple[str, str, str, str]] = []  # a line, or a shared one's key
    shared: dict[tuple[str, str, str, str], tuple[Finding, list[str]]] = {}
    for d in report.domains:
        rows += [_row(f, d.domain, "(domain)") for f in d.findings]
        rows += [_row(f, d.domain, f"{s.service} DNS") for s in d.services for f in s.findings]
        for e in d.endpoints:
            for f in e.findings:
                if not e.leaf_sha256:
                    rows.append(_row(f, d.domain, endpoint_phrase(e)))
                    continue
                key = (e.leaf_sha256, f.code, f.severity.value, f.message)
                if key not in shared:
                    shared[key] = (f, [])
                    rows.append(key)
                shared[key][1].append(f"{d.domain} {endpoint_phrase(e)}")
    lines: list[tuple[int, str]] = []
    for row in rows:
        if len(row) == 2:
            lines.append(row)
            continue
        f, places = shared[row]
        where = places[0]
        if len(places) > 1:
            where += f" and {len(places) - 1} more with the same certificate ({'; '.join(places[1:])})"
        lines.append((f.status.rank, f"{f.severity.value.upper():8} {where}: {f.code}: {f.message}"))
    ranked = [(rank, one_line(text)) for rank, text in lines if include_ok or rank > 0]
    return [text for _, text in sorted(ranked, key=lambda r: -r[0])]


def _row(f: Finding, domain: str, where: str) -> tuple[int, str]:
    # the finding's severity (INFO, not the "OK" of the status it maps to), as scan prints it
    return f.status.rank, f"{f.severity.value.upper():8} {domain} {where}: {f.code}: {f.message}"
