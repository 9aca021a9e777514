"""The scan options of an acceptance scan: ``--as-edge`` (or ``--client-cert``), our domains,
``--endpoint``/``--sni``. Parsing and one-line errors only; the probing is in
:mod:`scanner.acceptance`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scanner.cli_common import UserError, password_source

if TYPE_CHECKING:
    from scanner.acceptance import Presenting
    from scanner.config_model import Config
    from scanner.deployment import Deployment
    from scanner.direct import DirectEndpoint
    from scanner.monitor_run import OurCertificate
    from scanner.tls_client import ClientCredentials


@dataclass(frozen=True)
class Presented:
    credentials: ClientCredentials | None
    presenting: Presenting | None


def presented(as_edge: Path | None, client_cert: Path | None, client_key: Path | None,
              password: Callable[[], str | None], *, sip_from: str | None,
              xmpp_from: str | None) -> Presented:
    """Load the certificate we present (once, up front): one line and exit 3 if it cannot be."""
    from scanner.acceptance import Presenting
    from scanner.edge_identity import load_edge_identity
    from scanner.loaders import LoadError

    if as_edge is not None and client_cert is not None:
        raise UserError("--as-edge and --client-cert both name the certificate to present: give one")
    if client_key is not None and client_cert is None:
        raise UserError("--client-key goes with --client-cert")
    path = as_edge or client_cert
    if path is None:
        return Presented(None, None)
    try:
        identity = load_edge_identity(path, client_key, password)
    except LoadError as exc:
        raise UserError(str(exc)) from None
    if not identity.client_auth:
        sys.stderr.write(f"fedscan: warning: {path}: the certificate has no Client Authentication "
                         "EKU; it is presented anyway, and partners that check the EKU will "
                         "refuse it\n")
    presenting = Presenting(identity.sha256, sip_from or identity.default_sip_domain(),
                            xmpp_from or identity.default_xmpp_domain(), identity.client_auth)
    return Presented(identity.credentials, presenting)


def judged_deployment(declared: Deployment, names: Sequence[str], as_edge: bool) -> Deployment:
    """With ``--as-edge``, ``--sip-domain``/``--xmpp-domain`` say who *we* are (the SIP From,
    the stream from), so partners' certificates are not judged against our namespaces; when
    every scanned name is one of ours, the scan is of our own Edge and they are."""
    from scanner.deployment import Deployment

    if not as_edge or not declared.declared:
        return declared
    ours = {*declared.sip_domains, *declared.xmpp_domains}
    return declared if names and all(n in ours for n in names) else Deployment()


def direct_endpoints(given: Sequence[str] | None, sni: str | None) -> tuple[DirectEndpoint, ...]:
    from scanner.direct import parse_endpoint

    if sni is not None and not given:
        raise UserError("--sni goes with --endpoint")
    try:
        return tuple(parse_endpoint(text, sni) for text in given or ())
    except ValueError as exc:
        raise UserError(str(exc)) from None


def our_certificate(config: Config) -> OurCertificate | None:
    """``[acceptance]``'s certificate, loaded once for the run: one line and exit 3 if it cannot
    be (a wrong password in the environment, a file without its key...)."""
    from scanner.monitor_run import OurCertificate

    acceptance = config.acceptance
    if acceptance is None:
        return None
    env = acceptance.password_env

    def password() -> str | None:
        value = os.environ.get(env)
        if value is None and sys.stdin.isatty():
            return password_source(None)()
        return value

    cert, key = acceptance.certificate, acceptance.key
    loaded = presented(None if key else cert, cert if key else None, key, password,
                       sip_from=acceptance.sip_domain, xmpp_from=acceptance.xmpp_domain)
    assert loaded.credentials is not None and loaded.presenting is not None
    return OurCertificate(loaded.credentials, loaded.presenting)
