"""``fedscan scan --resume FILE``: which domains an earlier, cut-short jsonl output finished,
what is copied, what the summary counts, and the one-line errors for what cannot be resumed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scanner.findings import Status
from scanner.resume import ResumeError, read

OK_ENDPOINT = {"status": "OK", "service": "sip-federation", "findings": []}


def line(kind: str, domain: str | None, **fields: Any) -> str:
    obj: dict[str, Any] = {"type": kind, **fields}
    if domain is not None:
        obj["domain"] = domain
    return json.dumps(obj) + "\n"


def domain_line(name: str, count: int, *, interrupted: bool = False, status: str = "OK",
                findings: list[dict[str, Any]] | None = None,
                services: list[dict[str, Any]] | None = None) -> str:
    return line("domain", name, status=status, interrupted=interrupted, findings=findings or [],
                services=services or [], endpoint_count=count)


def earlier_output() -> list[str]:
    """a: finished; b: cut off before its domain line; c: interrupted; d: one endpoint short;
    e: finished, with a CRITICAL endpoint and a service finding."""
    return [
        line("endpoint", "a.test", **OK_ENDPOINT),
        line("endpoint", "b.test", **OK_ENDPOINT),
        line("endpoint", "a.test", **OK_ENDPOINT),
        line("endpoint", "e.test", **{**OK_ENDPOINT, "status": "CRITICAL"}),
        domain_line("a.test", 2),
        line("endpoint", "d.test", **OK_ENDPOINT),
        domain_line("c.test", 0, interrupted=True, status="UNKNOWN"),
        domain_line("d.test", 2),
        line("endpoint", "e.test", **OK_ENDPOINT),
        domain_line("e.test", 2, status="CRITICAL", services=[{
            "service": "xmpp-server", "srv": [], "hosted_microsoft_365": False,
            "findings": [{"code": "srv-missing", "severity": "warning",
                          "message": "no _xmpp-server._tcp record", "details": {}}]}]),
    ]


def test_only_domains_whose_domain_line_counts_every_endpoint_are_carried() -> None:
    lines = earlier_output()
    carried = read("old.jsonl", lines)
    assert list(carried.finished) == ["a.test", "e.test"]
    assert not carried.dropped_tail
    copied = list(carried.lines(lines, {"a.test"}))
    assert copied == [lines[0], lines[2], lines[4]]  # a's lines, unchanged, in their order
    assert list(carried.lines(lines, {"a.test", "e.test"})) == [lines[i] for i in (0, 2, 3, 4, 8, 9)]


def test_a_carried_domain_counts_in_the_summary_as_it_was_judged() -> None:
    carried = read("old.jsonl", earlier_output())
    (e,) = carried.domain_results({"e.test"})
    assert e.domain == "e.test" and e.finished and not e.interrupted
    assert e.endpoint_counts() == {Status.CRITICAL: 1, Status.OK: 1}
    assert e.status is Status.CRITICAL
    assert [f.code for f in e.all_findings] == ["srv-missing"]
    (a,) = carried.domain_results({"a.test", "b.test"})
    assert a.status is Status.OK and a.endpoint_counts() == {Status.OK: 2}


def test_the_last_line_cut_mid_write_is_dropped() -> None:
    lines = [*earlier_output(), '{"type":"endpoint","domain":"f.test","sta']
    carried = read("old.jsonl", lines)
    assert carried.dropped_tail
    assert list(carried.finished) == ["a.test", "e.test"]
    assert all(not copied.startswith('{"type":"endpoint","domain":"f.test"')
               for copied in carried.lines(lines, {"a.test", "e.test", "f.test"}))


def test_a_cut_line_with_lines_after_it_is_damage() -> None:
    lines = [*earlier_output()[:2], '{"type":"endpoint","dom', *earlier_output()[2:]]
    with pytest.raises(ResumeError, match=r"^old\.jsonl:3: not JSON \(Unterminated string"):
        read("old.jsonl", lines)


@pytest.mark.parametrize(("bad", "message"), [
    ("not json at all\n", "old.jsonl:4: not JSON (Expecting value): not a fedscan --format jsonl output"),
    ('["a list"]\n', "old.jsonl:4: not a fedscan jsonl line (no 'type')"),
    ('{"type":"host"}\n', "old.jsonl:4: unknown line type 'host'"),
    ('{"type":"endpoint","status":"OK"}\n', "old.jsonl:4: endpoint line without a domain"),
    ('{"type":"summary","schema_version":2}\n', "old.jsonl:4: schema_version 2, expected 1"),
    (line("endpoint", "a.test", **OK_ENDPOINT),
     "old.jsonl:4: a.test is complete already (its domain line came earlier): two outputs joined? "
     "Resume from one"),
])
def test_what_cannot_be_resumed_is_named_by_file_and_line(bad: str, message: str) -> None:
    first = earlier_output()
    lines = [first[0], first[2], first[4], bad]  # a.test, finished; then the bad line (line 4)
    with pytest.raises(ResumeError) as caught:
        read("old.jsonl", lines)
    assert str(caught.value) == message


def fedscan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scanner", *args], capture_output=True, text=True,
                          check=False, timeout=60, stdin=subprocess.DEVNULL)


def test_resume_is_for_jsonl_output_only(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    old.write_text("".join(earlier_output()))
    proc = fedscan("scan", "a.test", "--resume", str(old), "--nameserver", "127.0.0.1:9")
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "--resume needs --format jsonl: it continues a jsonl output, whose finished domains are on "
        "their own lines")
    assert proc.stdout == ""


def test_a_damaged_or_missing_file_is_one_line(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    old.write_text("".join(earlier_output()[:3]) + "garbage\n" + earlier_output()[4])
    proc = fedscan("scan", "a.test", "--format", "jsonl", "--resume", str(old), "--nameserver", "127.0.0.1:9")
    assert proc.returncode == 3
    assert proc.stderr.strip().endswith(f"{old}:4: not JSON (Expecting value): not a fedscan --format "
                                        "jsonl output")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    gone = fedscan("scan", "a.test", "--format", "jsonl", "--resume", str(tmp_path / "none.jsonl"),
                   "--nameserver", "127.0.0.1:9")
    assert gone.returncode == 3 and gone.stderr.strip().endswith("No such file or directory")
    assert len(gone.stderr.strip().splitlines()) == 1
    stdin = fedscan("scan", "a.test", "--format", "jsonl", "--resume", "-", "--nameserver", "127.0.0.1:9")
    assert stdin.returncode == 3 and stdin.stderr.strip().endswith(
        "--resume needs a file, not standard input: it is read twice (what was finished, then "
        "those lines)")


def test_resuming_into_the_same_file_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    text = "".join(earlier_output())
    old.write_text(text)
    with old.open("a") as out:  # `>> old.jsonl`: a shell's `>` would already have emptied it
        proc = subprocess.run([sys.executable, "-m", "scanner", "scan", "a.test", "--format", "jsonl",
                               "--resume", str(old), "--nameserver", "127.0.0.1:9"], stdout=out,
                              stderr=subprocess.PIPE, text=True, check=False, timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.strip().endswith(f"--resume {old}: that is also where this output goes (a shell "
                                        "empties it before fedscan starts): write to a new file")
    assert old.read_text() == text
