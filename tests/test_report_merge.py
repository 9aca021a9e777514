"""``fedscan report merge``: the jsonl of N shard runs merges into the report one unsharded
run gives (same domains, same endpoint statuses and findings), and a merge never hides a
missing or broken piece."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scanner.cli import run
from scanner.lab.run import LabInfo
from scanner.report_merge import MergeError, merge

AT = ["--at", "2030-01-01T00:00:00Z"]
SHARDS = 3


def _codes(findings: list[dict[str, Any]]) -> list[str]:
    return sorted(f["code"] for f in findings)


def canonical(doc: dict[str, Any]) -> dict[str, Any]:
    """What must agree: per domain its status, findings, services and endpoints (by place)."""
    out = {}
    for d in doc["domains"]:
        out[d["domain"]] = {
            "status": d["status"],
            "findings": _codes(d["findings"]),
            "services": sorted((s["service"], tuple(_codes(s["findings"]))) for s in d["services"]),
            "endpoints": sorted(
                (e["service"], e["target"], e["port"], e["address"], e["status"],
                 tuple(_codes(e["findings"])), (e["certificate"] or {}).get("sha256"))
                for e in d["endpoints"]
            ),
        }
    return out


def test_merged_shards_equal_one_unsharded_run(
    capsys: pytest.CaptureFixture[str], lab: LabInfo, tmp_path: Path
) -> None:
    domains = tmp_path / "domains.txt"
    domains.write_text("\n".join(d.domain for d in lab.domains) + "\n")
    base = ["scan", "--domains-file", str(domains), "--nameserver", lab.nameserver,
            "--ca-file", str(lab.ca_file), *AT]
    whole_code = run([*base, "--format", "json"])
    whole = json.loads(capsys.readouterr().out)

    files = []
    for k in range(SHARDS):
        run([*base, "--format", "jsonl", "--shard", f"{k}/{SHARDS}"])
        path = tmp_path / f"shard-{k}.jsonl"
        path.write_text(capsys.readouterr().out)
        files.append(str(path))
    assert sum(1 for f in files if '"type":"domain"' in Path(f).read_text()) >= 2  # a real split

    merged_code = run(["report", "merge", *files])
    merged = json.loads(capsys.readouterr().out)
    assert merged_code == whole_code == 2
    assert canonical(merged) == canonical(whole)
    assert merged["status"] == whole["status"]
    assert merged["endpoint_counts"] == whole["endpoint_counts"]
    assert merged["interrupted"] is False
    assert merged["shards"] == {"files": SHARDS, "incomplete": [], "evaluated_at": ["2030-01-01T00:00:00Z"]}

    assert run(["report", "merge", *files, "--format", "table"]) == 2
    table = capsys.readouterr().out
    assert "adatum.test" in table and "Overall: CRITICAL" in table


def _lines(*objs: dict[str, Any]) -> list[str]:
    return [json.dumps(o) for o in objs]


SUMMARY = {"type": "summary", "schema_version": 1, "started_at": "2030-01-01T00:00:00Z",
           "finished_at": "2030-01-01T00:00:05Z", "evaluated_at": "2030-01-01T00:00:00Z",
           "interrupted": False, "deployment": None}


def _endpoint(domain: str, status: str, address: str = "127.0.0.1") -> dict[str, Any]:
    return {"type": "endpoint", "domain": domain, "service": "sip-federation", "target": f"sip.{domain}",
            "port": 5061, "address": address, "status": status, "findings": [], "certificate": None}


def _domain(domain: str, status: str, count: int) -> dict[str, Any]:
    return {"type": "domain", "domain": domain, "status": status, "findings": [], "services": [],
            "endpoint_count": count}


def test_status_and_counts_are_recomputed_from_the_lines() -> None:
    doc = merge([
        ("a", _lines(_endpoint("a.test", "OK"), _domain("a.test", "OK", 1), SUMMARY)),
        ("b", _lines(_endpoint("b.test", "WARNING"), _endpoint("b.test", "OK", "127.0.0.2"),
                     _domain("b.test", "WARNING", 2), {**SUMMARY, "started_at": "2029-12-31T23:59:00Z"})),
    ])
    assert doc["status"] == "WARNING" and doc["exit_code"] == 1
    assert doc["endpoint_counts"] == {"OK": 2, "WARNING": 1, "CRITICAL": 0, "UNKNOWN": 0}
    assert doc["started_at"] == "2029-12-31T23:59:00Z"
    assert [d["domain"] for d in doc["domains"]] == ["a.test", "b.test"]
    assert "endpoint_count" not in doc["domains"][1]


def test_a_shard_without_summary_makes_the_census_unknown() -> None:
    doc = merge([
        ("a", _lines(_endpoint("a.test", "OK"), _domain("a.test", "OK", 1), SUMMARY)),
        ("b", _lines(_endpoint("b.test", "OK"))),  # killed before its domain line
    ])
    assert doc["interrupted"] is True
    assert doc["status"] == "UNKNOWN" and doc["exit_code"] == 3
    assert doc["shards"]["incomplete"] == ["b"]
    b = doc["domains"][1]
    assert b["incomplete"] is True and b["status"] == "UNKNOWN"


def test_a_shard_cut_mid_line_is_a_shard_without_summary() -> None:
    """Killed mid-write (a full disk, a copy cut short): the last line has no newline and does
    not parse; the shard reads as stopped a line earlier, never as damage to refuse."""
    cut = _lines(_endpoint("b.test", "OK"))[0]
    doc = merge([
        ("a", _lines(_endpoint("a.test", "OK"), _domain("a.test", "OK", 1), SUMMARY)),
        ("b", [cut, cut.rstrip("\n")[:30]]),
    ])
    assert doc["interrupted"] is True and doc["shards"]["incomplete"] == ["b"]
    assert doc["domains"][1]["endpoints"][0]["status"] == "OK"
    with pytest.raises(MergeError, match=r"b:1: not JSON"):  # a newline: written whole, and damaged
        merge([("b", [cut.rstrip("\n")[:30] + "\n", cut])])


def test_overlapping_shards_are_refused() -> None:
    with pytest.raises(MergeError, match=r"a\.test is in both a and b"):
        merge([("a", _lines(_domain("a.test", "OK", 0), SUMMARY)),
               ("b", _lines(_domain("a.test", "OK", 0), SUMMARY))])


def test_bad_input_is_one_line_with_its_place(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(SUMMARY) + "\n{not json\n")
    assert run(["report", "merge", str(bad)]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"fedscan: error: {bad}:2: not JSON")
    assert run(["report", "merge", str(tmp_path / "missing.jsonl")]) == 3
    assert "No such file" in capsys.readouterr().err
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({**SUMMARY, "schema_version": 99}) + "\n")
    assert run(["report", "merge", str(old)]) == 3
    assert "schema_version 99" in capsys.readouterr().err
