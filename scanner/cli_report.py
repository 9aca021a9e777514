"""``fedscan report merge``: one report from the ``jsonl`` outputs of shard runs.

Registered on the shared :data:`scanner.cli_common.app`; the merge itself is
:mod:`scanner.report_merge` (pure). Exit code: the merged report's worst status.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from scanner.cli_common import UserError, app, print_json, stdout_console

report_app = typer.Typer(help="Work with saved scan outputs (merge shards).", no_args_is_help=True)
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
    report = merger.report()
    if output is MergeFormat.json:
        print_json(report)
    else:
        _table(report)
    raise typer.Exit(report["exit_code"])


def _table(report: dict[str, Any]) -> None:
    """Per domain: status, endpoints and each finding code with its severity, worst first."""
    from rich.table import Table

    from scanner.findings import Status
    from scanner.results import summary_line

    shards = report["shards"]
    incomplete = f", {len(shards['incomplete'])} incomplete" if shards["incomplete"] else ""
    table = Table("domain", "status", "endpoints", "findings (severity code)",
                  title=f"Merged report: {len(report['domains'])} domains from {shards['files']} shard "
                        f"file{'' if shards['files'] == 1 else 's'}{incomplete}",
                  title_justify="left")
    rank = {"critical": 0, "unknown": 1, "warning": 2, "info": 3}
    for d in report["domains"]:
        found = [*d.get("findings", [])]
        for s in d.get("services", []):
            found += s.get("findings", [])
        for e in d["endpoints"]:
            found += e.get("findings", [])
        pairs = sorted({(f.get("severity", "unknown"), f["code"]) for f in found},
                       key=lambda p: (rank.get(p[0], 1), p[1]))
        status = d["status"] + (" (incomplete)" if d.get("incomplete") else "")
        table.add_row(d["domain"], status, str(len(d["endpoints"])),
                      ", ".join(f"{sev.upper()} {code}" for sev, code in pairs))
    console = stdout_console()
    console.print(table)
    extra = f"{len(shards['incomplete'])} shard(s) incomplete: {', '.join(shards['incomplete'])}" \
        if shards["incomplete"] else ""
    console.print(summary_line(Status[report["status"]], report["endpoint_counts"], len(report["domains"]),
                               report["interrupted"], extra))
