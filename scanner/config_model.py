"""The monitoring config, typed: what to scan, what to forgive, how to judge.

What :func:`scanner.config.load_config` returns and every run reads (``monitor``,
``readiness``, the acceptance probe). Frozen dataclasses with the defaults a missing key
means, and the few questions a reader asks of them (which services a deployment domain
publishes, the suppressions by domain, the ``check-config`` line). Kept apart from the
loading and validation rules so that a reader of a config imports neither ``tomllib`` nor
the rules, and a config can be built in a test without a file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from scanner.deployment import Deployment
from scanner.srv import DEFAULT_SERVICES, SIP_DOMAIN_SERVICES, XMPP_DOMAIN_SERVICES


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
