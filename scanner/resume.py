"""Resuming a census from its own cut-short ``jsonl`` output (``fedscan scan --resume FILE``).

Theory of this module
---------------------
* A census of a hundred thousand domains runs for an hour or more; killed at 90 % (a reboot,
  an out-of-memory kill, Ctrl-C) it must not start over. Its ``jsonl`` output already says
  which domains were finished: each has a ``domain`` line, written after all its endpoint
  lines, that counts them (``endpoint_count``). Those domains are *carried*: their lines are
  copied to the new output unchanged, and only the others are scanned again.
* A domain is finished only when its domain line is there, does not say ``interrupted``,
  and as many endpoint lines came before it as it counts. Anything less (the endpoints of a
  domain cut off mid-scan) is scanned again from the start: a domain is judged as a whole
  (pool findings compare its nodes), never from two runs' halves.
* The output of a resumed scan is one complete report, as if the census had run once: the
  carried lines, the new lines, and a summary whose counts, status and exit code cover both
  (:meth:`Carried.domain_results` gives the summary what it needs of each carried domain).
* Bad input is named by ``file:line`` (:class:`ResumeError`), except the last line of a file
  whose writer was killed mid-line (no newline at the end): that one is expected, and dropped.
* Pure: lines in. Memory stays per domain, never per line of text: the lines to copy are
  found again by their number when they are copied (:meth:`Carried.lines`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from scanner.findings import Status
from scanner.report_merge import CUT, Record, records, status_named
from scanner.results import DomainResult, ServiceResult, read_findings


class ResumeError(ValueError):
    """An earlier output that cannot be resumed from, with a one-line reason."""


@dataclass
class _Seen:
    """What the earlier output said of one domain."""

    endpoints: Counter[Status] = field(default_factory=Counter)
    line: dict[str, Any] | None = None  # its domain line, once seen


@dataclass
class Carried:
    """The domains an earlier output finished, and where its lines are."""

    finished: dict[str, DomainResult]  # by name, in the order their domain lines came
    owners: list[str | None]  # for each line of the source (0-based), the domain it belongs to
    dropped_tail: bool = False  # the last line was cut mid-write and was dropped

    def lines(self, source_lines: Iterable[str], keep: set[str]) -> Iterator[str]:
        """The lines of the finished domains in ``keep``, from a second reading of the same
        source, unchanged and in their order (each ends with a newline)."""
        for number, raw in enumerate(source_lines):
            owner = self.owners[number] if number < len(self.owners) else None
            if owner is not None and owner in keep:
                yield raw if raw.endswith("\n") else raw + "\n"

    def domain_results(self, keep: set[str]) -> list[DomainResult]:
        """The carried domains in ``keep``, in their order, as the summary counts them."""
        return [result for name, result in self.finished.items() if name in keep]


@dataclass(frozen=True)
class Resumed:
    """What a resumed scan writes before and counts after its own results: the carried
    lines (read again from the source when written) and the carried domains."""

    lines: Iterable[str]
    domains: Sequence[DomainResult]


def read(source: str, lines: Iterable[str]) -> Carried:
    """Read an earlier ``jsonl`` output of ``fedscan scan`` (complete or cut short)."""
    seen: dict[str, _Seen] = {}
    done: list[str] = []  # the domains with a domain line, in its order
    owners: list[str | None] = []
    dropped = False
    for record in records(source, lines, ResumeError, ": not a fedscan --format jsonl output"):
        if record.kind == CUT:
            dropped = True
            continue
        owners.extend([None] * (record.number - len(owners)))
        owners[record.number - 1] = _place(source, record, seen, done)
    finished = {name: _domain_result(name, seen[name]) for name in done if _complete(seen[name])}
    return Carried(finished, [o if o in finished else None for o in owners], dropped)


def _place(source: str, record: Record, seen: dict[str, _Seen], done: list[str]) -> str | None:
    """Record one line; the domain it belongs to (None: the summary)."""
    name = record.domain
    if name is None:
        return None
    if not name:
        raise ResumeError(f"{source}:{record.number}: {record.kind} line without a domain")
    s = seen.setdefault(name, _Seen())
    if s.line is not None:
        raise ResumeError(f"{source}:{record.number}: {name} is complete already (its domain line "
                          "came earlier): two outputs joined? Resume from one")
    if record.kind == "domain":
        s.line = record.obj
        done.append(name)
    else:
        s.endpoints[status_named(record.obj.get("status"))] += 1
    return name


def _complete(s: _Seen) -> bool:
    line = s.line
    assert line is not None
    count = line.get("endpoint_count")
    return (line.get("interrupted") is False and isinstance(count, int)
            and not isinstance(count, bool) and count == sum(s.endpoints.values()))


def _domain_result(name: str, s: _Seen) -> DomainResult:
    """The domain as the summary sees it: its findings, its services' findings, and its
    endpoints' statuses (the endpoints themselves were streamed out long ago)."""
    line = s.line
    assert line is not None
    services = []
    for item in line.get("services") or []:
        if isinstance(item, dict) and isinstance(item.get("service"), str):
            services.append(ServiceResult(item["service"], (), tuple(read_findings(item.get("findings"))),
                                          item.get("hosted_microsoft_365") is True))
    return DomainResult(name, services=services, findings=read_findings(line.get("findings")),
                        released=dict(s.endpoints), finished=True)
