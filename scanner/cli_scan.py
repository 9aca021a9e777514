"""``fedscan scan``: discover every federation endpoint of the domains given, handshake, verify,
report.

The command parses its options into the scan's inputs (:func:`scan_targets`, in the order the
user meets the errors: endpoints, domains, DNS servers, services), hands them to the scan runner
(:func:`scanner.sinks.scan_for_output`) and writes the report in the chosen format. Nothing of
the scan itself happens here; its exit code is the report's worst status.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scanner.cli_common import (
    At,
    CaFile,
    ClientAuth,
    ClientAuthOpt,
    CritDays,
    EdgeFqdn,
    ExtraSans,
    PfxPassword,
    SipDomains,
    UserError,
    WarnDays,
    WebconfFqdn,
    XmppDomains,
    app,
    dnssec_resolver_value,
    domain_value,
    load_trust,
    make_deployment,
    make_policy,
    nameservers,
    parse_now,
    password_source,
    reader_may_leave,
    stdout_console,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scanner.direct import DirectEndpoint
    from scanner.resume import Carried, Resumed


class ScanFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


# ------------------------------------------------------------------------ options of scan only

Domains = Annotated[
    list[str] | None, typer.Argument(metavar="[DOMAIN]...",
        help="Domains to scan (partners, or your own).", show_default=False)
]
DomainsFile = Annotated[
    str | None,
    typer.Option("--domains-file", metavar="FILE", help="Read domains from FILE, one per line ('-': stdin)."),
]
ShardOpt = Annotated[
    str | None,
    typer.Option("--shard", metavar="K/N", help="Scan only shard K of N (0-based, K/N): a stable split."),
]
Services = Annotated[
    list[str] | None,
    typer.Option(
        "--service",
        metavar="SERVICE",
        help="sip-federation, xmpp-server, xmpps-server (the defaults) or sip-access; repeatable.",
    ),
]
Nameservers = Annotated[
    list[str] | None,
    typer.Option("--nameserver", metavar="HOST[:PORT]",
        help="Ask this DNS server (HOST[:PORT]); default: the system's."),
]
DnssecResolver = Annotated[
    str | None,
    typer.Option("--dnssec-resolver", metavar="IP[:PORT]",
                 help="Check DANE (TLSA) through this validating resolver; its AD bit is "
                 "trusted. Without it DANE is not checked."),
]
Timeout = Annotated[
    float, typer.Option("--timeout", min=0.1, metavar="SECONDS",
        help="Total seconds per endpoint (connect to handshake).")
]
Concurrency = Annotated[int, typer.Option("--concurrency", min=1, metavar="N",
    help="Endpoints at work at once (TLS, parsing); a peer we wait for does not count.")]
Connections = Annotated[int, typer.Option("--connections", min=1, metavar="N",
    help="Open connections at once, waiting ones included (capped by the open-file limit).")]
PerAddress = Annotated[int, typer.Option("--per-address", min=0, metavar="N",
    help="Open connections to one IP address at once (0: no cap).")]
AsEdge = Annotated[
    Path | None,
    typer.Option("--as-edge", metavar="FILE", help="Present our Edge's certificate (PFX, or PEM "
                 "with key and chain) and report each partner's verdict on it."),
]
ClientCert = Annotated[
    Path | None, typer.Option("--client-cert", metavar="FILE",
        help="Present this client certificate (PEM chain, or a PFX).")
]
ClientKey = Annotated[Path | None, typer.Option("--client-key", metavar="FILE",
    help="Its private key (PEM).")]
FromDomain = Annotated[
    str | None, typer.Option("--from-domain", metavar="DOMAIN",
        help="Our domain: XMPP stream 'from' and SIP From.")
]
Endpoints = Annotated[
    list[str] | None,
    typer.Option("--endpoint", metavar="SERVICE=HOST:PORT",
                 help="Scan this endpoint without DNS SRV (repeatable)."),
]
Sni = Annotated[
    str | None,
    typer.Option("--sni", metavar="NAME",
                 help="The name to ask --endpoint for (needed when HOST is an address)."),
]
Resume = Annotated[
    Path | None,
    typer.Option("--resume", metavar="FILE", dir_okay=False,
                 help="Continue a census cut short: copy what FILE (its earlier --format jsonl "
                 "output) finished and scan only the rest. Write to a new file."),
]
ProblemsOnly = Annotated[
    bool,
    typer.Option("--problems-only", "-q",
                 help="Table: only endpoints and findings above info, and the summary line."),
]
ScanFormatOpt = Annotated[
    ScanFormat,
    typer.Option("--format", "-f", help="table (for people), json, or jsonl (a line per endpoint as it "
                 "finishes)."),
]


@app.command()
def scan(
    domains: Domains = None,
    domains_file: DomainsFile = None,
    shard: ShardOpt = None,
    sip_domain: SipDomains = None,
    xmpp_domain: XmppDomains = None,
    extra_san: ExtraSans = None,
    edge_fqdn: EdgeFqdn = None,
    webconf_fqdn: WebconfFqdn = None,
    service: Services = None,
    nameserver: Nameservers = None,
    dnssec_resolver: DnssecResolver = None,
    ca_file: CaFile = None,
    timeout: Timeout = 10.0,
    concurrency: Concurrency = 64,
    connections: Connections = 4096,
    per_address: PerAddress = 4,
    as_edge: AsEdge = None,
    password: PfxPassword = None,
    client_cert: ClientCert = None,
    client_key: ClientKey = None,
    from_domain: FromDomain = None,
    endpoint: Endpoints = None,
    sni: Sni = None,
    client_auth: ClientAuthOpt = ClientAuth.required,
    warn_days: WarnDays = 30,
    crit_days: CritDays = 14,
    at: At = None,
    problems_only: ProblemsOnly = False,
    output: ScanFormatOpt = ScanFormat.table,
    resume: Resume = None,
) -> None:
    """Discover every federation endpoint of DOMAIN(s), handshake with each, verify, report."""
    from scanner.cli_acceptance import judged_deployment, presented
    from scanner.scan import ScanOptions
    from scanner.sinks import scan_for_output

    t = scan_targets(domains, domains_file, shard, service, nameserver, dnssec_resolver, from_domain,
                     endpoint, sni)
    resumed = None
    if resume is not None:
        t, resumed = resumed_targets(resume, output, t)
    deployment = make_deployment(sip_domain, xmpp_domain, extra_san, edge_fqdn, webconf_fqdn)
    ours = presented(as_edge, client_cert, client_key, password_source(password),
                     sip_from=next(iter(deployment.sip_domains), t.from_domain),
                     xmpp_from=next(iter(deployment.xmpp_domains), t.from_domain))
    trust = load_trust(ca_file)
    options = ScanOptions(
        services=t.services,
        deployment=judged_deployment(deployment, [*t.names, *(d.name for d in t.directs)],
                                     as_edge is not None),
        policy=make_policy(client_auth, warn_days, crit_days),
        timeout=timeout,
        concurrency=concurrency,
        connections=connections,
        per_address=per_address,
        credentials=ours.credentials,
        from_domain=t.from_domain,
        dnssec_resolver=t.dnssec,
        presenting=ours.presenting,
        endpoints=t.directs,
    )
    report = scan_for_output(t.names, options, t.servers, trust, parse_now(at) if at else None,
                             output.value, resumed)
    with reader_may_leave():
        if output is ScanFormat.json:
            report.write_json(sys.stdout)
        elif output is ScanFormat.table:
            from scanner.render import render_scan

            render_scan(stdout_console(), report, problems_only=problems_only)
    raise typer.Exit(int(report.status))


def resumed_targets(path: Path, output: ScanFormat, t: ScanTargets) -> tuple[ScanTargets, Resumed]:
    """``--resume FILE``: the targets without the domains FILE finished, and what to copy."""
    from scanner.resume import Resumed, ResumeError, read
    from scanner.sinks import notice

    if output is not ScanFormat.jsonl:
        raise UserError("--resume needs --format jsonl: it continues a jsonl output, whose "
                        "finished domains are on their own lines")
    if str(path) == "-":
        raise UserError("--resume needs a file, not standard input: it is read twice (what was "
                        "finished, then those lines)")
    try:
        if _is_stdout(path):
            raise UserError(f"--resume {path}: that is also where this output goes (a shell "
                            "empties it before fedscan starts): write to a new file")
        with path.open(encoding="utf-8") as lines:
            carried = read(str(path), lines)
    except OSError as exc:
        raise UserError(f"--resume {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"--resume {path}: not UTF-8 text, not a fedscan --format jsonl output") from None
    except ResumeError as exc:
        raise UserError(str(exc)) from None
    keep = ({*t.names, *(d.name for d in t.directs)}) & carried.finished.keys()
    names = [n for n in t.names if n not in keep]
    directs = tuple(d for d in t.directs if d.name not in keep)
    notice(f"resuming: {len(keep)} finished domain{'' if len(keep) == 1 else 's'} copied from "
           f"{path}, {len(names) + len(directs)} to scan")
    return (dataclasses.replace(t, names=names, directs=directs),
            Resumed(_copied(path, carried, keep), carried.domain_results(keep)))


def _copied(path: Path, carried: Carried, keep: set[str]) -> Iterator[str]:
    with path.open(encoding="utf-8") as lines:
        yield from carried.lines(lines, keep)


def _is_stdout(path: Path) -> bool:
    try:
        out, given = os.fstat(sys.stdout.fileno()), path.stat()
    except (OSError, ValueError):
        return False
    return (out.st_dev, out.st_ino) == (given.st_dev, given.st_ino)


@dataclass(frozen=True)
class ScanTargets:
    """What to scan and whom to ask, as the options named them (already checked)."""

    names: list[str]  # the domains, normalised, after --shard
    directs: tuple[DirectEndpoint, ...]  # --endpoint
    services: tuple[str, ...]  # --service, plus each --endpoint's
    servers: list[tuple[str, int]] | None  # --nameserver (None: the system's)
    dnssec: tuple[str, int] | None  # --dnssec-resolver
    from_domain: str | None


def scan_targets(
    domains: list[str] | None, domains_file: str | None, shard: str | None, service: list[str] | None,
    nameserver: list[str] | None, dnssec_resolver: str | None, from_domain: str | None,
    endpoint: list[str] | None, sni: str | None,
) -> ScanTargets:
    """The scan's targets from its options; :class:`UserError` (one line) for the first bad one."""
    from scanner.cli_acceptance import direct_endpoints
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
        services = parse_services(service or DEFAULT_SERVICES, "--service")
    except ValueError as exc:
        raise UserError(str(exc)) from None
    overlap = [d.name for d in directs if d.name in names]
    if overlap:
        raise UserError(f"{overlap[0]} is both a DOMAIN and an --endpoint name: give it once")
    services = tuple(dict.fromkeys([*services, *(d.service for d in directs)]))
    return ScanTargets(names, directs, services, servers, dnssec, from_domain)


def _all_domains(given: list[str] | None, domains_file: str | None, endpoints: bool = False) -> list[str]:
    """The domains to scan, normalised; a bad one in a file is named by ``file:line``."""
    from scanner.cli_errors import ENDPOINT_HINT

    if "endpoint" in inspect.signature(scan).parameters and not ENDPOINT_HINT:
        ENDPOINT_HINT.append("--endpoint HOST:PORT scans one address")
    names = [domain_value(d, None) for d in given or []]
    if domains_file is not None:
        label = "<stdin>" if domains_file == "-" else domains_file
        listed = _listed_domains(domains_file)
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


def _listed_domains(domains_file: str) -> list[tuple[int, str]]:
    """``--domains-file``'s (line number, text) pairs; '-' is stdin."""
    from scanner.shard import numbered_domains

    try:
        if domains_file == "-":
            return list(numbered_domains(sys.stdin))
        if Path(domains_file).is_dir():
            raise UserError(f"{domains_file}: is a directory, not a list of domains")
        with Path(domains_file).open(encoding="utf-8") as fh:
            return list(numbered_domains(fh))
    except OSError as exc:
        raise UserError(f"{domains_file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{domains_file}: not a UTF-8 text file") from None
