"""Terminal rendering with rich: tables for people. Formatting only; no decisions here."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from scanner.certsummary import CertSummary
from scanner.findings import Finding, Severity, Status
from scanner.isotime import iso
from scanner.offline import FileCheck
from scanner.plan import CertificatePlan
from scanner.results import ScanReport
from scanner.safe_text import visible

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
    width = max([28, *(len(f.code) for f in findings)])  # one column, however long a code
    for f in sorted(findings, key=lambda f: -f.status.rank):
        line = Text(indent)
        line.append(f"{f.severity.value.upper():8}", style=SEVERITY_STYLE[f.severity])
        line.append(f" {f.code:{width}} ", style="bold")
        line.append(visible(f.message))
        out.append(line)
    return out


def render_file_checks(console: Console, checks: Sequence[FileCheck]) -> None:
    for check in checks:
        part = f"  {check.part}" if check.part else ""  # "certificate 1 of 2": one file, two leaves
        head = Text(visible(f"{check.path}{part}  ({check.kind})  "))
        head.append_text(status_text(check.status))
        console.print(head)
        s = check.summary

        def say(line: str) -> None:  # a Text, never markup: subjects are the peer's words
            console.print(Text(visible(line)))

        say(f"  subject   {s.subject if s else '?'}")
        if check.kind != "csr":
            cert = s if isinstance(s, CertSummary) else None
            say(f"  issuer    {cert.issuer if cert else '?'}")
            valid = f"{iso(cert.not_before)} .. {iso(cert.not_after)}" if cert else "? .. ?"
            say(f"  valid     {valid}  ({_left(cert.days_left if cert else None)})")
        say(f"  key       {s.key if s else '?'}, {s.signature if s else '?'}")
        eku = s.eku if s else None
        say(f"  EKU       {', '.join(eku) if eku is not None else '(none: any purpose)'}")
        say(f"  names     {', '.join(check.covered_names) or '(none)'}")
        if check.coverage:
            table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
            table.add_column("  required name")
            table.add_column("why")
            table.add_column("covered by")
            for cov in check.coverage:
                covered = (
                    Text(visible(f"{cov.covered_by} ({cov.how})"), style="green")
                    if cov.covered_by
                    else Text("MISSING", style="bold red")
                )
                table.add_row(Text(visible(f"  {cov.identity.name}")), Text(visible(cov.identity.reason)),
                              covered)
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


def render_scan(console: Console, report: ScanReport, *, problems_only: bool = False) -> None:
    """The scan table (:mod:`scanner.scan_table`), as wide as stdout allows."""
    from scanner.cli_common import output_width
    from scanner.scan_table import render_scan as table

    table(console, report, width=output_width(), problems_only=problems_only)


def _left(days: object) -> str:
    """days_left (rounded down) in words: a certificate past notAfter by a millisecond is
    "expired", not "-1 days left"."""
    if not isinstance(days, int):
        return "? days left"
    return "expired" if days < 0 else f"{days} day{'' if days == 1 else 's'} left"
