"""Run history (one JSON line per monitor run) and the changes since the previous run.

Theory of this module
---------------------
* A monitoring user reads *what changed* before anything else: "the certificate on
  sip.contoso.com was replaced and now lacks clientAuth" is the page; the full report is the
  evidence. So each run leaves a compact snapshot (:class:`Snapshot`) and is compared with the
  last one (:func:`diff`), a pure function over two snapshots.
* A snapshot keeps per endpoint only what a change alert needs: status, leaf SHA-256,
  notAfter and the active finding codes; per domain the codes of domain-wide findings (DNS,
  pool mismatch, lapsed suppressions). An endpoint is keyed by domain, service, SRV target and
  address, without the port: a pool node is its own endpoint, and a port is a property of it.
* The file is append-only JSON Lines, so ``tail -1`` and ``jq`` read it, and a crash mid-write
  can only damage the last line. A damaged last line is reported in one line and treated as
  "no previous run"; it never stops the monitoring run, and the next line starts on a line of
  its own.
* Two runs on one history file (cron's, and an administrator's by hand) must not both diff
  against the same previous line and both append: :func:`locked` holds an exclusive advisory
  lock (``flock``) on the file from reading the last line to appending the new one, so the
  second run compares with the first. The scans themselves run unlocked; the critical section
  is milliseconds. A run during whose scan the last recorded run began (they overlapped, and
  the later one finished first) neither compares nor appends (:func:`newer_recorded`): its
  changes would all be backwards. Like a damaged file, a lock held past :data:`LOCK_TIMEOUT`
  or a file system that cannot lock is one warning: the run's report and metrics go out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.isotime import parse_iso
from scanner.results import EndpointResult, ScanReport, iso

HISTORY_VERSION = 1
_TAIL_BLOCK = 64 * 1024
LOCK_TIMEOUT = 30.0  # seconds; a run holds the lock for milliseconds
_LOCK_POLL = 0.05


class HistoryLocked(Exception):
    """Another run has held the history file's lock for longer than :data:`LOCK_TIMEOUT`."""


@contextlib.contextmanager
def locked(path: Path, timeout: float | None = None) -> Iterator[str | None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` body.

    Yields None when the lock is held, or one line saying why the body runs unlocked: no
    ``fcntl`` (Windows), or a file system that refuses locks (NFSv3 without lockd, some
    FUSE/SMB mounts) — a history without a lock is still better than none. Raises
    :class:`HistoryLocked` after ``timeout`` seconds (default :data:`LOCK_TIMEOUT`) and
    ``OSError`` if the file cannot be opened.
    """
    if sys.platform == "win32":  # pragma: no cover - no flock
        yield f"history {path}: not locked (no flock on this system)"
        return
    import fcntl
    wait = LOCK_TIMEOUT if timeout is None else timeout
    limit = time.monotonic() + wait
    # 0o666 less the umask, as open() would: cron and an administrator may share a group
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        unlocked: str | None = None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= limit:
                    raise HistoryLocked(f"history {path}: still locked by another fedscan run "
                                        f"after {wait:g} s") from None
                time.sleep(_LOCK_POLL)
            except OSError as exc:  # ENOLCK, EOPNOTSUPP...: the file system cannot lock
                unlocked = f"history {path}: not locked ({exc.strerror or exc})"
                break
        yield unlocked
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@dataclass(frozen=True)
class EndpointState:
    status: str
    sha256: str | None
    not_after: str | None
    codes: tuple[str, ...]  # sorted, with repeats
    port: int | None = None
    accepted: str | None = None  # the partner's verdict on our certificate, when it was shown

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "sha256": self.sha256,
            "not_after": self.not_after,
            "codes": list(self.codes),
            "port": self.port,
            "accepted": self.accepted,
        }


@dataclass(frozen=True)
class Snapshot:
    at: str  # evaluation time (ISO 8601 Z)
    status: str
    endpoints: Mapping[str, EndpointState]
    domains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # domain-wide codes
    finished: str | None = None
    started: str | None = None  # wall clock at the start of the scan; absent in older lines

    def to_json(self) -> dict[str, Any]:
        return {
            "v": HISTORY_VERSION,
            "at": self.at,
            "finished": self.finished,
            "started": self.started,
            "status": self.status,
            "domains": {d: list(c) for d, c in self.domains.items()},
            "endpoints": {k: s.to_json() for k, s in self.endpoints.items()},
        }

    @classmethod
    def from_json(cls, data: Any) -> Snapshot:
        """Parse one history line; ``ValueError`` for anything that is not one."""
        try:
            if data.get("v") != HISTORY_VERSION:
                raise ValueError(f"unknown history version {data.get('v')!r}")
            endpoints = {
                str(k): EndpointState(
                    str(v["status"]),
                    v.get("sha256"),
                    v.get("not_after"),
                    tuple(str(c) for c in v.get("codes", ())),
                    v.get("port"),
                    v.get("accepted"),
                )
                for k, v in data["endpoints"].items()
            }
            domains = {str(d): tuple(str(c) for c in codes) for d, codes in data.get("domains", {}).items()}
            return cls(str(data["at"]), str(data["status"]), endpoints, domains,
                       _text_or_none(data, "finished"), _text_or_none(data, "started"))
        except (AttributeError, KeyError, TypeError) as exc:
            raise ValueError(f"not a history record ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class Change:
    """One thing that differs from the previous run, with a sentence an operator can act on."""

    kind: str  # endpoint-appeared | endpoint-vanished | certificate-replaced | finding-new |
    # finding-resolved | status-changed | overall-status-changed | domain-removed |
    # acceptance-lost | acceptance-regained (a partner's verdict on our certificate)
    domain: str | None
    endpoint: str | None  # endpoint key, None for domain-wide and run-wide changes
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "domain": self.domain,
            "endpoint": self.endpoint,
            "message": self.message,
            "details": dict(self.details),
        }


def endpoint_key(result: EndpointResult) -> str:
    e = result.endpoint
    return f"{e.domain}/{e.service}/{e.target}/{e.address}"


def endpoint_label(key: str) -> str:
    """``contoso.com/sip-federation/sip.contoso.com/192.0.2.1`` → a phrase for messages."""
    parts = key.split("/", 3)
    if len(parts) != 4:
        return key
    _, service, target, address = parts
    return f"{target} [{address}] ({service})"


def snapshot(report: ScanReport) -> Snapshot:
    """The compact record of a (suppression-filtered) report."""
    endpoints: dict[str, EndpointState] = {}
    for r in report.endpoints:
        endpoints[endpoint_key(r)] = EndpointState(
            r.status.name,
            r.leaf_sha256,
            iso(r.not_after) if r.not_after else None,
            tuple(sorted(f.code for f in r.findings)),
            r.endpoint.port,
            r.acceptance.verdict if r.acceptance is not None else None,
        )
    domains = {d.domain: tuple(sorted(f.code for f in d.all_findings)) for d in report.domains}
    return Snapshot(
        iso(report.evaluated_at),
        report.status.name,
        endpoints,
        domains,
        iso(report.finished) if report.finished else None,
        iso(report.started),
    )


def newer_recorded(previous: Snapshot | None, current: Snapshot) -> bool:
    """Whether the file's last run started *during* this one (the two overlapped and the later
    one finished first): comparing would report every change backwards.

    Only an overlap counts: a last line dated after this run ended (a clock that was wrong
    once, a restored VM, skew between hosts sharing the file) is compared with as usual, or
    one bad line would stop all recording until the clock caught up with it.
    """
    if previous is None:
        return False
    begun, ended, other = _when(current.started), _when(current.finished), _when(previous.started)
    if begun is None or ended is None or other is None:  # older lines carry no 'started'
        return False
    return begun < other <= ended


def _text_or_none(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"not a history record ({key} is not text)")
    return value


def _when(text: str | None) -> dt.datetime | None:
    try:
        return parse_iso(text) if text else None
    except ValueError:
        return None


def diff(previous: Snapshot | None, current: Snapshot) -> list[Change]:
    """What changed from ``previous`` to ``current``; nothing on the first run.

    Order is the order an operator reads: the run's status, then per domain the domain-wide
    changes and each endpoint's (vanished, appeared, certificate, status, findings).
    """
    if previous is None:
        return []
    out: list[Change] = []
    if previous.status != current.status:
        out.append(Change(
            "overall-status-changed", None, None,
            f"overall status {previous.status} -> {current.status}",
            {"from": previous.status, "to": current.status},
        ))
    domains = list(dict.fromkeys([*current.domains, *previous.domains]))
    for domain in domains:
        if domain in previous.domains and domain not in current.domains:
            # taken out of the config: not an outage of its endpoints
            out.append(Change("domain-removed", domain, None,
                              f"{domain}: no longer monitored (not in this run)", {}))
            continue
        if domain in previous.domains and domain in current.domains:
            out += _code_changes(domain, None, previous.domains[domain], current.domains[domain],
                                 f"{domain}")
        keys = [k for k in dict.fromkeys([*previous.endpoints, *current.endpoints])
                if k.split("/", 1)[0] == domain]
        for key in sorted(keys):
            out += _endpoint_changes(domain, key, previous.endpoints.get(key), current.endpoints.get(key))
    # endpoints of domains that are in neither domain map (hand-built snapshots)
    known = set(domains)
    for key in sorted(set(previous.endpoints) | set(current.endpoints)):
        domain = key.split("/", 1)[0]
        if domain not in known:
            out += _endpoint_changes(domain, key, previous.endpoints.get(key), current.endpoints.get(key))
    return out


def _endpoint_changes(
    domain: str, key: str, before: EndpointState | None, after: EndpointState | None
) -> list[Change]:
    where = endpoint_label(key)
    if before is None and after is not None:
        codes = ", ".join(after.codes) or "no findings"
        return [Change("endpoint-appeared", domain, key,
                       f"{domain}: new endpoint {where}: {after.status} ({codes})",
                       {"status": after.status, "codes": list(after.codes)})]
    if after is None and before is not None:
        return [Change("endpoint-vanished", domain, key,
                       f"{domain}: endpoint {where} is gone (was {before.status})",
                       {"status": before.status})]
    assert before is not None and after is not None
    out: list[Change] = []
    if before.sha256 != after.sha256 and before.sha256 and after.sha256:
        out.append(Change(
            "certificate-replaced", domain, key,
            f"{domain}: certificate on {where} replaced (notAfter {before.not_after} -> "
            f"{after.not_after})",
            {"from_sha256": before.sha256, "to_sha256": after.sha256,
             "from_not_after": before.not_after, "to_not_after": after.not_after},
        ))
    if before.accepted == "accepted" and after.accepted in ("refused", "not-reached", "unknown"):
        why = ", ".join(c for c in after.codes if c not in before.codes) or after.accepted
        out.append(Change(
            "acceptance-lost", domain, key,
            f"{domain}: partner {domain} stopped accepting our certificate on {where} ({why})",
            {"from": before.accepted, "to": after.accepted},
        ))
    elif after.accepted == "accepted" and before.accepted in ("refused", "not-reached", "unknown"):
        out.append(Change(
            "acceptance-regained", domain, key,
            f"{domain}: partner {domain} accepts our certificate again on {where}",
            {"from": before.accepted, "to": after.accepted},
        ))
    if before.status != after.status:
        out.append(Change(
            "status-changed", domain, key, f"{domain}: {where} {before.status} -> {after.status}",
            {"from": before.status, "to": after.status},
        ))
    out += _code_changes(domain, key, before.codes, after.codes, f"{domain}: {where}")
    return out


def _code_changes(
    domain: str, key: str | None, before: Iterable[str], after: Iterable[str], where: str
) -> list[Change]:
    b, a = Counter(before), Counter(after)
    new, gone = a - b, b - a
    out = [Change("finding-new", domain, key, f"{where}: new finding {code}", {"code": code})
           for code in sorted(new.elements())]
    out += [Change("finding-resolved", domain, key, f"{where}: resolved {code}", {"code": code})
            for code in sorted(gone.elements())]
    return out


# ------------------------------------------------------------------------ the file


@dataclass(frozen=True)
class PreviousRun:
    snapshot: Snapshot | None
    problem: str | None  # one line when the last line could not be read


def read_last(path: Path) -> PreviousRun:
    """The last record of the history file; a missing file is simply no previous run."""
    try:
        line = _last_line(path)
    except FileNotFoundError:
        return PreviousRun(None, None)
    except OSError as exc:
        return PreviousRun(None, f"history {path}: cannot read: {exc.strerror or exc}")
    if line is None:
        return PreviousRun(None, None)
    try:
        return PreviousRun(Snapshot.from_json(json.loads(line.decode("utf-8"))), None)
    except (ValueError, UnicodeDecodeError) as exc:
        reason = "truncated or corrupt JSON" if isinstance(exc, json.JSONDecodeError) else str(exc)
        return PreviousRun(
            None, f"history {path}: last line is unreadable ({reason}); treating as no previous run"
        )


def _last_line(path: Path) -> bytes | None:
    """The last non-empty line, reading backwards in blocks (the file only ever grows)."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        buf = b""
        pos = end
        while pos > 0:
            step = min(_TAIL_BLOCK, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + buf
            stripped = buf.rstrip(b"\r\n")
            if b"\n" in stripped:
                return stripped.rsplit(b"\n", 1)[1]
        stripped = buf.rstrip(b"\r\n")
        return stripped or None


def append(path: Path, snap: Snapshot) -> None:
    """Append one line; if the file ends mid-line (a crashed writer), start a fresh line."""
    line = json.dumps(snap.to_json(), separators=(",", ":"), sort_keys=True) + "\n"
    with path.open("ab+") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                line = "\n" + line
        fh.write(line.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())

