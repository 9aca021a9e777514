"""Scan results as plain, frozen data, and their JSON form (the documented, versioned schema).

Theory of this module
---------------------
An endpoint's result keeps summaries, never the raw chain: a scan of ten thousand endpoints
must not hold ten thousand chains once each has been reported. A streaming scan (``jsonl``)
goes further: once a domain has been written out, :meth:`DomainResult.release_endpoints`
drops its endpoint results and keeps only how many ended in each status, which is all the
report's status, exit code and counts need. The JSON written here is the
public schema (``SCHEMA_VERSION``); fields are added, never renamed or removed, within a
version. Timestamps are UTC ISO 8601 with a ``Z``.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from scanner.acceptance_model import Acceptance
from scanner.certsummary import CertSummary
from scanner.dane import DaneReport
from scanner.findings import Finding, Severity, Status, status_of, worst
from scanner.isotime import iso as iso
from scanner.srv import Endpoint, SrvRecord
from scanner.verify import Coverage

SCHEMA_VERSION = 1




@dataclass(frozen=True)
class TlsInfo:
    """What the TLS handshake negotiated; the report model owns it so that readers of a report
    (history, readiness, metrics) never import the network layer."""

    version: str  # "TLSv1.3", "TLSv1.2", ...
    cipher: str
    alpn: str | None
    client_cert_requested: bool
    client_cert_sent: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "cipher": self.cipher,
            "alpn": self.alpn,
            "client_certificate_requested": self.client_cert_requested,
            "client_certificate_sent": self.client_cert_sent,
        }

    @classmethod
    def from_json(cls, data: object) -> TlsInfo:
        """``ValueError`` for anything that is not the ``tls`` object of the schema."""
        # ValueError, not TypeError, for every kind of damage: readers of a saved report catch one
        if not isinstance(data, Mapping):
            raise ValueError("not a tls object")  # noqa: TRY004
        version, cipher, alpn = data.get("version"), data.get("cipher"), data.get("alpn")
        # a report written by hand or by another tool may leave these out: absent means not seen
        requested = data.get("client_certificate_requested", False)
        sent = data.get("client_certificate_sent", False)
        if not (isinstance(version, str) and isinstance(cipher, str) and isinstance(alpn, str | None)
                and isinstance(requested, bool) and isinstance(sent, bool)):
            raise ValueError(f"not a tls object: {data!r:.80}")  # noqa: TRY004
        return cls(version, cipher, alpn, requested, sent)


def read_findings(items: object) -> list[Finding]:
    """The findings of a saved report's list, as well as they can be read: one that does not
    parse (a hand-edited file) stays, as UNKNOWN under its code: a damaged report must never
    read better than it is."""
    out = []
    for item in items if isinstance(items, list) else []:
        try:
            out.append(Finding.from_json(item))
        except ValueError:
            code = item.get("code") if isinstance(item, Mapping) else None
            out.append(Finding(str(code) if code is not None else "unreadable-finding", Severity.UNKNOWN,
                               "this finding could not be read from the report"))
    return out


@dataclass(frozen=True)
class EndpointResult:
    endpoint: Endpoint
    findings: tuple[Finding, ...]
    tls: TlsInfo | None
    certificate: CertSummary | None  # the leaf
    chain: tuple[CertSummary, ...]  # the served certificates after the leaf
    coverage: tuple[Coverage, ...]
    timings: dict[str, float]
    xmpp_features: tuple[str, ...] = ()
    dane: DaneReport | None = None  # None only for results built outside a scan
    acceptance: Acceptance | None = None  # the partner's verdict on our certificate (if presented)

    @property
    def status(self) -> Status:
        return status_of(self.findings)

    @property
    def leaf_sha256(self) -> str | None:
        return self.certificate.sha256 if self.certificate else None

    @property
    def not_after(self) -> dt.datetime | None:
        """The leaf's notAfter (UTC, to the second), None when no certificate was served."""
        return self.certificate.not_after if self.certificate else None

    def to_json(self) -> dict[str, Any]:
        e = self.endpoint
        return {
            "domain": e.domain,
            "service": e.service,
            "target": e.target,
            "port": e.port,
            "address": e.address,
            "priority": e.priority,
            "weight": e.weight,
            "xmpp_domain": e.xmpp_domain,
            "status": self.status.name,
            "tls": self.tls.to_json() if self.tls is not None else None,
            "xmpp_features": list(self.xmpp_features),
            "certificate": self.certificate.to_json() if self.certificate is not None else None,
            "chain": [c.to_json() for c in self.chain],
            "coverage": [c.to_json() for c in self.coverage],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "findings": [f.to_json() for f in self.findings],
            "dane": self.dane.to_json() if self.dane is not None else None,
            "acceptance": self.acceptance.to_json() if self.acceptance is not None else None,
        }


@dataclass
class ServiceResult:
    service: str
    srv_records: tuple[SrvRecord, ...]
    findings: tuple[Finding, ...]
    hosted: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "srv": [
                {"priority": r.priority, "weight": r.weight, "port": r.port, "target": r.target}
                for r in self.srv_records
            ],
            "hosted_microsoft_365": self.hosted,
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass
class DomainResult:
    domain: str
    services: list[ServiceResult] = field(default_factory=list)
    endpoints: list[EndpointResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # domain-wide (pool mismatch)
    released: dict[Status, int] = field(default_factory=dict)  # endpoints reported and dropped
    finished: bool = False  # every discovery and handshake of the domain is done
    interrupted: bool = False  # the scan stopped (Ctrl-C) before the domain was finished

    @property
    def all_findings(self) -> list[Finding]:
        out = list(self.findings)
        for s in self.services:
            out += s.findings
        return out

    @property
    def status(self) -> Status:
        """The worst of its findings and endpoints; UNKNOWN at least when it was not finished
        (an unfinished domain with no bad news yet is not OK: it was not checked)."""
        unfinished = [Status.UNKNOWN] if self.interrupted else []
        return worst([status_of(self.all_findings), *(e.status for e in self.endpoints), *self.released,
                      *unfinished])

    def endpoint_counts(self) -> dict[Status, int]:
        out = dict(self.released)
        for e in self.endpoints:
            out[e.status] = out.get(e.status, 0) + 1
        return out

    def release_endpoints(self) -> None:
        """Forget the endpoint results (already streamed out), keeping their status counts."""
        self.released = self.endpoint_counts()
        self.endpoints = []

    def to_json(self) -> dict[str, Any]:
        return {**self.to_json_head(), "endpoints": [e.to_json() for e in self.endpoints]}

    def to_json_head(self) -> dict[str, Any]:
        """The domain without its endpoints (a JSON lines ``domain`` line, written after each
        endpoint's own line): serialising them again only to drop them cost a census as much
        as its endpoint lines."""
        return {
            "domain": self.domain,
            "status": self.status.name,
            "interrupted": self.interrupted,
            "findings": [f.to_json() for f in self.findings],
            "services": [s.to_json() for s in self.services],
        }


@dataclass
class ScanReport:
    started: dt.datetime
    evaluated_at: dt.datetime
    domains: list[DomainResult]
    finished: dt.datetime | None = None
    interrupted: bool = False
    deployment: dict[str, Any] | None = None
    options: dict[str, Any] | None = None  # how the scan was run (services, deadlines, thresholds)

    @property
    def status(self) -> Status:
        statuses = [d.status for d in self.domains]
        if self.interrupted:
            statuses.append(Status.UNKNOWN)
        return worst(statuses)

    @property
    def endpoints(self) -> list[EndpointResult]:
        return [e for d in self.domains for e in d.endpoints]

    def counts(self) -> dict[str, int]:
        out = {s.name: 0 for s in Status}
        for d in self.domains:
            for status, count in d.endpoint_counts().items():
                out[status.name] += count
        return out

    def summary_line(self, extra: str = "") -> str:
        """The one summary line of every command (scan, monitor, report merge)."""
        dns = sum(1 for d in self.domains if status_of(d.all_findings) is not Status.OK)
        return summary_line(self.status, self.counts(), len(self.domains), self.interrupted, extra,
                            domain_problems=dns)

    def to_json_head(self) -> dict[str, Any]:
        """Everything but the domains: the envelope of the JSON report, the jsonl summary."""
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": "fedscan",
            "started_at": iso(self.started),
            "finished_at": iso(self.finished) if self.finished else None,
            "evaluated_at": iso(self.evaluated_at),
            "interrupted": self.interrupted,
            "status": self.status.name,
            "exit_code": int(self.status),
            "endpoint_counts": self.counts(),
            "deployment": self.deployment,
            "options": self.options,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.to_json_head(), "domains": [d.to_json() for d in self.domains]}

    def write_json(self, out: IO[str]) -> None:
        """Exactly ``json.dumps(self.to_json(), indent=2)``, written a domain at a time: a
        census of ten thousand endpoints must not build its whole JSON tree, then its whole
        text, in memory at once."""
        text = json.dumps({**self.to_json_head(), "domains": []}, indent=2, ensure_ascii=False)
        if not self.domains:
            out.write(text + "\n")
            return
        before, after = text.rsplit('"domains": []', 1)
        out.write(before + '"domains": [\n')
        for index, domain in enumerate(self.domains):
            block = json.dumps(domain.to_json(), indent=2, ensure_ascii=False)
            out.write(textwrap.indent(block, "    "))
            out.write(",\n" if index < len(self.domains) - 1 else "\n")
        out.write("  ]" + after + "\n")


def summary_line(status: Status, counts: dict[str, int], domains: int, interrupted: bool,
                 extra: str = "", *, domain_problems: int = 0) -> str:
    """``Overall: CRITICAL — 22 endpoints of 11 domains: 16 OK, 6 CRITICAL; 3 domains with
    DNS or pool findings``: one wording for every command, status words as everywhere else,
    counts only of the states that occur. ``domain_problems`` (domains whose own findings are
    not OK) explains a status that no endpoint count shows (a missing SRV record)."""
    total = sum(counts.values())
    of = f"{domains} domain{'' if domains == 1 else 's'}"
    if total:
        states = ", ".join(f"{counts[s.name]} {s.name}" for s in Status if counts.get(s.name))
        text = f"Overall: {status.name} — {total} endpoint{'' if total == 1 else 's'} of {of}: {states}"
    else:
        text = f"Overall: {status.name} — no endpoints in {of}: nothing was scanned"
    if domain_problems:
        text += f"; {domain_problems} domain{'' if domain_problems == 1 else 's'} with DNS or pool findings"
    if extra:
        text += f"; {extra}"
    if interrupted:
        text += " (interrupted: partial results)"
    return text
