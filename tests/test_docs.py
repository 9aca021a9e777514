"""The README is the user's reference: every public finding code must be documented there."""

from __future__ import annotations

from scanner.findings import CODES
from tests.conftest import ROOT


def test_readme_documents_every_finding_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [code for code in CODES if f"| `{code}` |" not in readme]
    assert missing == []


def test_readme_names_the_two_setup_free_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme[:1200]
    assert "make demo" in head and "make test" in head


def test_every_code_is_kebab_case_with_a_remedy() -> None:
    for code, info in CODES.items():
        assert code == info.code
        assert code.replace("-", "").isalnum() and code == code.lower()
        assert info.summary and info.remedy
