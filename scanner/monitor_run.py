"""Monitoring runs, the scanning half: the scans one config needs, run concurrently.

Kept apart from :mod:`scanner.monitor` (the pure model, suppressions and text) so that readers
of a run's result (Nagios, Prometheus, history) do not import trio and the scan runner.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from scanner.acceptance import Presenting
from scanner.config_model import Config
from scanner.deployment import Deployment
from scanner.live import run_scans, shared_limits
from scanner.monitor import deployment_json, merge_reports
from scanner.names import parse_nameserver
from scanner.results import ScanReport
from scanner.scan import Scan, ScanOptions
from scanner.tls_client import ClientCredentials
from scanner.verify import Policy, Verifier


@dataclass(frozen=True)
class ScanJob:
    domains: tuple[str, ...]
    options: ScanOptions


@dataclass(frozen=True)
class OurCertificate:
    """``[acceptance]`` loaded: what partners listed there are shown (:mod:`scanner.acceptance`)."""

    credentials: ClientCredentials
    presenting: Presenting


def plan_jobs(config: Config, policy: Policy, ours: OurCertificate | None = None) -> list[ScanJob]:
    """The scans one run needs: one per (view, service set); deployment domains first."""
    s = config.scan
    dnssec = parse_nameserver(s.dnssec_resolver) if s.dnssec_resolver else None
    jobs: list[ScanJob] = []
    dep = config.deployment
    own: dict[tuple[str, ...], list[str]] = {}
    for domain in dep.domains:
        own.setdefault(dep.services_for(domain), []).append(domain)
    for services, names in own.items():
        opts = ScanOptions(services=services, deployment=dep.deployment, policy=policy,
                           timeout=s.timeout, concurrency=s.concurrency,
                           connections=s.connections, per_address=s.per_address,
                           dnssec_resolver=dnssec)
        jobs.append(ScanJob(tuple(names), opts))
    # partners probed with our certificate: the same partner-view scan, plus their verdict on it
    probed = set(config.acceptance.partners) if config.acceptance and ours else set()
    partners: dict[tuple[tuple[str, ...], bool], list[str]] = {}
    for p in config.partners:
        partners.setdefault((p.services, p.domain in probed), []).append(p.domain)
    for (services, ours_shown), names in partners.items():
        opts = ScanOptions(services=services, deployment=Deployment(), policy=policy,
                           timeout=s.timeout, concurrency=s.concurrency,
                           connections=s.connections, per_address=s.per_address,
                           dnssec_resolver=dnssec,
                           credentials=ours.credentials if ours and ours_shown else None,
                           presenting=ours.presenting if ours and ours_shown else None)
        jobs.append(ScanJob(tuple(names), opts))
    return jobs


def scan_config(
    config: Config,
    *,
    nameservers: Sequence[tuple[str, int]] | None,
    verifier: Verifier,
    deployment_only: bool = False,
    ours: OurCertificate | None = None,
    acceptance_only: bool = False,
) -> ScanReport:
    """Run every job of the config concurrently (:func:`scanner.live.run_scans`) and merge.

    Ctrl-C / SIGTERM stop the run; finished endpoints are kept and the report is marked
    interrupted (UNKNOWN), as ``fedscan scan`` does. ``verifier`` is the command's (built with
    :func:`scanner.monitor.policy_for` of this config): every view of the run, and a second run
    of the same command (readiness's acceptance probe), verify with it.
    """
    from scanner.discovery import make_resolver

    now = verifier.now
    jobs = plan_jobs(config, verifier.policy, ours)
    if deployment_only:
        jobs = [j for j in jobs if j.options.deployment.declared]
    if acceptance_only:  # readiness: "Accepted by"
        jobs = [j for j in jobs if j.options.presenting is not None]
    resolver = make_resolver(nameservers, timeout=min(config.scan.timeout, 5.0))
    # one concurrency budget and one address cache for the whole run, whatever the views
    shared = shared_limits(jobs[0].options) if jobs else None
    scans = [
        Scan(j.domains, j.options, resolver=resolver, verifier=verifier, shared=shared)
        for j in jobs
    ]
    started = dt.datetime.now(dt.UTC)
    interrupted = run_scans(scans)
    return merge_reports([s.report for s in scans], now=now, started=started, interrupted=interrupted,
                         deployment=deployment_json(config))
