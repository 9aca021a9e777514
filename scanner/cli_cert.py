"""The offline commands, for a certificate before it is installed: ``cert`` checks certificate,
chain, PFX and CSR files (and, with ``--dane``, the TLSA records that will have to match them);
``plan`` prints what the Edge certificate must contain, writes a CSR, and the TLSA records to
publish.

Each command parses its options, calls the core (:mod:`scanner.offline`, :mod:`scanner.plan`)
and renders; a file that cannot be read is one line and exit 3.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
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
    FormatOpt,
    OutputFormat,
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
    parse_now,
    password_source,
    print_json,
    stdout_console,
)
from scanner.findings import worst
from scanner.isotime import iso

if TYPE_CHECKING:
    from scanner.names import Identity
    from scanner.offline import FileCheck
    from scanner.plan import TlsaEntry
    from scanner.verify import Verifier


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
    password: PfxPassword = None,
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
    from scanner.verify import Verifier

    dep = make_deployment(sip_domain, xmpp_domain, extra_san, edge_fqdn, webconf_fqdn)
    policy = make_policy(client_auth, warn_days, crit_days)
    now = parse_now(at)
    # one Verifier for every file; it reads the CA bundle only when a file holds certificates
    verifier = Verifier(lambda: load_trust(ca_file), now, policy)
    checks = _check_files(files, dep.identities(), verifier, password)
    if dane:
        checks = _dane_renewal(checks, dane, dnssec_resolver)
    _print_checks(checks, output, now)
    raise typer.Exit(int(worst(c.status for c in checks)))


def _check_files(
    files: list[Path], identities: Sequence[Identity], verifier: Verifier, password: str | None
) -> list[FileCheck]:
    """One result per end-entity certificate (a chain file or PFX may hold several); the first
    file that cannot be read stops the command, since a partial verdict would read as whole."""
    from scanner.loaders import LoadError
    from scanner.offline import check_file

    checks = []
    for path in files:
        try:
            checks += check_file(path, identities, verifier, password_source(password))
        except LoadError as exc:
            raise UserError(str(exc)) from None
    return checks


def _print_checks(checks: list[FileCheck], output: OutputFormat, now: dt.datetime) -> None:
    """JSON carries the judging time, so a saved verdict says when it was true."""
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
        _print_tlsa(dane, tlsa)


def _print_tlsa(source: Path | None, tlsa: tuple[TlsaEntry, ...]) -> None:
    print(f"TLSA records for {source} (publish in the DNSSEC-signed zone of the SRV target, "
          "before the certificate is installed):")
    for e in tlsa:
        print(f"  {e.zone_line}")
        print(f"      ; {e.record.acronym}: {e.why}")


def _tlsa_plan(path: Path, host: str | None) -> tuple[TlsaEntry, ...]:
    from cryptography import x509

    from scanner.bundle import chains_in
    from scanner.loaders import LoadError, load_file
    from scanner.plan import tlsa_plan

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
