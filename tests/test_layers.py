"""The four layers hold: Core is pure, arrows point only downward, only the CLI imports the lab.

The contracts live in pyproject.toml ([tool.importlinter]) and `make lint` runs them; these
tests keep the contracts themselves honest: every module is placed in a layer, and a planted
violation of each rule makes the checker fail (a contract that cannot fail guards nothing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _layer_modules() -> set[str]:
    layers = next(c for c in _contracts() if c["id"] == "layers")["layers"]
    assert isinstance(layers, list)
    return {m.strip() for layer in layers for m in str(layer).replace("|", ":").split(":")}


def _package_modules() -> set[str]:
    """Top-level modules of the package, and its subpackages as one unit each (the lab)."""
    found = {f"scanner.{p.stem}" for p in (ROOT / "scanner").glob("*.py") if p.stem != "__init__"}
    found |= {f"scanner.{p.parent.name}" for p in (ROOT / "scanner").glob("*/__init__.py")}
    return found


def test_every_module_is_in_exactly_one_layer() -> None:
    missing = sorted(_package_modules() - _layer_modules())
    assert missing == [], (
        f"{missing} in no layer: add each to [tool.importlinter] in pyproject.toml "
        "(Core if pure: no trio, dnspython, sockets or clock; Edges for I/O with peers; Face for output)"
    )
    layers = next(c for c in _contracts() if c["id"] == "layers")["layers"]
    assert isinstance(layers, list)
    listed = [m.strip() for layer in layers for m in str(layer).replace("|", ":").split(":")]
    assert len(listed) == len(set(listed)), "a module is listed in two layers"


def test_core_pure_contract_names_exactly_the_core_layer() -> None:
    contracts = {str(c["id"]): c for c in _contracts()}
    layers = contracts["layers"]["layers"]
    assert isinstance(layers, list)
    core = {m.strip() for m in str(layers[-1]).split(":")}
    sources = contracts["core-pure"]["source_modules"]
    assert isinstance(sources, list)
    assert set(sources) == core


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the copy, not the editable install, is imported
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "scanner", tmp_path / "scanner", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_real_tree_keeps_every_contract(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        ("names.py", "import trio", "Core imports no I/O library"),
        ("verify.py", "import dns.resolver", "Core imports no I/O library"),
        ("xmpp.py", "import socket", "Core imports no I/O library"),
        ("results.py", "from scanner import handshake", "arrows only downward"),
        ("render.py", "from scanner.lab import zones", "arrows only downward"),
        ("scan.py", "from scanner import render", "arrows only downward"),
        ("readiness.py", "from scanner import readiness_markdown", "readiness model renders nothing"),
        ("readiness_checks.py", "import rich.text", "readiness model renders nothing"),
    ],
)
def test_a_planted_violation_breaks_a_contract(tree: Path, module: str, planted: str, broken: str) -> None:
    path = tree / "scanner" / module
    path.write_text(path.read_text() + f"\n{planted}  # planted by the test\n")
    result = _lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{broken}" in result.stdout
    assert "BROKEN" in result.stdout
