"""The `fedscan` command line: the app its command modules register on, and the entry point.

Each command lives in a module of its family and only parses options, calls the core, and
formats: ``scan`` (:mod:`scanner.cli_scan`); ``cert`` and ``plan``, the offline checks
(:mod:`scanner.cli_cert`); ``check-config``, ``monitor`` and ``readiness``
(:mod:`scanner.cli_monitor`); ``report`` (:mod:`scanner.cli_report`); ``lab`` and ``demo``
(:mod:`scanner.cli_lab`); ``codes`` (:mod:`scanner.cli_codes`). They are imported below in the
order ``fedscan --help`` lists them; the options they share are in :mod:`scanner.cli_common`.

Exit codes follow the monitoring-plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
Usage errors and unreadable input are UNKNOWN (3): "could not check", never "critical".
Every error is one line on stderr; a traceback is a bug.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, NoReturn

import typer

from scanner import __version__
from scanner.cli_common import EXIT_UNKNOWN, UserError, app

# The command modules register on `app` as they are imported: in the order `fedscan --help`
# lists their commands (a command group such as `report` is listed after the commands).
# isort: off
import scanner.cli_scan
import scanner.cli_cert
import scanner.cli_monitor
import scanner.cli_report
import scanner.cli_lab
import scanner.cli_codes  # noqa: F401
# isort: on


def version_callback(value: bool) -> None:
    if value:
        print(f"fedscan {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """fedscan: will federation partners accept your Edge's certificate?"""


# ------------------------------------------------------------------------ entry point


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code; never lets a traceback reach the user."""
    try:
        result = app(args=list(argv) if argv is not None else None, prog_name="fedscan",
                     standalone_mode=False)
    except UserError as exc:
        return _fail(str(exc))
    except (typer.Abort, KeyboardInterrupt):
        return _fail("interrupted")
    except Exception as exc:
        if _has(exc, BrokenPipeError):  # `fedscan scan ... | head`: the reader left
            from scanner.sinks import silence_stdout

            silence_stdout()
            return EXIT_UNKNOWN
        # Usage errors (typer's vendored click exceptions, not public API) in our words;
        # anything else is a bug and keeps its traceback.
        from scanner.cli_errors import usage_message

        message = usage_message(exc)
        if message is not None:
            return _fail(message)
        raise
    return int(result) if isinstance(result, int) else 0


def _has(exc: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return any(_has(e, kind) for e in exc.exceptions)
    return isinstance(exc, kind)


def _fail(message: str) -> int:
    sys.stderr.write(f"fedscan: error: {message.strip().splitlines()[0]}\n")
    return EXIT_UNKNOWN


def main() -> NoReturn:
    sys.exit(run())
