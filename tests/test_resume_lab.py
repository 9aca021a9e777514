"""A census cut short mid-line and resumed with ``--resume`` gives, over the lab, the report one
uninterrupted scan gives: the finished domains copied unchanged, the rest scanned again, one
summary over both."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from scanner.lab.run import LabInfo

AT = ["--at", "2030-01-01T00:00:00Z"]


def fedscan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scanner", *args], capture_output=True, text=True,
                          check=False, timeout=180, stdin=subprocess.DEVNULL)


def without_timings(text: str) -> str:
    return re.sub(r'"timings":\{[^}]*\}', "", text)


def summary(lines: list[str]) -> dict[str, Any]:
    last: dict[str, Any] = json.loads(lines[-1])
    assert last["type"] == "summary"
    return last


def test_a_census_cut_mid_line_and_resumed_equals_one_scan(lab: LabInfo, tmp_path: Path) -> None:
    whole = fedscan("scan", *lab.scan_args(), *AT, "--format", "jsonl")
    lines = whole.stdout.splitlines(keepends=True)
    ends = [i for i, text in enumerate(lines) if json.loads(text)["type"] == "domain"]
    assert len(ends) == len(lab.domains) >= 4
    keep = len(ends) // 2  # cut halfway through the line after the half-way domain's line
    cut = "".join(lines[: ends[keep - 1] + 1]) + lines[ends[keep - 1] + 1][:40]
    partial = tmp_path / "census.jsonl"
    partial.write_text(cut)

    resumed = fedscan("scan", *lab.scan_args(), *AT, "--format", "jsonl", "--resume", str(partial))
    assert resumed.returncode == whole.returncode == 2
    assert resumed.stderr.strip() == (f"fedscan: resuming: {keep} finished domains copied from {partial}, "
                                      f"{len(lab.domains) - keep} to scan")
    out = resumed.stdout.splitlines(keepends=True)
    for key in ("status", "exit_code", "endpoint_counts", "interrupted", "evaluated_at"):
        assert summary(out)[key] == summary(lines)[key], key
    assert Counter(map(without_timings, out[:-1])) == Counter(map(without_timings, lines[:-1]))

    finished = {json.loads(lines[i])["domain"] for i in ends[:keep]}
    copied = [text for text in lines[: ends[keep - 1] + 1] if json.loads(text)["domain"] in finished]
    assert out[: len(copied)] == copied  # byte for byte, timings included: not scanned again

    merged = subprocess.run([sys.executable, "-m", "scanner", "report", "merge", "-"], input=resumed.stdout,
                            capture_output=True, text=True, check=False, timeout=60)
    assert merged.returncode == 2, merged.stderr
    assert json.loads(merged.stdout)["interrupted"] is False


def test_resuming_a_finished_census_scans_nothing(lab: LabInfo, tmp_path: Path) -> None:
    whole = fedscan("scan", *lab.scan_args(), *AT, "--format", "jsonl")
    done = tmp_path / "done.jsonl"
    done.write_text(whole.stdout)
    again = fedscan("scan", *lab.scan_args(), *AT, "--format", "jsonl", "--resume", str(done))
    assert again.returncode == whole.returncode
    assert again.stderr.strip() == (f"fedscan: resuming: {len(lab.domains)} finished domains copied "
                                    f"from {done}, 0 to scan")
    assert again.stdout.splitlines()[:-1] == whole.stdout.splitlines()[:-1]
    assert summary(again.stdout.splitlines())["endpoint_counts"] == summary(whole.stdout.splitlines())[
        "endpoint_counts"]


def test_a_resumed_shard_merges_in_place_of_the_cut_one(lab: LabInfo, tmp_path: Path) -> None:
    """The README's shard recipe: shard 0 of 2 cut short, resumed with the same --shard, and
    merged with shard 1 gives the report of one whole scan."""
    shards = [fedscan("scan", *lab.scan_args(), *AT, "--format", "jsonl", "--shard", f"{k}/2")
              for k in range(2)]
    cut = tmp_path / "shard-0.jsonl"
    cut.write_text(shards[0].stdout[: len(shards[0].stdout) // 2])
    (tmp_path / "shard-1.jsonl").write_text(shards[1].stdout)
    again = fedscan("scan", *lab.scan_args(), *AT, "--format", "jsonl", "--shard", "0/2",
                    "--resume", str(cut))
    (tmp_path / "shard-0b.jsonl").write_text(again.stdout)
    merged = fedscan("report", "merge", str(tmp_path / "shard-0b.jsonl"), str(tmp_path / "shard-1.jsonl"))
    whole = fedscan("scan", *lab.scan_args(), *AT, "--format", "json")
    assert merged.returncode == whole.returncode == 2, merged.stderr
    doc, one = json.loads(merged.stdout), json.loads(whole.stdout)
    assert doc["interrupted"] is False and doc["shards"]["incomplete"] == []
    for key in ("status", "endpoint_counts"):
        assert doc[key] == one[key], key
    assert sorted(d["domain"] for d in doc["domains"]) == sorted(d["domain"] for d in one["domains"])
    refused = fedscan("report", "merge", str(cut), str(tmp_path / "shard-0b.jsonl"))
    assert refused.returncode == 3 and "shards must not overlap" in refused.stderr
