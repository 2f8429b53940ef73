"""The README's front door: its examples are the ones the docs runner checks, and CI
runs exactly its test command.

The Python blocks themselves run, and their output is checked, in
tests/e2e/test_docs_examples.py like every block of docs/.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_the_readme_shows_the_service_gdpr_intelligence_and_router_examples() -> None:
    service, gdpr, intelligence, router = _blocks("python")
    assert "asyncio.run(main())" in service
    assert "gdpr_service()" in gdpr
    assert "intelligence=BetaGeoIntelligence.from_storage" in intelligence
    assert "create_customer_router" in router
    # The router example mounts the GDPR and intelligence routes and migrates the
    # database it opens, so its routes answer as written.
    assert "gdpr_service=container.gdpr_service()" in router
    assert "ai_service=container.ai_service()" in router
    assert "await upgrade(DATABASE_URL)" in router


def test_ci_runs_the_readme_test_command() -> None:
    quickstart = README[README.index("## Quickstart") : README.index("## Use it from Python")]
    serve, test = _blocks("bash")[:2]
    assert serve in quickstart
    assert test in quickstart
    ci = (ROOT / ".ci" / "run").read_text()
    assert test.strip() in ci
