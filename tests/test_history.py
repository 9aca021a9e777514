"""History: the pure diff between two runs, a damaged file, and a real two-run lab scenario."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from scanner import history
from scanner.cli import run
from scanner.findings import finding
from scanner.history import (
    HistoryLocked,
    Snapshot,
    append,
    diff,
    locked,
    newer_recorded,
    read_last,
    snapshot,
)
from scanner.lab.run import LabInfo
from scanner.lab.thread import lab_in_thread
from scanner.lab.zones import XMPPS, default_world
from tests.conftest import lab_net
from tests.test_monitor import AT, OWN, domain, endpoint, report, write_config


def test_first_run_has_no_changes() -> None:
    assert diff(None, snapshot(report(domain("a.test", endpoint("a.test"))))) == []


def test_diff_reports_every_kind_of_change_in_reading_order() -> None:
    before = snapshot(report(
        domain("a.test", endpoint("a.test"), endpoint("a.test", address="192.0.2.11")),
    ))
    after = snapshot(report(
        domain("a.test",
               endpoint("a.test", [finding("eku-client-auth-missing", "no clientAuth")], sha256="bb" * 32,
                        not_after="2031-01-01T00:00:00Z"),
               endpoint("a.test", address="192.0.2.12"),
               dns=[finding("srv-missing", "no SRV")]),
    ))
    got = [(c.kind, c.message) for c in diff(before, after)]
    assert got == [
        ("overall-status-changed", "overall status OK -> CRITICAL"),
        ("finding-new", "a.test: new finding srv-missing"),
        ("certificate-replaced", "a.test: certificate on sip.a.test [192.0.2.10] (sip-federation) replaced "
                                 "(notAfter 2030-03-02T00:00:00Z -> 2031-01-01T00:00:00Z)"),
        ("status-changed", "a.test: sip.a.test [192.0.2.10] (sip-federation) OK -> CRITICAL"),
        ("finding-new",
         "a.test: sip.a.test [192.0.2.10] (sip-federation): new finding eku-client-auth-missing"),
        ("endpoint-vanished", "a.test: endpoint sip.a.test [192.0.2.11] (sip-federation) is gone (was OK)"),
        ("endpoint-appeared",
         "a.test: new endpoint sip.a.test [192.0.2.12] (sip-federation): OK (no findings)"),
    ]
    back = [(c.kind, c.details.get("code")) for c in diff(after, before) if c.kind.startswith("finding")]
    assert back == [("finding-resolved", "srv-missing"), ("finding-resolved", "eku-client-auth-missing")]


def test_snapshot_round_trips_through_one_compact_line(tmp_path: Path) -> None:
    snap = snapshot(report(domain("a.test", endpoint("a.test", [finding("expired", "x")]))))
    path = tmp_path / "history.jsonl"
    append(path, snap)
    append(path, snap)
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and " " not in lines[0]
    assert json.loads(lines[0])["endpoints"]["a.test/sip-federation/sip.a.test/192.0.2.10"] == {
        "codes": ["expired"], "not_after": "2030-03-02T00:00:00Z", "port": 5061, "sha256": "aa" * 32,
        "status": "CRITICAL", "accepted": None,
    }
    assert read_last(path).snapshot == Snapshot.from_json(json.loads(lines[1]))


def test_truncated_last_line_is_no_previous_run_and_the_next_line_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    snap = snapshot(report(domain("a.test", endpoint("a.test"))))
    append(path, snap)
    with path.open("a") as fh:
        fh.write('{"v":1,"at":"2030-01-0')  # a writer killed mid-line
    prev = read_last(path)
    assert prev.snapshot is None
    assert prev.problem == (
        f"history {path}: last line is unreadable (truncated or corrupt JSON); treating as no previous run"
    )
    append(path, snap)
    assert read_last(path).snapshot == snap
    assert len(path.read_text().splitlines()) == 3


def test_wrong_record_shape_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"v": 1, "at": "x"}\n')
    assert read_last(path).problem is not None
    path.write_text("[1, 2]\n")
    assert read_last(path).problem is not None
    assert read_last(tmp_path / "missing.jsonl").snapshot is None


def test_corrupt_history_does_not_stop_a_monitor_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lab: LabInfo
) -> None:
    cfg = write_config(tmp_path / "fedscan.toml", lab, '[[partner]]\ndomain = "contoso.test"\n')
    hist = tmp_path / "h.jsonl"
    hist.write_text("garbage\n")
    assert run(["monitor", "--config", str(cfg), *AT, "--history", str(hist)]) == 0
    assert capsys.readouterr().err == (
        f"fedscan: warning: history {hist}: last line is unreadable (truncated or corrupt JSON); "
        "treating as no previous run\n"
    )
    assert read_last(hist).snapshot is not None


def test_a_run_waits_for_the_lock_and_then_diffs_against_the_run_that_held_it(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    first = snapshot(report(domain("a.test", endpoint("a.test", []))))
    second = snapshot(report(domain("a.test", endpoint("a.test", [finding("expired", "x")]))))
    append(path, first)
    holding = threading.Event()

    def other_run() -> None:  # read, think for a while, append: all under the lock
        with locked(path):
            holding.set()
            time.sleep(0.3)
            append(path, second)

    thread = threading.Thread(target=other_run)
    thread.start()
    holding.wait(5)
    with locked(path, timeout=5):
        seen = read_last(path).snapshot
    thread.join()
    assert seen == second  # not `first`: the two runs did not both diff against the same line


def test_a_lock_held_too_long_is_a_warning_and_the_run_still_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lab: LabInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path / "fedscan.toml", lab, '[[partner]]\ndomain = "contoso.test"\n')
    hist = tmp_path / "h.jsonl"
    monkeypatch.setattr(history, "LOCK_TIMEOUT", 0.2)
    with locked(hist, timeout=1):
        with pytest.raises(HistoryLocked), locked(hist, timeout=0.1):
            pass
        assert run(["monitor", "--config", str(cfg), *AT, "--history", str(hist), "--format", "json"]) == 0
    out = capsys.readouterr()
    problem = (f"history {hist}: still locked by another fedscan run after 0.2 s; "
               "this run is not compared nor recorded")
    assert out.err == f"fedscan: warning: {problem}\n"
    assert json.loads(out.out)["monitor"]["history_problem"] == problem  # the report still went out
    assert hist.read_text() == ""  # and nothing was appended


@pytest.mark.parametrize(("previous_started", "overlapped"), [
    ("2030-01-01T10:00:30Z", True),  # began while this run was scanning: it finished first
    ("2030-01-01T10:01:00Z", True),
    ("2030-01-01T09:59:00Z", False),  # an ordinary earlier run
    ("2030-01-01T11:00:00Z", False),  # dated after this run ended: a clock error, not an overlap
    (None, False),  # a line from before snapshots carried 'started'
    ("garbage", False),
])
def test_only_a_run_that_began_during_this_one_counts_as_newer(
    previous_started: str | None, overlapped: bool
) -> None:
    base = snapshot(report(domain("a.test", endpoint("a.test", []))))
    current = dataclasses.replace(base, started="2030-01-01T10:00:00Z", finished="2030-01-01T10:01:00Z")
    previous = dataclasses.replace(base, started=previous_started)
    assert newer_recorded(previous, current) is overlapped


def test_an_overlapped_run_is_reported_but_not_compared_nor_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lab: LabInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path / "fedscan.toml", lab, '[[partner]]\ndomain = "contoso.test"\n')
    hist = tmp_path / "h.jsonl"
    append(hist, dataclasses.replace(snapshot(report(domain("a.test", endpoint("a.test", [])))),
                                     started="2030-01-01T10:00:30Z"))
    before = hist.read_text()
    monkeypatch.setattr(history, "newer_recorded", lambda previous, current: True)
    assert run(["monitor", "--config", str(cfg), *AT, "--history", str(hist), "--format", "nagios"]) == 0
    out = capsys.readouterr()
    problem = (f"history {hist}: a run that started later (2030-01-01T10:00:30Z) is already "
               "recorded; this run is not compared with it nor recorded")
    assert out.err == ""  # Nagios shows stdout only: the long text carries it
    assert out.out.startswith("FEDSCAN OK")
    assert problem in out.out
    assert hist.read_text() == before


def test_a_last_line_dated_in_the_future_or_without_start_is_compared_as_usual(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lab: LabInfo
) -> None:
    cfg = write_config(tmp_path / "fedscan.toml", lab, '[[partner]]\ndomain = "contoso.test"\n')
    for started in ("2999-01-01T00:00:00Z", None):
        hist = tmp_path / f"h-{started}.jsonl"
        append(hist, dataclasses.replace(snapshot(report(domain("a.test", endpoint("a.test", [])))),
                                         started=started))
        assert run(["monitor", "--config", str(cfg), *AT, "--history", str(hist), "--format", "json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["monitor"]["history_problem"] is None
        assert "domain-removed" in [c["kind"] for c in doc["monitor"]["changes"]]  # a.test is gone
        assert len(hist.read_text().splitlines()) == 2


@pytest.mark.parametrize(("line", "reason"), [
    (b'{"v": 1, "at": "x", "status": "OK", "endpoints": {}, "started": 17}\n',
     "not a history record (started is not text)"),
    (b"\xff\xfe not utf-8\n", "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
])
def test_a_last_line_of_the_wrong_kind_is_a_warning_not_a_crash(
    tmp_path: Path, line: bytes, reason: str
) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(line)
    previous = read_last(path)
    assert previous.snapshot is None
    assert previous.problem == (f"history {path}: last line is unreadable ({reason}); "
                                "treating as no previous run")


def test_a_new_history_file_is_created_like_open_would(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        with locked(tmp_path / "h.jsonl") as unlocked:
            assert unlocked is None
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "h.jsonl").stat().st_mode) == 0o664  # group-writable, as open()


def test_a_file_system_that_cannot_lock_is_said_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    path = tmp_path / "h.jsonl"
    with locked(path) as unlocked:
        assert unlocked == f"history {path}: not locked (No locks available)"


def test_two_lab_runs_report_the_replaced_certificate_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 1 against the default lab; run 2 against a lab on the same addresses where the Edge got
    a renewed certificate that expires in 20 days and contoso's XMPPS record was withdrawn."""
    hist = tmp_path / "history.jsonl"
    cfg = tmp_path / "fedscan.toml"
    args = ["monitor", "--config", str(cfg), *AT, "--history", str(hist), "--format"]
    with lab_in_thread(net=lab_net(40)) as lab:
        write_config(cfg, lab, OWN)
        assert run([*args, "json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["monitor"]["changes"] == [] and first["monitor"]["previous_run"] is None

    world = default_world()
    listeners = tuple(dataclasses.replace(x, cert="lab/edge-expires-soon") if x.cert == "edge" else x
                      for x in world.listeners)
    srv = tuple(r for r in world.srv if r.name != XMPPS + "contoso.test")
    renewed = dataclasses.replace(world, listeners=listeners, srv=srv)
    with lab_in_thread(net=lab_net(40), world=renewed) as lab:
        write_config(cfg, lab, OWN)
        assert run([*args, "nagios"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(
        "FEDSCAN WARNING - 6 warning of 6 endpoints; nearest expiry 20 days (sip.contoso.test); "
        "22 changes since last run | nearest_expiry_days=20;30:;14: "
    )
    changes = [line for line in lines[1:] if line.startswith("CHANGED: ")]
    assert changes[:2] == [
        "CHANGED: overall status OK -> WARNING",
        "CHANGED: contoso.test: new finding srv-missing",
    ]
    net = lab_net(40)
    sip = f"sip.contoso.test [{net}.10] (sip-federation)"
    assert changes[2:5] == [
        f"CHANGED: contoso.test: certificate on {sip} replaced (notAfter 2040-01-01T00:00:00Z -> "
        "2030-01-21T00:00:00Z)",
        f"CHANGED: contoso.test: {sip} OK -> WARNING",
        f"CHANGED: contoso.test: {sip}: new finding expires-soon",
    ]
    gone = f"CHANGED: contoso.test: endpoint sip.contoso.test [{net}.10] (xmpps-server) is gone (was OK)"
    assert gone in changes
    assert "CHANGED: contoso.test: endpoint sip.contoso.test [::1] (xmpps-server) is gone (was OK)" in changes
    assert lines.index(changes[-1]) < min(i for i, x in enumerate(lines) if x.startswith("WARNING "))
    assert len(hist.read_text().splitlines()) == 2


def test_a_partner_taken_out_of_the_config_is_one_line_not_an_outage() -> None:
    from scanner.history import EndpointState, Snapshot, diff

    state = EndpointState("OK", "aa", "2040-01-01T00:00:00Z", (), 5061)
    before = Snapshot("2030-01-01T00:00:00Z", "OK",
                      {"contoso.test/sip-federation/sip.contoso.test/192.0.2.1": state,
                       "adatum.test/sip-federation/sip.adatum.test/192.0.2.2": state},
                      {"contoso.test": (), "adatum.test": ()})
    after = Snapshot("2030-01-02T00:00:00Z", "OK",
                     {"contoso.test/sip-federation/sip.contoso.test/192.0.2.1": state},
                     {"contoso.test": ()})
    assert [(c.kind, c.domain, c.message) for c in diff(before, after)] == [
        ("domain-removed", "adatum.test", "adatum.test: no longer monitored (not in this run)")
    ]
