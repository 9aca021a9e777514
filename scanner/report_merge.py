"""Merging the ``jsonl`` outputs of shard runs into one report (``fedscan report merge``).

Theory of this module
---------------------
* A shard's ``jsonl`` is self-describing: ``endpoint`` lines as endpoints finish, a ``domain``
  line when a domain is complete (its endpoints are not repeated there), and a ``summary`` line
  at the end. Shards of one census are disjoint sets of domains (``--shard K/N``), so a merge
  is a concatenation plus a recomputation of everything that spans domains.
* Nothing is taken on trust from a shard's summary except times and the deployment: the
  overall status, the exit code and the endpoint counts are recomputed from the domain and
  endpoint lines. A shard without a summary line (killed, out of time; its last line may be
  cut mid-write, and is then dropped) or that says it was
  interrupted makes the merged report ``interrupted``, hence at least UNKNOWN (CRITICAL still
  ranks above it, as in a single scan): a census with a missing piece must never read as OK.
* Pure: lines in, a dict of the report schema out. Reading files is the caller's job; bad
  input raises :class:`MergeError` naming the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from scanner.findings import Status, worst
from scanner.results import SCHEMA_VERSION


class MergeError(ValueError):
    """A shard output that cannot be merged, with a one-line reason."""


CUT: Final = "cut"  # the kind of a last line cut mid-write (see :func:`records`)


@dataclass(frozen=True, slots=True)
class Record:
    """One line of a ``jsonl`` output, checked: its kind, its domain (None for the summary)."""

    number: int  # 1-based line number, for FILE:LINE errors
    kind: str  # "endpoint", "domain", "summary", or CUT
    obj: dict[str, Any]
    domain: str | None


def records(source: str, lines: Iterable[str], error: type[ValueError],
            hint: str = "") -> Iterator[Record]:
    """The lines of a ``fedscan scan --format jsonl`` output, checked, for ``report merge``
    and ``scan --resume``: what is not such a line is ``error`` ("FILE:LINE: why").

    A line that does not parse is ``error`` ("FILE:LINE: not JSON (why)" + ``hint``), except
    the last one when it has no newline: its writer was killed mid-line (a full disk, a copy
    cut short), which is how a cut output ends, so it comes as a record of kind :data:`CUT`.
    Any line after it would make it damage after all, and raises.
    """
    for number, obj in _json_lines(source, lines, error, hint):
        where = f"{source}:{number}"
        if obj is None:
            yield Record(number, CUT, {}, None)
            continue
        if not isinstance(obj, dict) or "type" not in obj:
            raise error(f"{where}: not a fedscan jsonl line (no 'type')")
        kind = obj["type"]
        if kind == "summary":
            if obj.get("schema_version") != SCHEMA_VERSION:
                raise error(f"{where}: schema_version {obj.get('schema_version')!r}, "
                            f"expected {SCHEMA_VERSION}")
            yield Record(number, kind, obj, None)
            continue
        if kind not in ("endpoint", "domain"):
            raise error(f"{where}: unknown line type {kind!r}")
        name = obj.get("domain")
        if not isinstance(name, str):
            raise error(f"{where}: {kind} line without a domain")
        yield Record(number, kind, obj, name)


def _json_lines(source: str, lines: Iterable[str], error: type[ValueError],
                hint: str) -> Iterator[tuple[int, object]]:
    """``(line number, parsed JSON)`` of each non-blank line; ``None`` for a cut last line."""
    cut: ValueError | None = None
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        if cut is not None:
            raise cut
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            failure = error(f"{source}:{number}: not JSON ({exc.msg}){hint}")
            if raw.endswith("\n"):
                raise failure from None
            cut = failure
            continue
        yield number, obj
    if cut is not None:
        yield 0, None


@dataclass
class _Domain:
    source: str
    shard: int  # which add() call: the same file given twice is two shards with one name
    line: dict[str, Any] | None = None
    endpoints: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Merger:
    """Feed it each shard's lines with :meth:`add`, then take :meth:`report`."""

    domains: dict[str, _Domain] = field(default_factory=dict)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # sources without a summary line

    def add(self, source: str, lines: Iterable[str]) -> None:
        shard = len(self.sources)
        self.sources.append(source)
        summary = False
        for record in records(source, lines, MergeError):
            if record.kind == CUT:
                continue  # the shard stopped a line earlier (and has no summary either)
            number, kind, obj, name = record.number, record.kind, record.obj, record.domain
            if name is None:  # the summary
                summary = True
                self.summaries.append(obj)
                continue
            entry = self.domains.get(name)
            if entry is None:
                entry = self.domains[name] = _Domain(source, shard)
            elif entry.shard != shard:
                # by content, not by name: the same path twice (overlapping globs) or a copy
                again = f" (argument {shard + 1})" if source == entry.source else ""
                raise MergeError(f"{name} is in both {entry.source} and {source}{again}: shards must "
                                 "not overlap (the same file given twice, or overlapping globs?)")
            elif entry.line is not None:
                raise MergeError(f"{source}:{number}: {name} is complete already (its domain line "
                                 "came earlier): a shard must not hold a domain twice")
            if kind == "domain":
                entry.line = obj
            else:
                entry.endpoints.append(_strip_type(obj))
        if not summary:
            self.incomplete.append(source)

    def report(self) -> dict[str, Any]:
        domains = [self._domain_json(name, d) for name, d in self.domains.items()]
        counts = {s.name: 0 for s in Status}
        for d in domains:
            for e in d["endpoints"]:
                counts[e["status"]] += 1
        interrupted = bool(self.incomplete) or any(s.get("interrupted") for s in self.summaries) or any(
            d.get("incomplete") for d in domains
        )
        statuses = [Status[d["status"]] for d in domains]
        if interrupted:
            statuses.append(Status.UNKNOWN)
        status = worst(statuses)
        started = [s["started_at"] for s in self.summaries if s.get("started_at")]
        finished = [s["finished_at"] for s in self.summaries if s.get("finished_at")]
        evaluated = sorted({s["evaluated_at"] for s in self.summaries if s.get("evaluated_at")})
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": "fedscan",
            "started_at": min(started) if started else None,
            "finished_at": max(finished) if finished and not self.incomplete else None,
            # always a string (schema_version 1 never changes a field's type): the earliest;
            # shards judged at different times list every time under "shards"
            "evaluated_at": evaluated[0] if evaluated else None,
            "interrupted": interrupted,
            "status": status.name,
            "exit_code": int(status),
            "endpoint_counts": counts,
            "deployment": next((s.get("deployment") for s in self.summaries), None),
            "options": next((s.get("options") for s in self.summaries), None),
            "shards": {"files": len(self.sources), "incomplete": list(self.incomplete),
                       "evaluated_at": evaluated},
            "domains": domains,
        }

    @staticmethod
    def _domain_json(name: str, d: _Domain) -> dict[str, Any]:
        endpoint_statuses = [status_named(e.get("status")) for e in d.endpoints]
        if d.line is None:  # the shard stopped before the domain was complete
            return {"domain": name, "status": worst([*endpoint_statuses, Status.UNKNOWN]).name,
                    "findings": [], "services": [], "endpoints": d.endpoints, "incomplete": True}
        line = _strip_type(d.line)
        expected = line.pop("endpoint_count", len(d.endpoints))
        status = worst([status_named(line.get("status")), *endpoint_statuses])
        out = {**line, "status": status.name, "endpoints": d.endpoints}
        if expected != len(d.endpoints):
            out["incomplete"] = True
        return out


def _strip_type(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "type"}


def status_named(name: object) -> Status:
    """A status as a saved report names it; UNKNOWN for anything else (never better)."""
    try:
        return Status[str(name)]
    except KeyError:
        return Status.UNKNOWN


def merge(shards: Iterable[tuple[str, Iterable[str]]]) -> dict[str, Any]:
    """Merge ``(source name, lines)`` pairs into one report in the scan JSON schema."""
    merger = Merger()
    for source, lines in shards:
        merger.add(source, lines)
    return merger.report()
