"""The cron and go-live commands: ``check-config``, ``monitor`` and ``readiness``.

Each command only loads the config, applies command-line overrides, calls the core
(:mod:`scanner.monitor`, :mod:`scanner.readiness`) and writes the chosen formats. Config
problems are :class:`UserError` (one line, exit 3) — except under ``--format nagios``, where
the monitoring system only shows stdout, so the same line becomes ``FEDSCAN UNKNOWN - ...``.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scanner.cli_common import (
    EXIT_UNKNOWN,
    At,
    CaFile,
    UserError,
    app,
    load_trust,
    parse_now,
    password_source,
    print_json,
)
from scanner.isotime import iso

if TYPE_CHECKING:  # the config module pulls in DNS and trio: import it when a command runs
    from scanner.config_model import Config
    from scanner.monitor import MonitorResult
    from scanner.readiness import Readiness
    from scanner.results import ScanReport

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", metavar="FILE",
        help="The fedscan TOML config (see examples/fedscan.toml).")
]
Nameservers = Annotated[
    list[str] | None,
    typer.Option("--nameserver", metavar="HOST[:PORT]",
        help="Ask this DNS server (HOST[:PORT]) instead of [scan] nameservers."),
]


class MonitorFormat(StrEnum):
    table = "table"  # the same word as every other command's human output
    nagios = "nagios"
    json = "json"
    text = "text"  # the old name of table, still accepted (not shown in --help)


def _load(path: Path) -> Config:
    from scanner.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _scan_inputs(
    config: Config, nameserver: list[str] | None, ca_file: Path | None, now: dt.datetime
) -> tuple[list[tuple[str, int]] | None, Any]:
    """Name servers and the command's Verifier (its trust store: the command line wins over
    the config file)."""
    from scanner.cli_common import nameservers
    from scanner.monitor import policy_for
    from scanner.verify import Verifier

    texts = nameserver or list(config.scan.nameservers)
    try:
        servers = nameservers(texts)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return servers, Verifier(load_trust(ca_file or config.scan.ca_file), now, policy_for(config))


@app.command("check-config")
def check_config(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The config file to validate.")],
    at: At = None,
) -> None:
    """Validate a config file without scanning; one summary line when it is valid."""
    import dataclasses

    # the line names the file that was checked by its full path (cron runs elsewhere)
    config = dataclasses.replace(_load(file), source=str(file.absolute()))
    if config.scan.ca_file is not None:
        load_trust(config.scan.ca_file)  # the run that needs it is at 3 a.m.: fail now instead
    print(config.summary(parse_now(at).astimezone(dt.UTC).date()))


@app.command()
def monitor(
    config_file: ConfigOpt,
    output: Annotated[
        MonitorFormat,
        typer.Option("--format", "-f", metavar="[table|nagios|json]",
                     help="table (for people and cron mail), nagios (a plugin's status line) or json."),
    ] = MonitorFormat.table,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print everything, also when all is well.")
    ] = False,
    prometheus_textfile: Annotated[
        Path | None,
        typer.Option("--prometheus-textfile", metavar="FILE",
            help="Write metrics for node_exporter's textfile collector."),
    ] = None,
    history: Annotated[
        Path | None,
        typer.Option("--history", metavar="FILE",
            help="Append this run to FILE (JSON lines) and report changes."),
    ] = None,
    nameserver: Nameservers = None,
    ca_file: CaFile = None,
    at: At = None,
) -> None:
    """Scan the deployment and every partner for cron; exit code = worst status (0-3)."""
    try:
        code = _monitor(config_file, output, verbose, prometheus_textfile, history, nameserver, ca_file, at)
    except UserError as exc:
        if output is not MonitorFormat.nagios:
            raise
        print(f"FEDSCAN UNKNOWN - {str(exc).replace('|', '/')}")
        code = EXIT_UNKNOWN
    raise typer.Exit(code)


def _monitor(
    config_file: Path,
    output: MonitorFormat,
    verbose: bool,
    prometheus_textfile: Path | None,
    history: Path | None,
    nameserver: list[str] | None,
    ca_file: Path | None,
    at: str | None,
) -> int:
    from scanner import nagios, prometheus
    from scanner.cli_acceptance import our_certificate
    from scanner.monitor import MonitorResult, apply_suppressions, render_text
    from scanner.monitor_run import scan_config

    config = _load(config_file)
    now = parse_now(at)
    servers, verifier = _scan_inputs(config, nameserver, ca_file, now)
    ours = our_certificate(config)
    t0 = time.monotonic()
    raw = scan_config(config, nameservers=servers, verifier=verifier, ours=ours)
    duration = time.monotonic() - t0
    report, suppressed = apply_suppressions(raw, config.suppressions(), now.astimezone(dt.UTC).date())
    result = MonitorResult(report, suppressed, config_source=str(config_file), duration=duration)
    if history is not None:
        result.history_problem = _record_history(history, report, result)
        # Nagios shows stdout only, and some setups merge stderr into it: there the long text
        # carries the problem.
        if result.history_problem and output is not MonitorFormat.nagios:
            sys.stderr.write(f"fedscan: warning: {result.history_problem}\n")
    if prometheus_textfile is not None:
        try:
            prometheus.write_textfile(prometheus_textfile, prometheus.render(result))
        except OSError as exc:
            raise UserError(f"{prometheus_textfile}: cannot write: {exc.strerror or exc}") from None
    if output is MonitorFormat.json:
        print_json(result.to_json())
    elif output is MonitorFormat.nagios:
        t = config.thresholds
        sys.stdout.write(nagios.render(result, warn_days=t.warn_days, crit_days=t.crit_days))
    else:
        from scanner.cli_common import output_width

        sys.stdout.write(render_text(result, verbose=verbose, width=output_width()))
    return int(result.status)


def _record_history(path: Path, report: ScanReport, result: MonitorResult) -> str | None:
    """Compare with the last recorded run and append this one, as one step under the file's
    lock; returns the one-line problem to warn about (the run goes on), if any."""
    from scanner import history as hist

    current = hist.snapshot(report)
    try:
        with hist.locked(path) as unlocked:
            previous = hist.read_last(path)
            if hist.newer_recorded(previous.snapshot, current):
                assert previous.snapshot is not None
                return (f"history {path}: a run that started later ({previous.snapshot.started}) "
                        "is already recorded; this run is not compared with it nor recorded")
            result.changes = hist.diff(previous.snapshot, current)
            result.previous_at = previous.snapshot.at if previous.snapshot else None
            hist.append(path, current)
            return "; ".join(p for p in (previous.problem, unlocked) if p) or None
    except hist.HistoryLocked as exc:
        return f"{exc}; this run is not compared nor recorded"
    except OSError as exc:  # the file cannot be created, opened for the lock or appended to
        raise UserError(f"history {path}: cannot write: {exc.strerror or exc}") from None


@app.command()
def readiness(
    config_file: ConfigOpt,
    html_out: Annotated[
        Path | None, typer.Option("--html", metavar="FILE", help="Write the report as one HTML file.")
    ] = None,
    markdown_out: Annotated[
        Path | None, typer.Option("--markdown", metavar="FILE",
            help="Write the report as Markdown (for tickets).")
    ] = None,
    cert: Annotated[
        Path | None,
        typer.Option("--cert", metavar="FILE",
            help="Judge this certificate/CSR/PFX file instead of scanning."),
    ] = None,
    password: Annotated[str | None, typer.Option("--password", metavar="PASSWORD",
        help="PFX password for --cert.")] = None,
    nameserver: Nameservers = None,
    ca_file: CaFile = None,
    at: At = None,
) -> None:
    """The pre-go-live report for our own Edge; Markdown on stdout unless --html/--markdown."""
    config = _load(config_file)
    _require_edge_names(config)
    now = parse_now(at)
    if cert is not None:
        report = _readiness_of_file(config, cert, password, ca_file, now)
    else:
        report = _readiness_of_scan(config, nameserver, ca_file, now)
    _write_readiness(report, html_out, markdown_out)
    raise typer.Exit(int(report.status))


def _require_edge_names(config: Config) -> None:
    """Readiness judges the Edge against its certificate plan (:mod:`scanner.plan`): a
    [deployment] naming neither SIP domains nor an Edge FQDN gives no plan, and one line saying
    so beats a report that judges nothing."""
    from scanner.plan import PlanError, certificate_plan

    try:
        certificate_plan(config.deployment.deployment)
    except PlanError:
        raise UserError(f"{config.source}: [deployment] needs sip_domains or edge_fqdn for a readiness report"
                        ) from None


def _readiness_of_file(
    config: Config, cert: Path, password: str | None, ca_file: Path | None, now: dt.datetime
) -> Readiness:
    """The renewal case: the new certificate judged before it is installed, and (with a
    validating resolver) whether the TLSA records published now will still match it."""
    from scanner import readiness as ready

    check = _check_cert(config, cert, password, ca_file, now)
    if config.scan.dnssec_resolver:
        from scanner.live import lookup_published_tlsa
        from scanner.names import parse_nameserver
        from scanner.offline import with_dane
        from scanner.srv import DEFAULT_SERVICES

        answers = lookup_published_tlsa(parse_nameserver(config.scan.dnssec_resolver),
                                        config.deployment.domains, DEFAULT_SERVICES)
        check = with_dane(check, answers)
    return ready.from_file(check, config.deployment.deployment, iso(now),
                           client_auth_required=config.deployment.client_auth_required,
                           dane_checked=bool(config.scan.dnssec_resolver))


def _readiness_of_scan(
    config: Config, nameserver: list[str] | None, ca_file: Path | None, now: dt.datetime
) -> Readiness:
    """The go-live case: our own endpoints scanned (suppressions applied, as in monitor), the
    DNS names the report lists resolved, and, when the config names our certificate, the
    partners' verdict on it ("Accepted by")."""
    from scanner import readiness as ready
    from scanner.cli_acceptance import our_certificate
    from scanner.live import resolve_addresses
    from scanner.monitor import apply_suppressions
    from scanner.monitor_run import scan_config
    from scanner.readiness_dns import address_hosts

    dep = config.deployment.deployment
    servers, verifier = _scan_inputs(config, nameserver, ca_file, now)
    raw = scan_config(config, nameservers=servers, verifier=verifier, deployment_only=True)
    filtered, _ = apply_suppressions(raw, config.suppressions(), now.astimezone(dt.UTC).date())
    # the DNS table reports on these names: ask DNS about them, not the scan's endpoints
    addresses = resolve_addresses(address_hosts(filtered, dep), servers, min(config.scan.timeout, 5.0))
    report = ready.from_scan(filtered, dep, client_auth_required=config.deployment.client_auth_required,
                             addresses=addresses)
    ours = our_certificate(config)
    if ours is None:
        return report
    from scanner.readiness_acceptance import with_acceptance

    # "Accepted by": our certificate presented to the listed partners
    probed = scan_config(config, nameservers=servers, verifier=verifier, ours=ours, acceptance_only=True)
    return with_acceptance(report, probed)


def _write_readiness(report: Readiness, html_out: Path | None, markdown_out: Path | None) -> None:
    """Files when asked for (then only the verdict and what was written on stdout, for a
    ticket or a terminal), otherwise the Markdown on stdout."""
    from scanner.readiness_html import render_html
    from scanner.readiness_markdown import render_markdown

    written = []
    for path, text in ((html_out, render_html), (markdown_out, render_markdown)):
        if path is not None:
            try:
                path.write_text(text(report), encoding="utf-8")
            except OSError as exc:
                raise UserError(f"{path}: cannot write: {exc.strerror or exc}") from None
            written.append(str(path))
    if written:
        print(report.verdict)
        print(f"wrote {', '.join(written)}")
    else:
        sys.stdout.write(render_markdown(report))


def _check_cert(
    config: Config, cert: Path, password: str | None, ca_file: Path | None, now: dt.datetime
) -> Any:
    from scanner.loaders import LoadError
    from scanner.monitor import policy_for
    from scanner.offline import check_file
    from scanner.verify import Verifier

    verifier = Verifier(lambda: load_trust(ca_file or config.scan.ca_file), now, policy_for(config))
    try:
        checks = check_file(cert, config.deployment.deployment.identities(), verifier,
                            password_source(password))
    except LoadError as exc:
        raise UserError(str(exc)) from None
    if len(checks) > 1:
        raise UserError(f"{cert}: holds {len(checks)} end-entity certificates; give readiness one "
                        "(fedscan cert checks each)")
    return checks[0]


