"""The monitoring config file (TOML): reading it, and the rules each of its keys keeps.

Theory of this module
---------------------
* A config file is read by cron, unattended, for years. A typo must therefore fail loudly at
  load time (and in ``fedscan check-config``), never silently scan less: unknown keys are
  errors, and every error names its key path the way a user would find it in the file
  (``partner[2].suppress[0].until``, 0-based like the ``[[partner]]`` blocks in order).
* Three modules, one job each: this one knows which tables and keys exist and what makes
  them valid together (one function per table, cross-table rules such as "a domain is ours
  or a partner's"); :mod:`scanner.config_table` is the typed, key-path-aware reader those
  functions use; :mod:`scanner.config_model` is the typed :class:`Config` they build, which
  is all a run reads.
* Loading is pure apart from reading the file; :func:`parse_config` takes the parsed mapping
  so every rule is a test without a file.
* Names are normalised exactly as the command line normalises them (A-labels), so a partner
  written as ``Contoso.COM.`` is the same domain as ``contoso.com`` in history and metrics.
* Relative paths (``ca_file``, ``[acceptance]`` files) are relative to the config file, not
  to cron's working directory.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scanner.config_model import (
    AcceptanceConfig,
    Config,
    DeploymentConfig,
    Partner,
    ScanSettings,
    Suppression,
    Thresholds,
)
from scanner.config_table import ConfigError, Table
from scanner.deployment import Deployment
from scanner.findings import CODES
from scanner.names import check_server_spec, parse_nameserver
from scanner.srv import DEFAULT_SERVICES, parse_services

__all__ = ["ConfigError", "load_config", "parse_config"]


def load_config(path: Path) -> Config:
    """Read and validate a config file; every problem is a one-line :class:`ConfigError`."""
    source = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    return parse_config(data, source, base_dir=path.resolve().parent)


def parse_config(data: Mapping[str, Any], source: str, *, base_dir: Path | None = None) -> Config:
    """Validate parsed TOML; ``base_dir`` anchors relative paths (the config file's folder)."""
    root = Table(data, "", source)
    root.only("deployment", "partner", "thresholds", "scan", "acceptance")
    deployment = _deployment(root.table("deployment"))
    partners = tuple(_partner(t) for t in root.tables("partner"))
    thresholds = _thresholds(root.table("thresholds"))
    settings = _scan(root.table("scan"), base_dir)
    _check_unique(deployment, partners, source)
    if not deployment.domains and not partners:
        raise ConfigError(
            f"{source}: nothing to monitor: [deployment] has no sip_domains or xmpp_domains "
            "and there is no [[partner]]"
        )
    acceptance = None
    if "acceptance" in data:
        acceptance = _acceptance(root.table("acceptance"), base_dir, deployment, partners)
    return Config(source, deployment, partners, thresholds, settings, acceptance)


def _acceptance(t: Table, base_dir: Path | None, deployment: DeploymentConfig,
                partners: Sequence[Partner]) -> AcceptanceConfig:
    t.only("certificate", "key", "password_env", "partners", "sip_domain", "xmpp_domain")
    certificate = _path(t, "certificate", base_dir, required=True)
    assert certificate is not None
    key = _path(t, "key", base_dir)
    password_env = t.string("password_env") or "FEDSCAN_PFX_PASSWORD"
    known = [p.domain for p in partners]
    chosen = t.domains("partners") or tuple(known)
    for i, domain in enumerate(chosen):
        if domain not in known:
            t.fail(f"partners[{i}]", f"{domain} is not a [[partner]] domain")
    if not chosen:
        t.fail("partners", "no [[partner]] to present our certificate to")
    dep = deployment.deployment
    sip = t.domain("sip_domain") or next(iter(dep.sip_domains), None)
    xmpp = t.domain("xmpp_domain") or next(iter(dep.xmpp_domains), None)
    return AcceptanceConfig(certificate, key, password_env, chosen, sip, xmpp)


def _path(t: Table, name: str, base_dir: Path | None, *, required: bool = False) -> Path | None:
    text = t.string(name, required=required)
    if text is None:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        t.fail(name, f"{path}: no such file")
    return path


def _deployment(t: Table) -> DeploymentConfig:
    t.only("sip_domains", "xmpp_domains", "edge_fqdn", "webconf_fqdn", "extra_sans", "client_auth",
           "suppress")
    sip = t.domains("sip_domains")
    xmpp = t.domains("xmpp_domains")
    edge = t.hostname("edge_fqdn")
    webconf = t.hostname("webconf_fqdn")
    extra = t.hostnames("extra_sans")
    client_auth = t.choice("client_auth", ("required", "optional"), "required")
    dep = Deployment(sip, xmpp, edge, webconf, extra)
    if (dep.declared or edge) and not sip and not edge:
        t.fail("sip_domains", "give at least one SIP domain, or edge_fqdn")
    return DeploymentConfig(dep, client_auth == "required", _suppressions(t))


def _partner(t: Table) -> Partner:
    t.only("domain", "services", "suppress")
    domain = t.domain("domain", required=True)
    assert domain is not None
    services = t.strings("services", None)
    if services is None:
        services = DEFAULT_SERVICES
    for i, s in enumerate(services):
        try:
            parse_services([s], "service", json.dumps)
        except ValueError as exc:
            t.fail(f"services[{i}]", str(exc))
    if not services:
        t.fail("services", "expected at least one service")
    return Partner(domain, parse_services(services, "service"), _suppressions(t))


def _suppressions(t: Table) -> tuple[Suppression, ...]:
    out = []
    for s in t.tables("suppress"):
        s.only("code", "reason", "until")
        code = s.string("code", required=True)
        assert code is not None
        if code not in CODES:
            s.fail("code", f"unknown finding code {json.dumps(code)} (see `fedscan codes`)")
        reason = s.string("reason", required=True)
        assert reason is not None
        if not reason.strip():
            s.fail("reason", "say why the finding is accepted")
        out.append(Suppression(code, reason.strip(), s.date("until"), s.path))
    return tuple(out)


def _thresholds(t: Table) -> Thresholds:
    t.only("warn_days", "crit_days")
    default = Thresholds()
    warn = t.integer("warn_days", default.warn_days, minimum=0)
    crit = t.integer("crit_days", default.crit_days, minimum=0)
    if crit > warn:
        t.fail("crit_days", f"must not exceed warn_days ({crit} > {warn})")
    return Thresholds(warn, crit)


def _scan(t: Table, base_dir: Path | None) -> ScanSettings:
    t.only("timeout", "concurrency", "nameservers", "ca_file", "connections", "per_address",
           "dnssec_resolver")
    default = ScanSettings()
    timeout = t.number("timeout", default.timeout, minimum=0.1)
    concurrency = t.integer("concurrency", default.concurrency, minimum=1)
    connections = t.integer("connections", default.connections, minimum=1)
    per_address = t.integer("per_address", default.per_address, minimum=0)
    servers = t.strings("nameservers", ()) or ()
    for i, s in enumerate(servers):
        try:
            check_server_spec(s)  # a host name is resolved when the run starts, as --nameserver
        except ValueError as exc:
            t.fail(f"nameservers[{i}]", str(exc))
    dnssec = t.string("dnssec_resolver")
    if dnssec is not None:
        try:
            parse_nameserver(dnssec)
        except ValueError as exc:
            t.fail("dnssec_resolver", str(exc))
    ca_text = t.string("ca_file")
    ca_file = None
    if ca_text is not None:
        ca_file = Path(ca_text).expanduser()
        if not ca_file.is_absolute() and base_dir is not None:
            ca_file = base_dir / ca_file
        if not ca_file.is_file():
            t.fail("ca_file", f"{ca_file}: no such file")
    return ScanSettings(timeout, concurrency, tuple(servers), ca_file, connections, per_address,
                        dnssec)


def _check_unique(deployment: DeploymentConfig, partners: Sequence[Partner], source: str) -> None:
    """A domain is either ours (own-Edge view) or a partner's (partner view), and listed once."""
    seen = dict.fromkeys(deployment.domains, "[deployment]")
    for i, p in enumerate(partners):
        if p.domain in seen:
            raise ConfigError(
                f"{source}: partner[{i}].domain: {p.domain} is already listed in {seen[p.domain]}"
            )
        seen[p.domain] = f"partner[{i}]"
