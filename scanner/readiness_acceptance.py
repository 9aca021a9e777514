"""The readiness report's "Accepted by" section: each partner's verdict on our certificate.

A go-live checklist for our Edge is not finished when our certificate is right by the rules:
it is finished when the partners we federate with accept it. With ``[acceptance]`` in the
config, ``fedscan readiness`` presents our certificate to those partners (as ``fedscan scan
--as-edge`` does) and lists, per partner endpoint, what it said. A refusal makes the report
NOT READY for that partner, with the finding that says why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scanner.findings import Status, worst
from scanner.results import ScanReport

if TYPE_CHECKING:
    from scanner.readiness import Readiness


@dataclass(frozen=True)
class AcceptedRow:
    partner: str
    service: str
    target: str
    address: str
    verdict: str  # "accepted" | "refused" | "unknown" | "not-reached"
    detail: str  # the table line of the scan
    findings: tuple[str, ...]
    status: Status


def accepted_rows(report: ScanReport) -> tuple[AcceptedRow, ...]:
    rows = []
    for e in report.endpoints:
        if e.acceptance is None:
            continue
        ep = e.endpoint
        rows.append(AcceptedRow(ep.domain, ep.service, f"{ep.target}:{ep.port}", ep.address,
                                e.acceptance.verdict, e.acceptance.line(),
                                tuple(f.code for f in e.acceptance.findings), e.status))
    return tuple(rows)


def with_acceptance(r: Readiness, report: ScanReport) -> Readiness:
    """``r`` with the "Accepted by" rows; a partner refusing us is a reason it is not ready."""
    from scanner.readiness import blocks_go_live, remedies, where  # as for our own findings

    rows = accepted_rows(report)
    refused = sorted({row.partner for row in rows if row.verdict in ("refused", "not-reached")})
    said = [(e.endpoint.domain, where(e), f)
            for e in report.endpoints if e.acceptance is not None for f in e.acceptance.findings]
    status = worst([r.status, *(row.status for row in rows if row.verdict != "accepted")])
    reasons = list(r.reasons)
    if refused:
        reasons.append(f"not accepted by {', '.join(refused)}")
    return dataclasses.replace(r, accepted_by=rows, status=status,
                               ready=not blocks_go_live(status), reasons=tuple(reasons),
                               remedies=(*r.remedies, *remedies(said, {})))


def markdown(rows: Sequence[AcceptedRow] | None, md: Callable[[object], str]) -> list[str]:
    if rows is None:
        return []
    lines = ["", "## Accepted by", "",
             "Our certificate, presented to each partner as our Edge presents it.", "",
             "| Partner | Service | Target | Address | Verdict | What it said | Findings |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {md(row.partner)} | {md(row.service)} | {md(row.target)} | {md(row.address)} | "
                     f"{row.verdict} | {md(row.detail)} | {md(', '.join(row.findings) or '-')} |")
    if not rows:
        lines.append("| - | - | - | - | - | no partner endpoint was reached | - |")
    return lines


def html(rows: Sequence[AcceptedRow] | None, h: Callable[[object], str]) -> list[str]:
    if rows is None:
        return []
    out = ["<h2>Accepted by</h2>",
           "<p>Our certificate, presented to each partner as our Edge presents it.</p>",
           "<table><thead><tr><th>Partner</th><th>Service</th><th>Target</th><th>Address</th>"
           "<th>Verdict</th><th>What it said</th><th>Findings</th></tr></thead><tbody>"]
    for row in rows:
        css = "OK" if row.verdict == "accepted" else row.status.name
        out.append(f"<tr><td>{h(row.partner)}</td><td>{h(row.service)}</td><td>{h(row.target)}</td>"
                   f'<td>{h(row.address)}</td><td class="{css}">{h(row.verdict)}</td>'
                   f"<td>{h(row.detail)}</td><td>{h(', '.join(row.findings) or '-')}</td></tr>")
    out.append("</tbody></table>")
    return out
