"""The readiness report's "DANE" section: what a DANE-validating peer would do, per endpoint.

Face: built from the scan's per-endpoint DANE verdicts (:class:`scanner.dane.DaneReport`) or,
for ``readiness --cert``, from the renewal findings of the file; rendered by
:mod:`scanner.readiness` as Markdown and HTML. When no validating resolver was declared the
section says so instead of staying silent: "not checked" must never read as "fine".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scanner.dane import DaneState
from scanner.findings import Finding, Status, status_of, worst
from scanner.results import EndpointResult

NOT_CHECKED = ("DANE not checked: no validating resolver declared ([scan] dnssec_resolver in "
               "the config). TLSA records, if published, were not compared with the certificate.")
_STATE_STATUS = {DaneState.MATCH: Status.OK, DaneState.NO_TLSA: Status.OK,
                 DaneState.INSECURE: Status.WARNING, DaneState.UNUSABLE: Status.WARNING,
                 DaneState.MISMATCH: Status.CRITICAL, DaneState.ERROR: Status.UNKNOWN,
                 DaneState.NO_CHAIN: Status.UNKNOWN}


@dataclass(frozen=True)
class DaneRow:
    where: str  # "contoso.test sip-federation sip.contoso.test:5061" or the file name
    tlsa: str  # the TLSA owner name
    status: Status
    verdict: str


@dataclass(frozen=True)
class DaneSection:
    rows: tuple[DaneRow, ...]
    note: str = ""  # why there are no rows (not checked), shown instead of the table


def from_endpoints(endpoints: Sequence[EndpointResult]) -> DaneSection:
    rows = []
    for e in endpoints:
        d = e.dane
        if d is None or d.state is DaneState.NOT_CHECKED or d.answer is None:
            continue
        ep = e.endpoint
        partial = [f for f in d.findings if f.code == "dane-partial"]
        verdict = d.summary + ("; some records are unusable (dane-partial)" if partial else "")
        status = worst([_STATE_STATUS[d.state], status_of(d.findings)])
        rows.append(DaneRow(f"{ep.domain} {ep.service} {ep.target}:{ep.port} ({ep.address})",
                            d.answer.name, status, verdict))
    if not rows:
        return DaneSection((), NOT_CHECKED if endpoints else "No endpoint was reached.")
    return DaneSection(tuple(rows))


def from_findings(label: str, findings: Iterable[Finding], checked: bool) -> DaneSection:
    """``readiness --cert``: the renewal verdict of each TLSA RRset published now."""
    if not checked:
        return DaneSection((), NOT_CHECKED)
    rows = tuple(DaneRow(label, str(f.details.get("name", "")), f.status, f.message)
                 for f in findings if _is_dane(f))
    return DaneSection(rows, "" if rows else "No TLSA published for the deployment's SRV targets.")


def _is_dane(f: Finding) -> bool:
    return f.code.startswith("dane-") or (f.code == "dns-error" and f.details.get("rdtype") == "TLSA")
