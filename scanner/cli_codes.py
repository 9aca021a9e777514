"""``fedscan codes``: every finding code with its default severity and meaning, or one code
explained with its remedy. The codes are :data:`scanner.findings.CODES`; this only formats them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from scanner.cli_common import FormatOpt, OutputFormat, UserError, app, print_json, reader_may_leave


@app.command()
def codes(
    code: Annotated[
        str | None, typer.Argument(metavar="[CODE]", help="Explain this one code, with its remedy.")
    ] = None,
    output: FormatOpt = OutputFormat.table,
) -> None:
    """List every finding code with its default severity and meaning, or explain one."""
    import difflib
    import textwrap

    from scanner.cli_common import output_width
    from scanner.findings import CODES

    infos = list(CODES.values())
    if code is not None:
        if code not in CODES:
            close = difflib.get_close_matches(code, list(CODES), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else " (fedscan codes lists them)"
            raise UserError(f"no finding code {code!r}{hint}")
        infos = [CODES[code]]
    if output is OutputFormat.json:
        rows = [{"code": c.code, "severity": c.severity.value, "stage": c.stage, "summary": c.summary,
                 "remedy": c.remedy} for c in infos]
        print_json(rows[0] if code is not None else rows)
        return
    width = output_width()

    def wrapped(text: str, first: str, rest: str) -> list[str]:
        if width is None:
            return [first + text]
        return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest,
                             break_long_words=False, break_on_hyphens=False)

    with reader_may_leave():
        if code is not None:
            c = infos[0]
            lines = [f"{c.code}  ({c.severity.value}, {c.stage})", *wrapped(c.summary, "  ", "  "),
                     "", *wrapped(c.remedy, "  What to do: ", "    ")]
            print("\n".join(lines))
            return
        column = max(len(c.code) for c in infos)  # the longest code sets the column
        for c in infos:
            head = f"{c.code:{column}} {c.severity.value:9} "
            print("\n".join(wrapped(c.summary, head, " " * len(head))))
