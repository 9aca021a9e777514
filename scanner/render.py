"""Terminal rendering with rich: tables for people. Formatting only; no decisions here."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from scanner.dane import DaneState
from scanner.findings import Finding, Severity, Status, worst_finding
from scanner.offline import FileCheck
from scanner.plan import CertificatePlan
from scanner.results import EndpointResult, ScanReport

STATUS_STYLE = {
    Status.OK: "bold green",
    Status.WARNING: "bold yellow",
    Status.CRITICAL: "bold red",
    Status.UNKNOWN: "bold magenta",
}
SEVERITY_STYLE = {
    Severity.INFO: "cyan",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "red",
    Severity.UNKNOWN: "magenta",
}


def status_text(status: Status) -> Text:
    return Text(status.name, style=STATUS_STYLE[status])


def findings_lines(findings: Sequence[Finding], indent: str = "  ") -> list[Text]:
    out = []
    for f in sorted(findings, key=lambda f: -f.status.rank):
        line = Text(indent)
        line.append(f"{f.severity.value.upper():8}", style=SEVERITY_STYLE[f.severity])
        line.append(f" {f.code:28} ", style="bold")
        line.append(f.message)
        out.append(line)
    return out


def render_file_checks(console: Console, checks: Sequence[FileCheck]) -> None:
    for check in checks:
        head = Text(f"{check.path}  ({check.kind})  ")
        head.append_text(status_text(check.status))
        console.print(head)
        s = check.summary
        if check.kind != "csr":
            console.print(f"  subject   {s.get('subject', '?')}")
            console.print(f"  issuer    {s.get('issuer', '?')}")
            console.print(
                f"  valid     {s.get('not_before', '?')} .. {s.get('not_after', '?')}"
                f"  ({s.get('days_left', '?')} days left)"
            )
        else:
            console.print(f"  subject   {s.get('subject', '?')}")
        console.print(f"  key       {s.get('key', '?')}, {s.get('signature', '?')}")
        eku = s.get("eku")
        console.print(f"  EKU       {', '.join(eku) if eku is not None else '(none: any purpose)'}")
        console.print(f"  names     {', '.join(check.covered_names) or '(none)'}")
        if check.coverage:
            table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
            table.add_column("  required name")
            table.add_column("why")
            table.add_column("covered by")
            for cov in check.coverage:
                covered = (
                    Text(f"{cov.covered_by} ({cov.how})", style="green")
                    if cov.covered_by
                    else Text("MISSING", style="bold red")
                )
                table.add_row(f"  {cov.identity.name}", cov.identity.reason, covered)
            console.print(table)
        if check.findings:
            for line in findings_lines(check.findings):
                console.print(line)
        else:
            console.print(Text("  no findings", style="green"))
        console.print()


def render_plan(console: Console, plan: CertificatePlan) -> None:
    table = Table(title="External Edge certificate", title_justify="left", header_style="bold")
    table.add_column("field")
    table.add_column("value")
    table.add_column("why")
    table.add_row("Subject (CN)", plan.subject, "Access Edge FQDN")
    for i, entry in enumerate(plan.sans):
        table.add_row("SAN" if i == 0 else "", entry.name, entry.reason)
    table.add_row("EKU", ", ".join(plan.eku), "federation is mutual TLS: peers check both")
    table.add_row("Key", plan.key, "Lync/SfB: RSA; private key exportable for pools")
    table.add_row("Signature", plan.signature, "Lync/SfB do not support RSASSA-PSS")
    table.add_row("CRL DP", "required", "Lync/SfB check revocation")
    console.print(table)


def dane_line(r: EndpointResult) -> Text | None:
    """The endpoint's DANE verdict in one line, when DANE was checked."""
    if r.dane is None or r.dane.state is DaneState.NOT_CHECKED:
        return None
    style = {DaneState.MATCH: "green", DaneState.MISMATCH: "bold red",
             DaneState.ERROR: "magenta"}.get(r.dane.state, "yellow")
    line = Text("    DANE     ", style="bold")
    line.append(r.dane.summary, style=None if r.dane.state is DaneState.NO_TLSA else style)
    return line


def dane_not_checked(report: ScanReport) -> str | None:
    """Why DANE was not checked in this scan, once for the whole report (or None)."""
    for r in report.endpoints:
        if r.dane is not None and r.dane.state is DaneState.NOT_CHECKED:
            return r.dane.summary
    return None


def render_scan(console: Console, report: ScanReport) -> None:
    """One row per endpoint with its findings beneath; discovery findings under the domain.

    A fixed-width layout rather than a rich Table: finding lines must span the full width
    beneath their row, which table cells cannot do.
    """
    header = ("DOMAIN", "SERVICE", "TARGET", "ADDRESS", "STATUS", "EXPIRES", "WORST FINDING")
    rows: list[tuple[tuple[str, ...], Status, list[Finding]]] = []
    dane_at: dict[int, Text | None] = {}  # row index -> the endpoint's DANE line
    for domain in report.domains:
        if not domain.endpoints:
            worst_f = worst_finding(domain.all_findings)
            cells: tuple[str, ...] = (domain.domain, "-", "-", "-", domain.status.name, "-",
                                      worst_f.code if worst_f else "no endpoints")
            rows.append((cells, domain.status, domain.all_findings))
            continue
        for index, r in enumerate(domain.endpoints):
            e = r.endpoint
            worst_f = worst_finding(r.findings)
            address = f"[{e.address}]:{e.port}" if ":" in e.address else f"{e.address}:{e.port}"
            cells = (domain.domain, e.service, e.target, address, r.status.name,
                     (r.not_after or "-")[:10], worst_f.code if worst_f else "-")
            dane_at[len(rows)] = dane_line(r)
            rows.append((cells, r.status, list(r.findings)))
            if index == len(domain.endpoints) - 1 and domain.all_findings:
                rows.append(((domain.domain, "(DNS and pool)"), domain.status, domain.all_findings))
    widths = [max([len(h), *(len(c[i]) for c, _, _ in rows if len(c) == len(header))])
              for i, h in enumerate(header)]
    console.print(Text("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), style="bold"))
    previous = None
    for row_index, (cells, status, beneath) in enumerate(rows):
        if previous is not None and previous != cells[0]:
            console.print()
        previous = cells[0]
        if len(cells) != len(header):  # a domain's own findings: no row of cells
            console.print(Text(f"  {cells[1]}", style="dim"))
            for fl in findings_lines(beneath, "    "):
                console.print(fl, overflow="fold")
            continue
        line = Text()
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            style = STATUS_STYLE[status] if i == 4 else None
            line.append(cell.ljust(width) + ("  " if i < len(cells) - 1 else ""), style=style)
        console.print(line, overflow="ignore", crop=False)
        for fl in findings_lines(beneath, "    "):
            console.print(fl, overflow="fold")
        if (dane := dane_at.get(row_index)) is not None:
            console.print(dane, overflow="fold")
    console.print()
    if not_checked := dane_not_checked(report):
        console.print(Text(f"DANE: {not_checked}", style="dim"))
    summary = Text("Overall: ")
    summary.append_text(status_text(report.status))
    counts = {name: n for name, n in report.counts().items() if n}
    total = sum(counts.values())
    summary.append(f"  {total} endpoint{'' if total == 1 else 's'}")
    if counts:
        summary.append(": " + ", ".join(f"{n} {name.lower()}" for name, n in counts.items()))
    if report.interrupted:
        summary.append("  (interrupted: partial results)", style="bold magenta")
    console.print(summary)
