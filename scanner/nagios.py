"""Monitoring-plugin output (Nagios, Icinga, Naemon, Sensu): one status line, perfdata, long text.

Theory of this module
---------------------
* The first line is what a pager shows, so it says the status, how many endpoints are in
  which state, any domain-wide (DNS) problem that no endpoint shows, the nearest certificate
  expiry and whether anything changed — in that order, and nothing else::

      FEDSCAN CRITICAL - 3 critical, 1 warning of 22 endpoints; nearest expiry 12 days (sip.contoso.test)

* Perfdata follows the plugin guidelines: ``'label'=value[UOM];[warn];[crit];[min];[max]``,
  space separated, after one ``|``. Days are unitless (``d`` is no valid UOM); the expiry
  thresholds are ranges (``30:`` = alert below 30) so a grapher draws them correctly.
* Long text lines follow: changes since the last run first (they are what changed the status),
  then findings worst first. ``|`` is reserved by the format, so it is replaced in everything
  that comes from the network or a certificate.
* Pure: :func:`render` returns the text; the exit code is the run's status.
"""

from __future__ import annotations

import datetime as dt

from scanner.findings import Status
from scanner.monitor import MonitorResult, problem_lines
from scanner.results import ScanReport
from scanner.safe_text import one_line


def render(result: MonitorResult, *, warn_days: int, crit_days: int) -> str:
    report = result.report
    head = f"FEDSCAN {result.status.name} - {status_summary(result)}"
    lines = [f"{_clean(head)} | {perfdata(result, warn_days=warn_days, crit_days=crit_days)}"]
    if result.history_problem:
        lines.append(_clean(result.history_problem))
    lines += [_clean(f"CHANGED: {c.message}") for c in result.changes]
    lines += [_clean(p) for p in problem_lines(report)]
    if result.suppressed:
        lines.append(f"{len(result.suppressed)} finding(s) suppressed by the config")
    return "\n".join(lines) + "\n"


def status_summary(result: MonitorResult) -> str:
    report = result.report
    parts = [_endpoint_part(report)]
    domain_problems = _domain_problems(report)
    if domain_problems:
        shown = ", ".join(domain_problems[:3])
        more = f" and {len(domain_problems) - 3} more" if len(domain_problems) > 3 else ""
        parts.append(f"domain-level: {shown}{more}")
    nearest = nearest_expiry(report)
    if nearest is not None:
        days, target = nearest
        unit = "day" if abs(days) == 1 else "days"
        if days < 0:
            parts.append(f"expired {-days} {unit} ago ({target})")
        else:
            parts.append(f"nearest expiry {days} {unit} ({target})")
    if result.changes:
        n = len(result.changes)
        parts.append(f"{n} change{'' if n == 1 else 's'} since last run")
    if report.interrupted:
        parts.append("interrupted")
    return "; ".join(parts)


def _endpoint_part(report: ScanReport) -> str:
    counts = report.counts()
    total = len(report.endpoints)
    if total == 0:
        return "no endpoints"
    bad = [(s, counts[s.name]) for s in (Status.CRITICAL, Status.UNKNOWN, Status.WARNING) if counts[s.name]]
    if not bad:
        return f"all {total} endpoint{'' if total == 1 else 's'} OK"
    return ", ".join(f"{n} {s.name.lower()}" for s, n in bad) + f" of {total} endpoints"


def _domain_problems(report: ScanReport) -> list[str]:
    """Non-OK findings outside any endpoint ("srv-missing (fineartschool.test)"), worst first."""
    found: list[tuple[int, str]] = []
    for d in report.domains:
        for f in d.all_findings:
            if f.status is not Status.OK:
                text = f"{f.code} ({d.domain})"
                if all(t != text for _, t in found):
                    found.append((f.status.rank, text))
    return [t for _, t in sorted(found, key=lambda x: -x[0])]


def nearest_expiry(report: ScanReport) -> tuple[int, str] | None:
    """Whole days to the soonest leaf notAfter among all endpoints, and that endpoint's target."""
    best: tuple[dt.datetime, str] | None = None
    for e in report.endpoints:
        t = e.not_after
        if t is not None and (best is None or t < best[0]):
            best = (t, e.endpoint.target)
    if best is None:
        return None
    return (best[0] - report.evaluated_at) // dt.timedelta(days=1), best[1]


def perfdata(result: MonitorResult, *, warn_days: int, crit_days: int) -> str:
    report = result.report
    counts = report.counts()
    total = len(report.endpoints)
    items = []
    nearest = nearest_expiry(report)
    if nearest is not None:
        items.append(f"nearest_expiry_days={nearest[0]};{warn_days}:;{crit_days}:")
    for s in (Status.CRITICAL, Status.WARNING, Status.UNKNOWN, Status.OK):
        items.append(f"{s.name.lower()}={counts[s.name]};;;0;{total}")
    items.append(f"suppressed={len(result.suppressed)};;;0")
    items.append(f"changes={len(result.changes)};;;0")
    items.append(f"duration={result.duration:.3f}s;;;0")
    return " ".join(items)


def _clean(text: str) -> str:
    """``|`` starts perfdata; a newline would forge a line; other controls drive terminals."""
    return one_line(text.replace("|", "/"))
