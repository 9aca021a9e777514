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
        list[Path], typer.Argument(help="jsonl outputs of `fedscan scan --format jsonl` ('-': stdin).")
    ],
    output: Annotated[MergeFormat, typer.Option("--format", "-f", help="Output format.")] = MergeFormat.json,
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
    from rich.table import Table

    table = Table("domain", "status", "endpoints", "findings", title="fedscan: merged shards")
    for d in report["domains"]:
        codes = [f["code"] for f in d.get("findings", [])]
        for s in d.get("services", []):
            codes += [f["code"] for f in s.get("findings", [])]
        for e in d["endpoints"]:
            codes += [f["code"] for f in e.get("findings", [])]
        table.add_row(d["domain"], d["status"], str(len(d["endpoints"])), ", ".join(sorted(set(codes))))
    console = stdout_console()
    console.print(table)
    counts = ", ".join(f"{k} {v}" for k, v in report["endpoint_counts"].items())
    note = " (INTERRUPTED: a shard is incomplete)" if report["interrupted"] else ""
    console.print(f"Overall: {report['status']}{note} — {len(report['domains'])} domains from "
                  f"{report['shards']['files']} files; endpoints: {counts}")
