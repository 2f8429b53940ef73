"""The docs' complete Python programs run as written and print what they promise."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from linkbay_customers.registry import ENTRY_POINT_GROUP, unregister_storage

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _program(page: str, marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.DOTALL)
    (program,) = [block for block in blocks if marker in block]
    return program


def test_the_intelligence_docs_wire_beta_geo_and_linkbay_ai_in_one_line_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    program = _program("intelligence.md", "BetaGeoIntelligence.from_storage")
    assert 'bootstrap("memory://", intelligence=BetaGeoIntelligence.from_storage)' in program
    assert "intelligence=LinkBayAIIntelligence(OfflineModel())" in program
    exec(compile(program, str(DOCS / "intelligence.md"), "exec"), {"__name__": "docs"})
    assert capsys.readouterr().out.splitlines() == ["bg_nbd", "linkbay_ai"]


def test_the_architecture_docs_register_a_storage_at_run_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    program = _program("architecture.md", "register_storage(")
    try:
        exec(compile(program, str(DOCS / "architecture.md"), "exec"), {"__name__": "docs"})
    finally:
        unregister_storage("scratch")
    assert capsys.readouterr().out.splitlines() == [
        "InMemoryStorage ('memory', 'postgresql', 'scratch', 'sqlite')"
    ]


def test_the_architecture_docs_show_the_entry_points_pyproject_declares() -> None:
    (shown,) = re.findall(
        r"```toml\n(.*?)```", (DOCS / "architecture.md").read_text(), flags=re.DOTALL
    )
    pyproject = tomllib.loads((DOCS.parent / "pyproject.toml").read_text())
    assert tomllib.loads(shown)["project"]["entry-points"] == {
        ENTRY_POINT_GROUP: pyproject["project"]["entry-points"][ENTRY_POINT_GROUP]
    }


def test_the_gdpr_docs_show_the_typed_results_and_the_json_they_are_served_as(
    capsys: pytest.CaptureFixture[str],
) -> None:
    program = _program("gdpr.md", "CustomerDataExport.of(export)")
    exec(compile(program, str(DOCS / "gdpr.md"), "exec"), {"__name__": "docs"})
    assert capsys.readouterr().out.splitlines() == [
        "True 1",
        "mario@example.com preference-center",
        "json mario@example.com",
        "anonymized True",
    ]
