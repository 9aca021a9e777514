"""The monitoring config file (TOML): what to scan, what to forgive, how to judge.

Theory of this module
---------------------
* A config file is read by cron, unattended, for years. A typo must therefore fail loudly at
  load time (and in ``fedscan check-config``), never silently scan less: unknown keys are
  errors, and every error names its key path the way a user would find it in the file
  (``partner[2].suppress[0].until``, 0-based like the ``[[partner]]`` blocks in order).
* Validation is a small hand-written reader over the ``tomllib`` data (:class:`_Table`): one
  method per expected type, each producing a :class:`ConfigError` with the path and the value
  it got. Loading is pure apart from reading the file; :func:`parse_config` takes the parsed
  mapping so every rule is a test without a file.
* Names are normalised exactly as the command line normalises them (A-labels), so a partner
  written as ``Contoso.COM.`` is the same domain as ``contoso.com`` in history and metrics.
* Relative paths (``ca_file``) are relative to the config file, not to cron's working
  directory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from scanner.deployment import Deployment
from scanner.findings import CODES
from scanner.names import InvalidName, check_server_spec, normalize_domain, parse_nameserver
from scanner.srv import DEFAULT_SERVICES, SIP_DOMAIN_SERVICES, XMPP_DOMAIN_SERVICES, parse_services


class ConfigError(ValueError):
    """An invalid config file; the message is one line: ``FILE: key.path: problem``."""


@dataclass(frozen=True)
class Suppression:
    """A finding code the operator has accepted for one domain, with a reason, maybe until a date.

    ``until`` is the last day the suppression holds; from the next day on it lapses (and says
    so with ``suppression-expired``) so that an accepted risk is looked at again.
    """

    code: str
    reason: str
    until: dt.date | None = None
    where: str = ""  # the key path, for messages ("partner[1].suppress[0]")

    def expired(self, on: dt.date) -> bool:
        return self.until is not None and self.until < on


@dataclass(frozen=True)
class Partner:
    domain: str
    services: tuple[str, ...] = DEFAULT_SERVICES
    suppress: tuple[Suppression, ...] = ()


@dataclass(frozen=True)
class Thresholds:
    warn_days: int = 30
    crit_days: int = 14


@dataclass(frozen=True)
class ScanSettings:
    timeout: float = 10.0
    concurrency: int = 64
    nameservers: tuple[str, ...] = ()
    ca_file: Path | None = None
    connections: int = 4096  # scanner.limits.DEFAULT_CONNECTIONS
    per_address: int = 4  # scanner.limits.DEFAULT_PER_ADDRESS
    dnssec_resolver: str | None = None  # a validating resolver: DANE is checked through it


@dataclass(frozen=True)
class DeploymentConfig:
    """``[deployment]``: our own Edge and the namespaces its one certificate serves."""

    deployment: Deployment = field(default_factory=Deployment)
    client_auth_required: bool = True
    suppress: tuple[Suppression, ...] = ()

    @property
    def domains(self) -> tuple[str, ...]:
        """Every domain whose federation records point at our Edge, SIP ones first."""
        d = self.deployment
        return tuple(dict.fromkeys((*d.sip_domains, *d.xmpp_domains)))

    def services_for(self, domain: str) -> tuple[str, ...]:
        """A SIP domain publishes SIP federation; an XMPP domain both XMPP server services."""
        out: tuple[str, ...] = ()
        if domain in self.deployment.sip_domains:
            out += SIP_DOMAIN_SERVICES
        if domain in self.deployment.xmpp_domains:
            out += XMPP_DOMAIN_SERVICES
        return out


@dataclass(frozen=True)
class AcceptanceConfig:
    """``[acceptance]``: our Edge's certificate, presented to partners to learn their verdict.

    The file is read when a run starts (``monitor``, ``readiness``), not here: a config check
    must not need the PFX password. The password comes from the environment variable named
    by ``password_env``, never from the config file.
    """

    certificate: Path
    key: Path | None = None
    password_env: str = "FEDSCAN_PFX_PASSWORD"
    partners: tuple[str, ...] = ()  # the [[partner]] domains to probe (all of them by default)
    sip_domain: str | None = None  # our SIP From; default: the first [deployment] SIP domain
    xmpp_domain: str | None = None  # our stream from; default: the first XMPP domain


@dataclass(frozen=True)
class Config:
    source: str  # the file name as given, for messages
    deployment: DeploymentConfig = field(default_factory=DeploymentConfig)
    partners: tuple[Partner, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    scan: ScanSettings = field(default_factory=ScanSettings)
    acceptance: AcceptanceConfig | None = None

    def suppressions(self) -> dict[str, tuple[Suppression, ...]]:
        """Suppressions by domain (deployment ones apply to every deployment domain)."""
        out = dict.fromkeys(self.deployment.domains, self.deployment.suppress)
        for p in self.partners:
            out[p.domain] = p.suppress
        return out

    def summary(self, on: dt.date) -> str:
        """The one line ``check-config`` prints for a valid file."""
        dep = self.deployment.deployment
        sups = [s for group in self.suppressions().values() for s in group]
        sups = list({s.where: s for s in sups}.values())
        expired = sum(1 for s in sups if s.expired(on))
        parts = [
            f"{len(dep.sip_domains)} SIP domain{_s(len(dep.sip_domains))}",
            f"{len(dep.xmpp_domains)} XMPP domain{_s(len(dep.xmpp_domains))}",
            f"{len(self.partners)} partner{_s(len(self.partners))}"
            + (f" ({len(self.acceptance.partners)} probed with our certificate)"
               if self.acceptance else ""),
            f"{len(sups)} suppression{_s(len(sups))}"
            + (f" ({expired} expired as of {on.isoformat()})" if expired else ""),
        ]
        edge = dep.access_edge_fqdn
        head = f"{self.source}: OK"
        if edge:
            head += f" (Edge {edge})"
        return f"{head}: {', '.join(parts)}"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


# ------------------------------------------------------------------------ loading


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
    root = _Table(data, "", source)
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


def _acceptance(t: _Table, base_dir: Path | None, deployment: DeploymentConfig,
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


def _path(t: _Table, name: str, base_dir: Path | None, *, required: bool = False) -> Path | None:
    text = t.string(name, required=required)
    if text is None:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        t.fail(name, f"{path}: no such file")
    return path


def _deployment(t: _Table) -> DeploymentConfig:
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


def _partner(t: _Table) -> Partner:
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


def _suppressions(t: _Table) -> tuple[Suppression, ...]:
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


def _thresholds(t: _Table) -> Thresholds:
    t.only("warn_days", "crit_days")
    default = Thresholds()
    warn = t.integer("warn_days", default.warn_days, minimum=0)
    crit = t.integer("crit_days", default.crit_days, minimum=0)
    if crit > warn:
        t.fail("crit_days", f"must not exceed warn_days ({crit} > {warn})")
    return Thresholds(warn, crit)


def _scan(t: _Table, base_dir: Path | None) -> ScanSettings:
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


# ------------------------------------------------------------------------ the reader


class _Table:
    """One TOML table and its key path; typed getters that fail with the path and the value."""

    def __init__(self, data: Mapping[str, Any], path: str, source: str) -> None:
        self.data = data
        self.path = path
        self.source = source

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, problem: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {self.key(name)}: {problem}")

    def expected(self, name: str, what: str, value: Any) -> NoReturn:
        self.fail(name, f"expected {what}, got {_show(value)}")

    def only(self, *names: str) -> None:
        for k in self.data:
            if k not in names:
                self.fail(k, f"unknown key (expected one of: {', '.join(names)})")

    def table(self, name: str) -> _Table:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.expected(name, "a table", value)
        return _Table(value, self.key(name), self.source)

    def tables(self, name: str) -> list[_Table]:
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.expected(name, f"an array of tables ([[{self.key(name)}]])", value)
        return [_Table(v, f"{self.key(name)}[{i}]", self.source) for i, v in enumerate(value)]

    def string(self, name: str, *, required: bool = False) -> str | None:
        if name not in self.data:
            if required:
                self.fail(name, "required key is missing")
            return None
        value = self.data[name]
        if not isinstance(value, str):
            self.expected(name, "a string", value)
        return str(value)

    def strings(self, name: str, default: Sequence[str] | None) -> tuple[str, ...] | None:
        if name not in self.data:
            return None if default is None else tuple(default)
        value = self.data[name]
        if not isinstance(value, list):
            self.expected(name, "an array of strings", value)
        for i, v in enumerate(value):
            if not isinstance(v, str):
                self.expected(f"{name}[{i}]", "a string", v)
        return tuple(value)

    def domain(self, name: str, *, required: bool = False) -> str | None:
        text = self.string(name, required=required)
        return None if text is None else self._domain(name, text)

    def domains(self, name: str) -> tuple[str, ...]:
        values = self.strings(name, ()) or ()
        return tuple(dict.fromkeys(self._domain(f"{name}[{i}]", v) for i, v in enumerate(values)))

    def hostname(self, name: str) -> str | None:
        return self.domain(name)

    def hostnames(self, name: str) -> tuple[str, ...]:
        return self.domains(name)

    def _domain(self, name: str, text: str) -> str:
        try:
            return normalize_domain(text)
        except (ValueError, InvalidName) as exc:
            self.fail(name, str(exc))

    def choice(self, name: str, choices: Sequence[str], default: str) -> str:
        value = self.string(name)
        if value is None:
            return default
        if value not in choices:
            self.expected(name, " or ".join(json.dumps(c) for c in choices), value)
        return value

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.expected(name, "an integer", value)
        if value < minimum:
            self.fail(name, f"must be at least {minimum}, got {value}")
        return int(value)

    def number(self, name: str, default: float, *, minimum: float) -> float:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.expected(name, "a number", value)
        if not math.isfinite(value):  # nan and inf compare false with everything
            self.expected(name, "a finite number", value)
        if value < minimum:
            self.fail(name, f"must be at least {minimum}, got {value}")
        return float(value)

    def date(self, name: str) -> dt.date | None:
        """A TOML local date (``until = 2030-06-30``) or the same as a string."""
        if name not in self.data:
            return None
        value = self.data[name]
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return dt.date.fromisoformat(value)
        return self.expected(name, "a date (YYYY-MM-DD)", value)


def _show(value: Any) -> str:
    """How a wrong value is quoted in an error: strings as written in TOML, others by kind."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return type(value).__name__
