"""What every fedscan command shares: the app, option types, and one-line user errors.

Command modules (``scanner.cli`` and ``scanner.cli_*``) register on :data:`app`; keeping the
shared pieces here lets each command family live in its own small module.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

from scanner.findings import Status
from scanner.isotime import parse_iso

app = typer.Typer(
    name="fedscan",
    help="Check that SIP/XMPP federation endpoints present certificates federation accepts.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_UNKNOWN = int(Status.UNKNOWN)


class UserError(Exception):
    """Bad input from the user: printed as one line, exit 3."""


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


class ClientAuth(StrEnum):
    required = "required"
    optional = "optional"


# ------------------------------------------------------------------------ shared options

SipDomains = Annotated[
    list[str] | None,
    typer.Option("--sip-domain", metavar="DOMAIN",
        help="A SIP domain your Edge serves (sip.<domain> must be in the SAN)."),
]
XmppDomains = Annotated[
    list[str] | None,
    typer.Option("--xmpp-domain", metavar="DOMAIN",
        help="An XMPP domain your Edge serves (<domain> must be in the SAN)."),
]
ExtraSans = Annotated[
    list[str] | None,
    typer.Option("--extra-san", metavar="FQDN",
        help="Another FQDN the certificate must cover (web conferencing...)."),
]
EdgeFqdn = Annotated[
    str | None,
    typer.Option("--edge-fqdn", metavar="FQDN",
        help="Access Edge FQDN (subject); default sip.<first SIP domain>."),
]
WebconfFqdn = Annotated[str | None, typer.Option("--webconf-fqdn", metavar="FQDN",
    help="Web conferencing Edge FQDN.")]
CaFile = Annotated[
    Path | None,
    typer.Option("--ca-file", metavar="FILE", help="Trust these roots (PEM) instead of Mozilla's (certifi)."),
]
ClientAuthOpt = Annotated[
    ClientAuth,
    typer.Option("--client-auth", help="Is Client Authentication EKU required (default) or only advised?"),
]
WarnDays = Annotated[
    int, typer.Option("--warn-days", min=0, metavar="DAYS", help="Warn when the leaf expires within N days.")
]
CritDays = Annotated[int, typer.Option("--crit-days", min=0, metavar="DAYS", help="Critical within N days.")]
At = Annotated[
    str | None,
    typer.Option("--at", metavar="TIME",
        help="Judge dates as of this ISO 8601 time instead of now (reproducible reports)."),
]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="table (for people) or json.")]
PfxPassword = Annotated[
    str | None,
    typer.Option("--password", metavar="PASSWORD",
                 help="PFX password (or FEDSCAN_PFX_PASSWORD, or a prompt)."),
]


def parse_now(at: str | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    try:
        return parse_iso(at)
    except ValueError:
        raise UserError(f"--at: not an ISO 8601 time: {at!r}") from None


def make_policy(client_auth: ClientAuth, warn_days: int, crit_days: int) -> Any:
    from scanner.verify import Policy

    if crit_days > warn_days:
        raise UserError(f"--crit-days ({crit_days}) must not exceed --warn-days ({warn_days})")
    return Policy(client_auth is ClientAuth.required, warn_days, crit_days)


def domain_value(text: str, option: str | None) -> str:
    """A domain from the command line, normalised; ``ValueError`` naming the option and, for
    a URL or ``host:port``, what was probably meant."""
    from scanner.cli_errors import domain_problem
    from scanner.names import normalize_domain

    problem = domain_problem(text, option)
    if problem is not None:
        raise ValueError(problem)
    try:
        return normalize_domain(text)
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}" if option else str(exc)) from None


def nameservers(texts: list[str] | None) -> list[tuple[str, int]] | None:
    """``--nameserver HOST[:PORT]`` values (an IP address or a host name); None: the system's."""
    from scanner.cli_errors import resolve_nameserver
    from scanner.names import parse_nameserver

    return [parse_nameserver(resolve_nameserver(t)) for t in texts] if texts else None


def dnssec_resolver_value(text: str | None) -> tuple[str, int] | None:
    """``--dnssec-resolver``: an IP address (a validating resolver is trusted by address, never
    through a name some other resolver answered for)."""
    from scanner.names import parse_nameserver

    if text is None:
        return None
    try:
        return parse_nameserver(text)
    except ValueError as exc:
        raise ValueError(f"--dnssec-resolver: {exc}") from None


def make_deployment(
    sip: list[str] | None,
    xmpp: list[str] | None,
    extra: list[str] | None,
    edge: str | None = None,
    webconf: str | None = None,
) -> Any:
    from scanner.cli_errors import domain_problem
    from scanner.deployment import Deployment
    from scanner.names import InvalidName

    for option, values in (("--sip-domain", sip), ("--xmpp-domain", xmpp), ("--extra-san", extra),
                           ("--edge-fqdn", [edge] if edge else None),
                           ("--webconf-fqdn", [webconf] if webconf else None)):
        for value in values or ():
            problem = domain_problem(value, option)
            if problem is not None:
                raise UserError(problem)
    try:
        return Deployment.from_input(sip or (), xmpp or (), edge, webconf, extra or ())
    except InvalidName as exc:
        raise UserError(str(exc)) from None


def output_width() -> int | None:
    """How wide stdout's lines may be: the terminal's width; ``COLUMNS`` when stdout is a file
    or a pipe and it is set; else no limit (a file or cron mail must never lose text)."""
    if sys.stdout.isatty():
        return max(40, shutil.get_terminal_size().columns)
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return None
    return max(40, columns) if columns > 0 else None


def stdout_console() -> Console:
    from rich.console import Console  # only tables need it: ~12 ms off JSON and cron runs

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """rich exits 1 when the reader leaves (``| head``); we go on quietly, so the
            command exits with its status (:func:`reader_may_leave`)."""
            from scanner.sinks import silence_stdout

            self.quiet = True
            silence_stdout()

    width = output_width()
    # without a limit, rich still needs a width for its tables: one no line reaches
    return _Console(width=width or 100_000, highlight=False, soft_wrap=width is None)


@contextlib.contextmanager
def reader_may_leave() -> Iterator[None]:
    """Writing a report to a pipe whose reader may have left (``| head``): a closed pipe is
    not an error; the command exits with its status, silently. Flushes inside, so that the
    failure, if any, happens here and not in the interpreter's final flush."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        from scanner.sinks import silence_stdout

        silence_stdout()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def password_source(given: str | None) -> Callable[[], str | None]:
    """Password precedence: --password, FEDSCAN_PFX_PASSWORD, then a prompt on a terminal."""

    def source() -> str | None:
        if given is not None:
            return given
        env = os.environ.get("FEDSCAN_PFX_PASSWORD")
        if env is not None:
            return env
        if sys.stdin.isatty():
            return str(typer.prompt("PFX password", hide_input=True, err=True))
        return None

    return source


def load_trust(ca_file: Path | None) -> Any:
    """The trust store (``--ca-file`` or Mozilla's roots), or one line and exit 3.

    Loaded once per process (a scan or a cert check calls this lazily, when first needed).
    """
    from scanner.trust import TrustStoreError, trust_store

    try:
        return trust_store(ca_file)
    except TrustStoreError as exc:
        raise UserError(str(exc)) from None
