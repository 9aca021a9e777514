"""Prometheus text exposition of a monitoring run, for node_exporter's textfile collector.

Theory of this module
---------------------
* Cron writes, node_exporter reads at any moment: the file is written to a temporary file in
  the same directory (a name node_exporter ignores, not ``*.prom``) and renamed over the old
  one, so a scrape sees the whole previous run or the whole new one, never half a file.
* Rendering is a pure function of the run (:func:`render`); the exposition rules it keeps:
  every family has one ``# HELP`` and one ``# TYPE`` line, then its samples; label values are
  escaped (backslash, double quote, newline); no two samples of a family share a label set
  (findings of one code on one endpoint are counted, not repeated).
* Endpoint series carry ``domain, service, target, address`` (no port: a port is ephemeral in
  labs and rarely changes in life; keeping it out keeps series stable across SRV edits).
  Domain-wide findings (DNS, pool mismatch, lapsed suppressions) carry empty ``target`` and
  ``address``.
* Certificate dates are exported even when verification failed: an untrusted certificate
  still expires, and the expiry alert must keep working while the chain is being fixed.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from scanner.dane import DaneState
from scanner.findings import Status
from scanner.monitor import MonitorResult
from scanner.results import EndpointResult, ScanReport

Labels = tuple[tuple[str, str], ...]
# no sample when DANE was not checked or no TLSA is published: absence is not a state to alert on
DANE_GAUGE = {DaneState.MATCH: 0, DaneState.INSECURE: 1, DaneState.UNUSABLE: 1,
              DaneState.MISMATCH: 2, DaneState.ERROR: 3, DaneState.NO_CHAIN: 3}


@dataclass
class Family:
    name: str
    kind: str  # gauge | counter | untyped
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((tuple(labels.items()), value))

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in self.samples:
            label_text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
            lines.append(f"{self.name}{{{label_text}}} {_number(value)}" if labels
                         else f"{self.name} {_number(value)}")
        return lines


def families(result: MonitorResult) -> list[Family]:
    """Every metric family of one run, in a stable order (two runs' files compare line by
    line): per endpoint, per finding, DANE, then the run as a whole."""
    report = result.report
    return [*_endpoint_families(report), _finding_family(report), _dane_family(report),
            *_run_families(result)]


def _endpoint_families(report: ScanReport) -> list[Family]:
    """Reachability, status and the leaf's expiry of each endpoint, one loop so the four
    families list the endpoints in one order. An endpoint that presented no certificate has no
    expiry sample (there is no date to report); its outage shows in ``fedscan_endpoint_up``."""
    now = report.evaluated_at
    up = Family("fedscan_endpoint_up", "gauge",
                "1 if the endpoint completed a TLS handshake and presented a certificate, else 0.")
    status = Family("fedscan_endpoint_status", "gauge",
                    "Endpoint status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (after suppressions).")
    not_after = Family("fedscan_certificate_not_after_timestamp_seconds", "gauge",
                       "notAfter of the leaf certificate the endpoint presented, as a Unix time.")
    days = Family("fedscan_certificate_days_left", "gauge",
                  "Whole days from the evaluation time to the leaf's notAfter (negative once expired).")
    for e in report.endpoints:
        labels = _endpoint_labels(e)
        up.add(1 if e.certificate is not None else 0, **labels)
        status.add(int(e.status), **labels)
        expiry = e.not_after
        if expiry is not None:
            not_after.add(expiry.timestamp(), **labels)
            days.add((expiry - now) // dt.timedelta(days=1), **labels)
    return [up, status, not_after, days]


def _finding_family(report: ScanReport) -> Family:
    """Findings counted per place, code and severity: two findings of one code on one
    endpoint are one sample of 2, since a family may not repeat a label set."""
    found = Family("fedscan_finding", "gauge",
                   "Active (unsuppressed) findings: the number of findings of this code at this place.")
    counted: Counter[Labels] = Counter()
    for d in report.domains:
        for f in d.findings:
            counted[(*_place(d.domain, str(f.details.get("service", "")), "", ""),
                     ("code", f.code), ("severity", str(f.severity)))] += 1
        for s in d.services:
            for f in s.findings:
                counted[(*_place(d.domain, s.service, "", ""),
                         ("code", f.code), ("severity", str(f.severity)))] += 1
        for e in d.endpoints:
            for f in e.findings:
                counted[(*tuple(_endpoint_labels(e).items()),
                         ("code", f.code), ("severity", str(f.severity)))] += 1
    found.samples.extend(counted.items())
    return found


def _dane_family(report: ScanReport) -> Family:
    """Only endpoints whose DANE state is worth alerting on get a sample (:data:`DANE_GAUGE`)."""
    dane = Family("fedscan_dane_status", "gauge",
                  "DANE (TLSA) verdict, endpoints with TLSA only: 0 a secure record matches, "
                  "1 TLSA ignored by peers (not DNSSEC-secure, or no usable record), "
                  "2 mismatch (DANE peers refuse), 3 could not check (bogus, SERVFAIL, timeout).")
    for e in report.endpoints:
        if e.dane is not None and e.dane.state in DANE_GAUGE:
            dane.add(DANE_GAUGE[e.dane.state], **_endpoint_labels(e))
    return dane


def _run_families(result: MonitorResult) -> list[Family]:
    """The run itself, one sample each: the timestamp lets an alert notice that cron stopped,
    which no endpoint metric can say."""
    report = result.report
    duration = Family("fedscan_run_duration_seconds", "gauge", "Wall-clock duration of the last run.")
    duration.add(result.duration)
    stamp = Family("fedscan_run_timestamp_seconds", "gauge",
                   "When the last run finished (Unix time; alert when it gets old: cron stopped).")
    finished = report.finished or dt.datetime.now(dt.UTC)
    stamp.add(finished.timestamp())
    run_status = Family("fedscan_run_status", "gauge",
                        "Overall status of the last run: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
    run_status.add(int(report.status))
    by_status = Family("fedscan_endpoints", "gauge", "Endpoints of the last run by status.")
    counts = report.counts()
    for st in Status:
        by_status.add(counts[st.name], status=st.name)
    suppressed = Family("fedscan_suppressed_findings", "gauge",
                        "Findings hidden by a configured suppression in the last run.")
    suppressed.add(len(result.suppressed))
    changes = Family("fedscan_changes", "gauge", "Changes since the previous run (with --history).")
    changes.add(len(result.changes))
    return [duration, stamp, run_status, by_status, suppressed, changes]


def render(result: MonitorResult) -> str:
    lines: list[str] = []
    for fam in families(result):
        lines += fam.render()
    return "\n".join(lines) + "\n"


def write_textfile(path: Path, text: str) -> None:
    """Write atomically: a temp file in the same directory, fsync, then rename over ``path``."""
    directory = path.parent
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # noqa: PTH101  (node_exporter usually runs as another user)
        os.replace(tmp, path)  # noqa: PTH105
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _endpoint_labels(e: EndpointResult) -> dict[str, str]:
    ep = e.endpoint
    return {"domain": ep.domain, "service": ep.service, "target": ep.target, "address": ep.address}


def _place(domain: str, service: str, target: str, address: str) -> Iterable[tuple[str, str]]:
    return (("domain", domain), ("service", service), ("target", target), ("address", address))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 2**53):
        return str(int(value))
    return repr(float(value))
