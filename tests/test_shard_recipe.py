"""The README's GNU parallel sharding recipe, run as written over the lab with 4 shards and
merged by `fedscan report merge`, gives the report an unsharded scan gives."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from scanner.lab.run import LabInfo
from tests.conftest import ROOT, require_program

AT = ["--at", "2030-01-01T00:00:00Z"]
VOLATILE = {"timings", "started_at", "finished_at", "shards"}


def recipe() -> tuple[str, str]:
    """The two lines of the README's GNU parallel block."""
    block = re.search(r"With GNU parallel:\n\n```sh\n(parallel .+)\n(fedscan report merge .+)\n```",
                      (ROOT / "README.md").read_text())
    assert block is not None, "the README lost its GNU parallel recipe"
    return block.group(1), block.group(2)


def normalized(doc: Any) -> Any:
    """The report without what differs between any two runs (times, timings, shard bookkeeping)."""
    if isinstance(doc, dict):
        return {k: normalized(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [normalized(v) for v in doc]
    return doc


def by_domain(doc: dict[str, Any]) -> dict[str, Any]:
    """Domains by name, endpoints in one order (a jsonl shard lists them as they finished)."""
    out = {}
    for d in normalized(doc)["domains"]:
        d["endpoints"].sort(key=lambda e: (e["service"], e["target"], e["address"], e["port"]))
        out[d["domain"]] = d
    return out


def test_four_shards_through_gnu_parallel_equal_one_scan(lab: LabInfo, tmp_path: Path) -> None:
    parallel = require_program("parallel", "parallel")
    scan_line, merge_line = recipe()
    assert scan_line == ("parallel -j 8 'fedscan scan --domains-file domains.txt --shard {}/8 --format jsonl "
                         "> shard-{}.jsonl' ::: $(seq 0 7)")
    lab_options = shlex.join([*lab.scan_args([])[0:], *AT])
    four = (scan_line.replace("-j 8", "-j 4").replace("{}/8", "{}/4").replace("seq 0 7", "seq 0 3")
            .replace("fedscan scan", f"fedscan scan {lab_options}").replace("parallel", parallel, 1))
    (tmp_path / "domains.txt").write_text("".join(f"{d.domain}\n" for d in lab.domains))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(["bash", "-c", four], cwd=tmp_path, env=env, check=False, timeout=300,
                   stdin=subprocess.DEVNULL, capture_output=True)
    shards = sorted(p.name for p in tmp_path.glob("shard-*.jsonl"))
    assert shards == ["shard-0.jsonl", "shard-1.jsonl", "shard-2.jsonl", "shard-3.jsonl"]
    assert all((tmp_path / s).read_text().rstrip().endswith("}") for s in shards)
    kinds = [[json.loads(line)["type"] for line in (tmp_path / s).read_text().splitlines()] for s in shards]
    sizes = [k.count("domain") for k in kinds]
    assert sum(sizes) == len(lab.domains) and max(sizes) < len(lab.domains)  # really split

    merged = subprocess.run(["bash", "-c", merge_line.replace(" --format table", "")], cwd=tmp_path,
                            env=env, capture_output=True, text=True, check=False, timeout=120)
    table = subprocess.run(["bash", "-c", merge_line], cwd=tmp_path, env=env, capture_output=True,
                           text=True, check=False, timeout=120)
    whole = subprocess.run(["fedscan", "scan", *lab.scan_args([]), *AT, "--domains-file", "domains.txt",
                            "--format", "json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           check=False, timeout=120)
    assert merged.returncode == whole.returncode == table.returncode == 2
    one, sharded = json.loads(whole.stdout), json.loads(merged.stdout)
    assert sharded["shards"]["files"] == 4 and not sharded["shards"]["incomplete"]
    for key in ("status", "exit_code", "endpoint_counts", "interrupted", "evaluated_at", "options"):
        assert sharded[key] == one[key], key
    a, b = by_domain(sharded), by_domain(one)
    for name in b:
        assert a[name] == b[name], (name, json.dumps(a[name])[:3000], json.dumps(b[name])[:3000])
    assert a.keys() == b.keys()
    assert "litware.test" in table.stdout and "CRITICAL" in table.stdout
