"""The scan table for people: fits the terminal, loses nothing in a pipe, says each thing once.

Theory of this module
---------------------
* Width is decided once, by the caller (:func:`scanner.cli_common.output_width`): the
  terminal's width, or ``COLUMNS`` when output goes to a file or a pipe, or no limit at all
  (cron mail, ``> report.txt``: long lines are better than lost words). Every line is laid out
  here, by word, never cut; rich only colours it (``soft_wrap``: rich neither wraps nor crops).
* Columns give way in a fixed order when a row does not fit: the worst-finding column first
  (the findings are printed beneath anyway), then the expiry date, then the domain column
  becomes a heading line above its rows. Findings are indented lines beneath their row, their
  message wrapped at word boundaries under a hanging indent.
* Each thing is said once. Endpoints that serve one certificate with the same certificate
  findings (a consolidated Edge answering for several domains and services) get those findings
  once, under the first of them, with the list of endpoints; the others point there. An optional
  service that is simply not published (INFO ``srv-missing``) is one line for the whole scan.
* ``problems_only`` (``scan -q``): only endpoints and findings above info, and the summary.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.text import Text

from scanner.dane import DaneState
from scanner.findings import CODES, Finding, Severity, Status, worst_finding
from scanner.render import SEVERITY_STYLE, STATUS_STYLE
from scanner.results import DomainResult, EndpointResult, ScanReport
from scanner.safe_text import visible

HEADER = ("DOMAIN", "SERVICE", "TARGET", "ADDRESS", "STATUS", "EXPIRES", "WORST FINDING")
_STATUS_COLUMN = 4
# columns given up, in this order, when a row does not fit (indexes into HEADER)
_DROP_ORDER = (6, 5)
GAP = "  "
# endpoints that share a certificate and its findings: (leaf sha256, ((code, message), ...))
_GroupKey = tuple[str, tuple[tuple[str, str], ...]]


ACCEPTANCE_STYLE = {"accepted": "green", "refused": "bold red", "unknown": "yellow",
                    "not-reached": "magenta"}


def wrap(text: str, width: int | None, first: str, rest: str) -> list[str]:
    """``text`` under ``first`` then ``rest`` indents, broken only between words."""
    if width is None or len(first) + len(text) <= width:
        return [first + text]
    return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False) or [first]


def finding_lines(f: Finding, width: int | None, indent: str = "    ", code_width: int = 0) -> list[Text]:
    """``SEVERITY code message``, the message wrapped under a hanging indent."""
    label = f"{f.severity.value.upper():8} "
    code = f"{f.code:{code_width}}  " if code_width else f"{f.code}  "
    hang = indent + " " * len(label)
    head = indent + label + code
    if width is not None and len(head) > width // 2:  # narrow: the message on its own lines
        lines = [indent + label + f.code, *wrap(f.message, width, hang + "  ", hang + "  ")]
    else:
        lines = wrap(f.message, width, head, " " * len(head) if width is None or width >= 100 else hang)
    out = []
    for i, line in enumerate(lines):
        text = Text(line)
        if i == 0:
            text.stylize(SEVERITY_STYLE[f.severity], len(indent), len(indent) + len(label) - 1)
            text.stylize("bold", len(indent) + len(label), len(indent) + len(label) + len(f.code))
        out.append(text)
    return out


@dataclass
class _Row:
    domain: DomainResult
    result: EndpointResult | None  # None: the domain has no endpoint (a row of dashes)
    cells: tuple[str, ...]
    status: Status


def _address(r: EndpointResult) -> str:
    e = r.endpoint
    return f"[{e.address}]:{e.port}" if ":" in e.address else f"{e.address}:{e.port}"


def _rows(report: ScanReport, problems_only: bool) -> list[_Row]:
    rows = []
    for d in report.domains:
        if not d.endpoints:
            worst_f = worst_finding(_visible(d.all_findings, problems_only))
            label = "interrupted" if d.interrupted else (worst_f.code if worst_f else "no endpoints")
            if not problems_only or d.status is not Status.OK:
                rows.append(_Row(d, None, (d.domain, "-", "-", "-", d.status.name, "-", label), d.status))
            continue
        for r in d.endpoints:
            if problems_only and r.status is Status.OK:
                continue
            worst_f = worst_finding(r.findings)
            rows.append(_Row(d, r, (d.domain, r.endpoint.service, r.endpoint.target, _address(r),
                                    r.status.name, f"{r.not_after:%Y-%m-%d}" if r.not_after else "-",
                                    worst_f.code if worst_f else "-"), r.status))
    return rows


def _visible(findings: Iterable[Finding], problems_only: bool) -> list[Finding]:
    return [f for f in findings if not problems_only or f.severity is not Severity.INFO]


def _folded(f: Finding) -> bool:
    """An optional service that is simply not published: said once for the whole scan."""
    return f.code == "srv-missing" and f.severity is Severity.INFO


def _layout(rows: Sequence[_Row], width: int | None) -> tuple[list[int], list[int], bool]:
    """Which columns are shown, their widths, and whether the domain is a heading line."""
    shown = list(range(len(HEADER)))
    heading = False

    def widths(cols: Sequence[int]) -> list[int]:
        return [max([len(HEADER[i]), *(len(r.cells[i]) for r in rows)]) for i in cols]

    def total(cols: Sequence[int], indent: int) -> int:
        return indent + sum(widths(cols)) + len(GAP) * (len(cols) - 1)

    for drop in _DROP_ORDER:
        if width is None or total(shown, 0) <= width:
            break
        shown.remove(drop)
    if width is not None and total(shown, 0) > width:
        heading = True
        shown.remove(0)
    return shown, widths(shown), heading


def _cert_groups(report: ScanReport) -> dict[_GroupKey, list[EndpointResult]]:
    """Endpoints serving one certificate with the same certificate findings."""
    groups: dict[_GroupKey, list[EndpointResult]] = defaultdict(list)
    for r in report.endpoints:
        own = tuple((f.code, f.message) for f in r.findings if _is_cert_finding(f))
        if r.leaf_sha256 and own:
            groups[(r.leaf_sha256, own)].append(r)
    return {k: v for k, v in groups.items() if len(v) > 1}


def _is_cert_finding(f: Finding) -> bool:
    info = CODES.get(f.code)
    return info is not None and info.stage == "certificate"


def render_scan(console: Console, report: ScanReport, *, width: int | None,
                problems_only: bool = False) -> None:
    """The table, then each domain's block, then what is said once for the whole scan.

    The layout is decided from every row before the first line is printed, so that all
    domains share one set of columns; a domain with nothing to say is left out entirely.
    """
    rows = _rows(report, problems_only)
    table = _TableWriter(console, report, rows, width, problems_only)
    if rows:
        table.header()
    by_domain: dict[int, list[_Row]] = defaultdict(list)
    for row in rows:
        by_domain[id(row.domain)].append(row)
    folded: list[str] = []
    first = True
    for d in report.domains:
        domain_rows = by_domain.get(id(d), [])
        own = [f for f in table.visible(d.all_findings) if not _folded(f)]
        folded += [d.domain for f in d.all_findings if _folded(f)]
        if not domain_rows and not own and not d.interrupted:
            continue
        if not domain_rows and problems_only and d.status is Status.OK:
            continue
        if not first:
            table.emit("")
        first = False
        table.domain(d, domain_rows, own)
    table.footer(report, folded)


class _TableWriter:
    """One scan table as it is printed: the layout, decided once from every row, and the
    certificate groups already said, so that a shared certificate's findings appear under its
    first endpoint and the others only point there."""

    def __init__(self, console: Console, report: ScanReport, rows: Sequence[_Row],
                 width: int | None, problems_only: bool) -> None:
        self.console = console
        self.width = width
        self.problems_only = problems_only
        self.shown, self.widths, self.heading = _layout(rows, width)
        self.indent = "  " if self.heading else ""
        self.groups = _cert_groups(report)
        self.group_of = {id(r): key for key, members in self.groups.items() for r in members}
        self.said: set[_GroupKey] = set()
        # wide terminals align the messages in a column; narrow ones need the room
        self.code_width = 0 if width is not None and width < 100 else 28

    def emit(self, line: Text | str) -> None:
        """Every line goes out here: peer text (subjects, names, error texts) must not drive
        the terminal, and rich must neither wrap nor crop what was laid out by word."""
        text = line if isinstance(line, Text) else Text(line)
        text.plain = visible(text.plain)
        self.console.print(text, soft_wrap=True)

    def emit_wrapped(self, text: str, first: str, rest: str, style: str) -> None:
        for plain in wrap(text, self.width, first, rest):
            self.emit(Text(plain, style=style))

    def visible(self, findings: Iterable[Finding]) -> list[Finding]:
        return _visible(findings, self.problems_only)

    def cells_line(self, cells: Sequence[str], status: Status | None) -> Text:
        """The shown columns padded to their widths; the last one is not padded, so a line
        never ends in spaces."""
        line = Text(self.indent)
        for n, (i, w) in enumerate(zip(self.shown, self.widths, strict=True)):
            last = n == len(self.shown) - 1
            line.append(cells[i] if last else cells[i].ljust(w) + GAP,
                        style=STATUS_STYLE[status] if status is not None and i == _STATUS_COLUMN else None)
        return line

    def header(self) -> None:
        self.emit(Text(self.cells_line(HEADER, None).plain, style="bold"))

    def findings(self, found: Iterable[Finding]) -> None:
        """Worst first: the line a reader must act on is the one they see first."""
        for f in sorted(found, key=lambda f: -f.status.rank):
            for line in finding_lines(f, self.width, self.indent + "    ", self.code_width):
                self.emit(line)

    def domain(self, d: DomainResult, rows: Sequence[_Row], own: Sequence[Finding]) -> None:
        """A domain's endpoints, then what belongs to the domain rather than to one endpoint
        (an interrupted scan, DNS and pool findings), so a reader finds them in one place."""
        if self.heading:
            self.emit(Text(d.domain, style="bold"))
        for row in rows:
            self.endpoint(row)
        indent = self.indent
        if d.interrupted:
            self.emit_wrapped("interrupted before this domain was finished: its status is UNKNOWN",
                              indent + "  ", indent + "    ", "bold magenta")
        if own:
            self.emit(Text(f"{indent}  (DNS and pool)", style="dim"))
            self.findings(own)

    def endpoint(self, row: _Row) -> None:
        """A row and what is said beneath it; certificate findings shared with other endpoints
        are left to :meth:`shared_certificate`, which says them once."""
        self.emit(self.cells_line(row.cells, row.status))
        r = row.result
        if r is None:
            return
        indent = self.indent
        if r.acceptance is not None:  # the partner's verdict on our certificate (issue 12)
            self.emit_wrapped(r.acceptance.line(), indent + "  ", indent + "    ",
                              ACCEPTANCE_STYLE.get(r.acceptance.verdict, ""))
        key = self.group_of.get(id(r))
        mine = self.visible(r.findings)
        if key is not None:
            mine = [f for f in mine if not _is_cert_finding(f)]
        self.findings(mine)
        if not self.problems_only and (dane := _dane_text(r)):
            self.emit_wrapped(dane, indent + "    DANE  ", indent + "          ", "dim")
        if key is not None:
            self.shared_certificate(r, key)

    def shared_certificate(self, r: EndpointResult, key: _GroupKey) -> None:
        """Under the group's first endpoint: the certificate, its endpoints and its findings;
        under every other one: a pointer back there."""
        shared = [f for f in self.visible(r.findings) if _is_cert_finding(f)]
        members = self.groups[key]
        first, rest = self.indent + "    ", self.indent + "      "
        if key in self.said:
            there = members[0]
            self.emit_wrapped(f"same certificate as {there.endpoint.domain} {_address(there)} "
                              f"({len(shared)} finding{'' if len(shared) == 1 else 's'} there)",
                              first, rest, "dim")
            return
        self.said.add(key)
        self.emit_wrapped(f"certificate {key[0][:16]}… on {len(members)} endpoints "
                          f"({_members(members)}):", first, rest, "dim")
        self.findings(shared)

    def footer(self, report: ScanReport, folded: Sequence[str]) -> None:
        """What is true of the whole scan, said once after every domain: unpublished optional
        services, why DANE was not checked, and the overall status."""
        if folded and not self.problems_only:
            self.emit("")
            self.emit_wrapped(_folded_text(report, folded), "", "  ", "cyan")
        if not_checked := _dane_not_checked(report):
            self.emit("")
            self.emit_wrapped(f"DANE: {not_checked}", "", "  ", "dim")
        self.emit("")
        summary = Text("Overall: ")
        summary.append(report.status.name, style=STATUS_STYLE[report.status])
        width = None if self.width is None else self.width - len(summary)
        for n, plain in enumerate(wrap(report.summary_line().removeprefix(f"Overall: {report.status.name}"),
                                      width, "", "  ")):
            self.emit(summary + plain if n == 0 else Text(plain))


def _dane_text(r: EndpointResult) -> str | None:
    """The DANE verdict when no finding says it already (no TLSA published, nothing served)."""
    if r.dane is None or r.dane.findings or r.dane.state is DaneState.NOT_CHECKED:
        return None
    return r.dane.summary


def _dane_not_checked(report: ScanReport) -> str | None:
    """Why DANE was not checked, said once for the whole scan."""
    for r in report.endpoints:
        if r.dane is not None and r.dane.state is DaneState.NOT_CHECKED:
            return r.dane.summary
    return None


def _members(endpoints: Sequence[EndpointResult]) -> str:
    """``contoso.test sip-federation x2, xmpp-server x2; fabrikam.test sip-federation``."""
    by_domain: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in endpoints:
        by_domain[r.endpoint.domain][r.endpoint.service] += 1
    return "; ".join(
        f"{domain} " + ", ".join(f"{service} x{n}" if n > 1 else service for service, n in services.items())
        for domain, services in by_domain.items()
    )


def _folded_text(report: ScanReport, domains: Sequence[str]) -> str:
    names = list(dict.fromkeys(domains))
    services = sorted({str(f.details.get("service", "")) for d in report.domains
                       for f in d.all_findings if _folded(f)} - {""})
    what = ", ".join(services) or "an optional service"
    others = [d.domain for d in report.domains if d.domain not in names]
    if len(names) <= 3:
        where = ", ".join(names)
    elif len(others) <= 3:
        where = f"{len(names)} domains (all but {', '.join(others) or 'none'})" if others else \
            f"all {len(names)} domains"
    else:
        where = f"{len(names)} domains (listed in --format json)"
    return f"INFO srv-missing (optional, not published): {what} on {where}"
