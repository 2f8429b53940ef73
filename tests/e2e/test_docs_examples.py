"""The docs' complete Python programs run as written and print what they promise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
