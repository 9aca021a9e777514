"""The `fedscan` command line. Each command parses options, calls the core, and formats.

Exit codes follow the monitoring-plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
Usage errors and unreadable input are UNKNOWN (3): "could not check", never "critical".
Every error is one line on stderr; a traceback is a bug.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from scanner import __version__
from scanner.cli_common import (
    EXIT_UNKNOWN,
    At,
    CaFile,
    ClientAuth,
    ClientAuthOpt,
    CritDays,
    EdgeFqdn,
    ExtraSans,
    FormatOpt,
    OutputFormat,
    SipDomains,
    UserError,
    WarnDays,
    WebconfFqdn,
    XmppDomains,
    app,
    domain_value,
    load_trust,
    make_deployment,
    make_policy,
    nameservers,
    parse_now,
    password_source,
    print_json,
    reader_may_leave,
    stdout_console,
)
from scanner.findings import worst

if TYPE_CHECKING:
    from scanner.offline import FileCheck
    from scanner.plan import TlsaEntry
from scanner.isotime import iso

# ------------------------------------------------------------------------ commands


class ScanFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


@app.command()
def scan(
    domains: Annotated[
        list[str] | None, typer.Argument(metavar="[DOMAIN]...",
            help="Domains to scan (partners, or your own).", show_default=False)
    ] = None,
    domains_file: Annotated[
        str | None,
        typer.Option("--domains-file", metavar="FILE",
            help="Read domains from FILE, one per line ('-': stdin)."),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option("--shard", metavar="K/N", help="Scan only shard K of N (0-based, K/N): a stable split."),
    ] = None,
    sip_domain: SipDomains = None,
    xmpp_domain: XmppDomains = None,
    extra_san: ExtraSans = None,
    edge_fqdn: EdgeFqdn = None,
    webconf_fqdn: WebconfFqdn = None,
    service: Annotated[
        list[str] | None,
        typer.Option(
            "--service",
            metavar="SERVICE",
            help="sip-federation, xmpp-server, xmpps-server (the defaults) or sip-access; repeatable.",
        ),
    ] = None,
    nameserver: Annotated[
        list[str] | None,
        typer.Option("--nameserver", metavar="HOST[:PORT]",
            help="Ask this DNS server (HOST[:PORT]); default: the system's."),
    ] = None,
    dnssec_resolver: Annotated[
        str | None,
        typer.Option("--dnssec-resolver", metavar="IP[:PORT]",
                     help="Check DANE (TLSA) through this validating resolver; its AD bit is "
                     "trusted. Without it DANE is not checked."),
    ] = None,
    ca_file: CaFile = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, metavar="SECONDS",
            help="Total seconds per endpoint (connect to handshake).")
    ] = 10.0,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, metavar="N",
        help="Endpoints at work at once (TLS, parsing); a peer we wait for does not count.")] = 64,
    connections: Annotated[int, typer.Option("--connections", min=1, metavar="N",
        help="Open connections at once, waiting ones included (capped by the open-file limit).")] = 4096,
    per_address: Annotated[int, typer.Option("--per-address", min=0, metavar="N",
        help="Open connections to one IP address at once (0: no cap).")] = 4,
    as_edge: Annotated[
        Path | None,
        typer.Option("--as-edge", metavar="FILE", help="Present our Edge's certificate (PFX, or PEM "
                     "with key and chain) and report each partner's verdict on it."),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option("--password", metavar="PASSWORD",
                     help="PFX password (or FEDSCAN_PFX_PASSWORD, or a prompt)."),
    ] = None,
    client_cert: Annotated[
        Path | None, typer.Option("--client-cert", metavar="FILE",
            help="Present this client certificate (PEM chain, or a PFX).")
    ] = None,
    client_key: Annotated[Path | None, typer.Option("--client-key", metavar="FILE",
        help="Its private key (PEM).")] = None,
    from_domain: Annotated[
        str | None, typer.Option("--from-domain", metavar="DOMAIN",
            help="Our domain: XMPP stream 'from' and SIP From.")
    ] = None,
    endpoint: Annotated[
        list[str] | None,
        typer.Option("--endpoint", metavar="SERVICE=HOST:PORT",
                     help="Scan this endpoint without DNS SRV (repeatable)."),
    ] = None,
    sni: Annotated[
        str | None,
        typer.Option("--sni", metavar="NAME",
                     help="The name to ask --endpoint for (needed when HOST is an address)."),
    ] = None,
    client_auth: ClientAuthOpt = ClientAuth.required,
    warn_days: WarnDays = 30,
    crit_days: CritDays = 14,
    at: At = None,
    problems_only: Annotated[
        bool,
        typer.Option("--problems-only", "-q",
                     help="Table: only endpoints and findings above info, and the summary line."),
    ] = False,
    output: Annotated[
        ScanFormat,
        typer.Option("--format", "-f", help="table (for people), json, or jsonl (a line per endpoint as it "
                     "finishes)."),
    ] = ScanFormat.table,
) -> None:
    """Discover every federation endpoint of DOMAIN(s), handshake with each, verify, report."""
    from scanner.cli_acceptance import direct_endpoints, judged_deployment, presented
    from scanner.scan import ScanOptions
    from scanner.shard import Shard
    from scanner.srv import DEFAULT_SERVICES, parse_services

    directs = direct_endpoints(endpoint, sni)
    try:
        names = _all_domains(domains, domains_file, bool(directs))
        if shard is not None:
            names = Shard.parse(shard).select(names)
        servers = nameservers(nameserver)
        dnssec = dnssec_resolver_value(dnssec_resolver)
        if from_domain is not None:
            from_domain = domain_value(from_domain, "--from-domain")
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        services = parse_services(service or DEFAULT_SERVICES, "--service")
    except ValueError as exc:
        raise UserError(str(exc)) from None
    overlap = [d.name for d in directs if d.name in names]
    if overlap:
        raise UserError(f"{overlap[0]} is both a DOMAIN and an --endpoint name: give it once")
    services = tuple(dict.fromkeys([*services, *(d.service for d in directs)]))
    deployment = make_deployment(sip_domain, xmpp_domain, extra_san, edge_fqdn, webconf_fqdn)
    ours = presented(as_edge, client_cert, client_key, password_source(password),
                     sip_from=next(iter(deployment.sip_domains), from_domain),
                     xmpp_from=next(iter(deployment.xmpp_domains), from_domain))
    trust = load_trust(ca_file)
    options = ScanOptions(
        services=services,
        deployment=judged_deployment(deployment, [*names, *(d.name for d in directs)],
                                     as_edge is not None),
        policy=make_policy(client_auth, warn_days, crit_days),
        timeout=timeout,
        concurrency=concurrency,
        connections=connections,
        per_address=per_address,
        credentials=ours.credentials,
        from_domain=from_domain,
        dnssec_resolver=dnssec,
        presenting=ours.presenting,
        endpoints=directs,
    )
    from scanner.sinks import scan_for_output

    report = scan_for_output(names, options, servers, trust, parse_now(at) if at else None, output.value)
    with reader_may_leave():
        if output is ScanFormat.json:
            report.write_json(sys.stdout)
        elif output is ScanFormat.table:
            from scanner.render import render_scan

            render_scan(stdout_console(), report, problems_only=problems_only)
    raise typer.Exit(int(report.status))


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


def _all_domains(given: list[str] | None, domains_file: str | None, endpoints: bool = False) -> list[str]:
    """The domains to scan, normalised; a bad one in a file is named by ``file:line``."""
    import inspect

    from scanner.cli_errors import ENDPOINT_HINT
    from scanner.shard import numbered_domains

    if "endpoint" in inspect.signature(scan).parameters and not ENDPOINT_HINT:
        ENDPOINT_HINT.append("--endpoint HOST:PORT scans one address")
    names = [domain_value(d, None) for d in given or []]
    if domains_file is not None:
        label = "<stdin>" if domains_file == "-" else domains_file
        try:
            if domains_file == "-":
                listed = list(numbered_domains(sys.stdin))
            else:
                if Path(domains_file).is_dir():
                    raise UserError(f"{domains_file}: is a directory, not a list of domains")
                with Path(domains_file).open(encoding="utf-8") as fh:
                    listed = list(numbered_domains(fh))
        except OSError as exc:
            raise UserError(f"{domains_file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise UserError(f"{domains_file}: not a UTF-8 text file") from None
        if not listed:
            raise UserError(f"{label}: no domains in it (empty, or only blank lines and # comments)")
        for number, text in listed:
            try:
                names.append(domain_value(text, None))
            except ValueError as exc:
                raise UserError(f"{label}:{number}: {exc}") from None
    if not names and not endpoints:
        raise UserError("no domains to scan: give DOMAIN arguments, --domains-file FILE or --endpoint")
    return names


@app.command()
def cert(
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE...",
            help="Certificate (PEM/DER), chain, PFX/PKCS#12 or CSR files.")
    ],
    sip_domain: SipDomains = None,
    xmpp_domain: XmppDomains = None,
    extra_san: ExtraSans = None,
    edge_fqdn: EdgeFqdn = None,
    webconf_fqdn: WebconfFqdn = None,
    ca_file: CaFile = None,
    password: Annotated[
        str | None,
        typer.Option("--password", metavar="PASSWORD",
            help="PFX password (or FEDSCAN_PFX_PASSWORD, or a prompt)."),
    ] = None,
    client_auth: ClientAuthOpt = ClientAuth.required,
    warn_days: WarnDays = 30,
    crit_days: CritDays = 14,
    dane: Annotated[
        list[str] | None,
        typer.Option("--dane", metavar="DOMAIN",
                     help="Renewal check: will the TLSA records DOMAIN publishes now match this "
                     "certificate (or CSR key)? Needs --dnssec-resolver. Repeatable."),
    ] = None,
    dnssec_resolver: Annotated[
        str | None,
        typer.Option("--dnssec-resolver", metavar="IP[:PORT]",
                     help="The validating resolver --dane asks (its AD bit is trusted)."),
    ] = None,
    at: At = None,
    output: FormatOpt = OutputFormat.table,
) -> None:
    """Check certificate, chain, PFX or CSR files before they are installed."""
    from scanner.loaders import LoadError
    from scanner.offline import check_file
    from scanner.verify import Verifier

    dep = make_deployment(sip_domain, xmpp_domain, extra_san, edge_fqdn, webconf_fqdn)
    policy = make_policy(client_auth, warn_days, crit_days)
    now = parse_now(at)
    # one Verifier for every file; it reads the CA bundle only when a file holds certificates
    verifier = Verifier(lambda: load_trust(ca_file), now, policy)

    checks = []
    for path in files:
        try:
            checks += check_file(path, dep.identities(), verifier, password_source(password))
        except LoadError as exc:
            raise UserError(str(exc)) from None
    if dane:
        checks = _dane_renewal(checks, dane, dnssec_resolver)
    if output is OutputFormat.json:
        print_json(
            {
                "schema_version": 1,
                "generated_at": iso(now),
                "status": worst(c.status for c in checks).name,
                "files": [c.to_json() for c in checks],
            }
        )
    else:
        from scanner.render import render_file_checks

        render_file_checks(stdout_console(), checks)
    raise typer.Exit(int(worst(c.status for c in checks)))


def _dane_renewal(
    checks: list[FileCheck], domains: list[str], resolver_text: str | None
) -> list[FileCheck]:
    """Each file judged against the TLSA its domains publish now (asked of the validator)."""
    from scanner.live import lookup_published_tlsa
    from scanner.offline import with_dane
    from scanner.srv import DEFAULT_SERVICES

    try:
        resolver = dnssec_resolver_value(resolver_text)
        names = [domain_value(d, "--dane") for d in domains]
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if resolver is None:
        raise UserError("--dane needs --dnssec-resolver IP[:PORT]: only a validating resolver's "
                        "answer says whether peers use the TLSA")
    answers = lookup_published_tlsa(resolver, names, DEFAULT_SERVICES)
    return [with_dane(c, answers) for c in checks]


@app.command()
def plan(
    sip_domain: SipDomains = None,
    xmpp_domain: XmppDomains = None,
    extra_san: ExtraSans = None,
    edge_fqdn: EdgeFqdn = None,
    webconf_fqdn: WebconfFqdn = None,
    csr: Annotated[Path | None, typer.Option("--csr", metavar="FILE",
        help="Write a CSR requesting exactly this.")] = None,
    key: Annotated[Path | None, typer.Option("--key", metavar="FILE",
        help="Where to write the new private key.")] = None,
    dane: Annotated[Path | None, typer.Option("--dane", metavar="FILE",
        help="Print the TLSA records to publish for this certificate or CSR (may be the --csr "
             "just written).")] = None,
    output: FormatOpt = OutputFormat.table,
) -> None:
    """Print the subject, SANs and EKUs your external Edge certificate needs (and a CSR)."""
    from scanner.plan import PlanError, certificate_plan, write_csr

    dep = make_deployment(sip_domain, xmpp_domain, extra_san, edge_fqdn, webconf_fqdn)
    try:
        the_plan = certificate_plan(dep)
    except PlanError as exc:
        if dane is None or dep.declared:
            raise UserError(str(exc)) from None
        the_plan = None  # only TLSA records asked for, and no host known: placeholder owners
    if (csr is None) != (key is None):
        raise UserError("--csr and --key go together")
    if csr is not None and key is not None and the_plan is not None:
        if key.exists():
            raise UserError(f"{key}: already exists; refusing to overwrite a private key")
        try:
            write_csr(the_plan, csr, key)
        except OSError as exc:
            raise UserError(f"cannot write {exc.filename}: {exc.strerror}") from None
    tlsa = _tlsa_plan(dane, the_plan.subject if the_plan else None) if dane is not None else None
    if output is OutputFormat.json:
        doc: dict[str, object] = {"schema_version": 1, "plan": the_plan.to_json() if the_plan else None}
        if tlsa is not None:
            doc["dane"] = [e.to_json() for e in tlsa]
        print_json(doc)
        return
    from scanner.render import render_plan

    if the_plan is not None:
        render_plan(stdout_console(), the_plan)
    if csr is not None:
        print(f"wrote {csr} and {key} (keep the key private)")
    if tlsa is not None:
        print(f"TLSA records for {dane} (publish in the DNSSEC-signed zone of the SRV target, "
              "before the certificate is installed):")
        for e in tlsa:
            print(f"  {e.zone_line}")
            print(f"      ; {e.record.acronym}: {e.why}")


def _tlsa_plan(path: Path, host: str | None) -> tuple[TlsaEntry, ...]:
    from cryptography import x509

    from scanner.loaders import LoadError, load_file
    from scanner.plan import tlsa_plan
    from scanner.verify import chains_in

    try:
        loaded = load_file(path, password_source(None))
    except LoadError as exc:
        raise UserError(str(exc)) from None
    if loaded.csr_bytes is not None:
        data = loaded.csr_bytes
        request = x509.load_pem_x509_csr(data) if b"-----BEGIN" in data else x509.load_der_x509_csr(data)
        return tlsa_plan(host, request)
    chains = chains_in(loaded.certs)
    if len(chains) != 1:
        raise UserError(f"{path}: holds {len(chains)} end-entity certificates; give --dane one")
    chain = chains[0]
    return tlsa_plan(host, chain[0], chain[1] if len(chain) > 1 else None)


# The monitoring and report commands live in their own modules; imported here so that
# `fedscan --help` lists them after scan, cert and plan, and before the lab and codes.
import scanner.cli_monitor  # noqa: E402
import scanner.cli_report  # noqa: E402


@app.command()
def lab(
    net: Annotated[
        str, typer.Option("--net", metavar="A.B.C", help="First three octets of the lab's 127.x.y.0/24.")
    ] = "127.77.0",
    dns_port: Annotated[int, typer.Option("--dns-port", min=0, max=65535, metavar="PORT",
        help="DNS port (0: any).")] = 0,
    state_file: Annotated[
        Path | None, typer.Option("--state-file", metavar="FILE",
            help="Write where the lab is (JSON) for scripts.")
    ] = None,
    hostile: Annotated[
        bool,
        typer.Option("--hostile", help="Serve the misbehaving peers of the README's 'Hostile and broken "
                     "peers' table (one domain each) instead of the federation situations."),
    ] = False,
) -> None:
    """Run the embedded loopback lab in the foreground and print the scan line to try."""
    from scanner.cli_lab import lab_start_error
    from scanner.lab.pki import LabPkiError
    from scanner.lab.run import serve_lab

    if not net.startswith("127.") or net.count(".") != 2:
        raise UserError(f"--net must be three octets inside 127.0.0.0/8, e.g. 127.77.0 (got {net!r})")
    try:
        serve_lab(net, dns_port, state_file, hostile=hostile)
    except* (OSError, LabPkiError) as group:
        exc: BaseException = group.exceptions[0]
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
        raise UserError(lab_start_error(exc, net)) from None


import scanner.cli_lab  # noqa: E402, F401  (`fedscan demo`, listed after the lab)


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
            _silence_stdout()
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


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _fail(message: str) -> int:
    sys.stderr.write(f"fedscan: error: {message.strip().splitlines()[0]}\n")
    return EXIT_UNKNOWN


def main() -> NoReturn:
    sys.exit(run())
