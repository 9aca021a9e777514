"""``fedscan report merge``: one report from the ``jsonl`` outputs of shard runs.

Registered on the shared :data:`scanner.cli_common.app`; the merge itself is
:mod:`scanner.report_merge` (pure). Exit code: the merged report's worst status.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from scanner.cli_common import UserError, app, print_json, reader_may_leave, stdout_console

report_app = typer.Typer(help="Work with saved scan outputs (merge shards, an HTML page).",
                         no_args_is_help=True)
app.add_typer(report_app, name="report")


class MergeFormat(StrEnum):
    json = "json"
    table = "table"


@report_app.command("merge")
def merge(
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE...",
            help="jsonl outputs of `fedscan scan --format jsonl` ('-': stdin).")
    ],
    output: Annotated[MergeFormat, typer.Option("--format", "-f",
        help="json (the scan report schema) or table.")] = MergeFormat.json,
) -> None:
    """Merge the jsonl outputs of `scan --shard K/N` runs into one report."""
    report = _merged(files)
    with reader_may_leave():
        if output is MergeFormat.json:
            print_json(report)
        else:
            _table(report)
    raise typer.Exit(report["exit_code"])


def _load(files: list[Path]) -> dict[str, Any]:
    """A scan or merged report: one JSON file (``scan --format json``, ``report merge``), or
    ``jsonl`` outputs of shards, merged here."""
    import json

    if len(files) == 1 and str(files[0]) != "-":
        try:
            text = files[0].read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{exc.filename}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise UserError(f"{files[0]}: not a UTF-8 text file") from None
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None  # jsonl, or not JSON at all: the merger says which
        if isinstance(doc, dict) and "type" not in doc:
            if doc.get("tool") != "fedscan" or not isinstance(doc.get("domains"), list):
                raise UserError(f"{files[0]}: not a fedscan report (expected the JSON of "
                                "`fedscan scan --format json` or `fedscan report merge`)")
            return doc
    return _merged(files)


def _merged(files: list[Path]) -> dict[str, Any]:
    """The shards' jsonl outputs merged into one report, or one line and exit 3."""
    import sys

    from scanner.report_merge import MergeError, Merger

    merger = Merger()
    try:
        for path in files:
            if str(path) == "-":
                merger.add("<stdin>", sys.stdin)
                continue
            with path.open(encoding="utf-8") as fh:
                merger.add(str(path), fh)
    except OSError as exc:
        raise UserError(f"{exc.filename}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError("an input is not a UTF-8 text file") from None
    except MergeError as exc:
        raise UserError(str(exc)) from None
    return merger.report()


@report_app.command("html")
def html_report(
    files: Annotated[
        list[Path],
        typer.Argument(help="A scan or merged report (JSON), or the jsonl outputs of shards ('-': stdin)."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="Write the page here ('-': stdout).")
    ],
) -> None:
    """Write one self-contained HTML page of a scan or census: status, counts, expiry chart,
    a sortable and filterable endpoint table, and every finding with its remedy."""
    import sys

    from scanner.report_html import render_report_html

    doc = _load(files)
    page = render_report_html(doc, source=", ".join(str(f) for f in files))
    if str(output) == "-":
        sys.stdout.write(page)
    else:
        tmp = output.with_name(f".{output.name}.tmp")
        try:
            tmp.write_text(page, encoding="utf-8")
            tmp.replace(output)
        except OSError as exc:
            raise UserError(f"{exc.filename or output}: cannot write: {exc.strerror or exc}") from None
        counts = doc.get("endpoint_counts") or {}
        print(f"wrote {output}: {doc.get('status')}, {sum(counts.values())} endpoints of "
              f"{len(doc.get('domains', []))} domains")
    raise typer.Exit(int(doc.get("exit_code", 3)))


def _table(report: dict[str, Any]) -> None:
    """Per domain: status, endpoints and each finding code with its severity, worst first."""
    from rich.table import Table
    from rich.text import Text

    from scanner.findings import Finding, Status, status_of
    from scanner.results import read_findings, summary_line
    from scanner.safe_text import visible

    shards = report["shards"]
    incomplete = f", {len(shards['incomplete'])} incomplete" if shards["incomplete"] else ""
    table = Table("domain", "status", "endpoints", "findings (severity code)",
                  title=f"Merged report: {len(report['domains'])} domains from {shards['files']} shard "
                        f"file{'' if shards['files'] == 1 else 's'}{incomplete}",
                  title_justify="left")
    def domain_wide(d: dict[str, Any]) -> list[Finding]:
        return [*read_findings(d.get("findings", [])),
                *(f for s in d.get("services", []) for f in read_findings(s.get("findings", [])))]

    for d in report["domains"]:
        found = domain_wide(d)
        for e in d["endpoints"]:
            found += read_findings(e.get("findings", []))
        # worst first (CRITICAL, UNKNOWN, WARNING, info), then by code
        pairs = sorted({(f.severity, f.status, f.code) for f in found}, key=lambda p: (-p[1].rank, p[2]))
        status = d["status"] + (" (incomplete)" if d.get("incomplete") else "")
        # Text, not str: a str cell is rich markup, and these come from files and peers
        table.add_row(Text(visible(str(d["domain"]))), Text(visible(status)), str(len(d["endpoints"])),
                      Text(visible(", ".join(f"{sev.upper()} {code}" for sev, _, code in pairs))))
    console = stdout_console()
    console.print(table)
    extra = f"{len(shards['incomplete'])} shard(s) incomplete: {', '.join(shards['incomplete'])}" \
        if shards["incomplete"] else ""
    dns = sum(1 for d in report["domains"] if status_of(domain_wide(d)) is not Status.OK)
    console.print(summary_line(Status[report["status"]], report["endpoint_counts"], len(report["domains"]),
                               report["interrupted"], extra, domain_problems=dns))
