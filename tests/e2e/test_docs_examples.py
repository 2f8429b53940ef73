"""Every Python example of README.md and docs/ runs as written and prints what it shows.

Each ```python block is a complete program, formatted and linted as the code is:
it runs as its own module, in an empty working directory, and every ``print`` in
it is followed by ``#>`` lines showing what it prints, which pytest-examples
checks (``pytest --update-examples`` rewrites them). Settings in the fence:

- ```` ```python needs="postgres" ````: the block reads its database URL from
  ``LINKBAY_DATABASE_URL`` and gets a new, migrated PostgreSQL database there.
- ```` ```python needs="chat" ````: the block reads ``OPENAI_BASE_URL``,
  ``OPENAI_API_KEY`` and ``LINKBAY_AI_MODEL``, which name the suite's local
  OpenAI-compatible chat server (``tests._chat_server``), answering well.
- ```` ```python test="pytest" ````: the block is a test module (a contract suite
  subclass, say); it runs under pytest in a project of its own, with pytest's
  defaults (pytest-asyncio in strict mode), and must pass.
- ```` ```python file="main.py" ````: the page tells the reader to save the block
  as that file; every block of the page runs beside all such files, and may
  import them. The file's own behaviour is shown by the blocks that import it.

The audit key is in ``LINKBAY_AUDIT_KEY`` for every block, as the suite sets it.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tomllib
from pathlib import Path

import pytest
import pytest_examples.run_code
from pytest_examples import CodeExample, EvalExample, find_examples

from linkbay_customers.registry import ENTRY_POINT_GROUP, storage_schemes, unregister_storage
from tests._child_pytest import run_pytest
from tests._databases import new_postgres_database

ROOT = Path(__file__).resolve().parents[2]
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
EXAMPLES = [example for page in PAGES for example in find_examples(page)]
NEEDS = {"postgres", "chat"}
SETTINGS = {"needs", "file", "test"}


def _name(example: CodeExample) -> str:
    return f"{example.path.relative_to(ROOT)}:{example.start_line}"


def _save_files_of_the_page(
    example: CodeExample, work: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Write the page's file blocks into ``work``, importable afresh by this example;
    their sources, together."""
    saved = []
    for block in EXAMPLES:
        name = block.prefix_settings().get("file")
        if block.path == example.path and name is not None:
            (work / name).write_text(block.source)
            monkeypatch.delitem(sys.modules, Path(name).stem, raising=False)
            saved.append(block.source)
    monkeypatch.syspath_prepend(str(work))
    return "".join(saved)


def _passes_under_pytest(example: CodeExample, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_example.py").write_text(example.source)
    run_pytest(["test_example.py"], cwd=project)


def test_the_pages_have_examples() -> None:
    """A change to the fence syntax must not make the examples vanish silently."""
    assert len(EXAMPLES) >= 30
    assert {example.path.name for example in EXAMPLES} >= {
        "README.md",
        "architecture.md",
        "embedding.md",
        "gdpr.md",
        "intelligence.md",
        "linkbay_ai.md",
        "storage.md",
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=_name)
def test_the_example_runs_as_written_and_prints_what_it_shows(
    example: CodeExample,
    eval_example: EvalExample,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = example.prefix_settings()
    assert set(settings) <= SETTINGS, f"unknown settings {sorted(settings)}"
    needs = settings.get("needs")
    assert needs is None or needs in NEEDS, f"needs={needs!r}"
    # A block that prints nothing it shows would only prove that nothing raised.
    if settings.get("test") == "pytest":
        _passes_under_pytest(example, tmp_path)
        return
    shown = "file" in settings or "#>" in example.source
    assert eval_example.update_examples or shown, "it shows no output"
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    saved = _save_files_of_the_page(example, work, monkeypatch)
    if needs == "postgres":
        url = asyncio.run(new_postgres_database(request.getfixturevalue("postgres_server")))
        monkeypatch.setenv("LINKBAY_DATABASE_URL", url)
    if needs == "chat":
        chat_server = request.getfixturevalue("chat_server")
        monkeypatch.setenv("OPENAI_BASE_URL", chat_server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "docs-key")
        monkeypatch.setenv("LINKBAY_AI_MODEL", "docs-model")
    # Formatted as the code is (black, which keeps the #> lines; ruff's checks).
    eval_example.set_config(
        line_length=100,
        target_version="py311",
        ruff_line_length=100,
        ruff_select=["E", "F", "W", "I", "UP", "B", "SIM", "RUF", "ASYNC", "C4", "PIE", "RET"],
    )
    # pytest-examples rewrites an example's traceback onto frames it forges, which
    # pytest cannot render on Python 3.11 (an INTERNALERROR instead of the failure):
    # keep the real traceback, through the file the example runs from.
    monkeypatch.setattr(pytest_examples.run_code, "create_example_traceback", lambda *_: None)
    registered = set(storage_schemes())
    try:
        if eval_example.update_examples:  # pytest --update-examples rewrites the #> lines
            eval_example.format(example)
            eval_example.run_print_update(example, rewrite_assertions=False)
        else:
            eval_example.lint(example)
            eval_example.run_print_check(example, rewrite_assertions=False)
            # Nothing left where it ran that this example run again, or the next one
            # a reader copies into the same directory, would meet: a database file
            # there would still hold this run's customers (409 on the next POST).
            # The database of an application the page has the reader save (a
            # ``file=`` block, as the quickstart's main.py) is theirs to keep.
            left = sorted(
                path.name
                for path in work.iterdir()
                if (path.suffix == ".db" or path.name.endswith(".audit-key"))
                and f"///{path.name.removesuffix('.audit-key')}" not in saved
            )
            assert not left, f"the example leaves {left} in its working directory"
    finally:
        # The example runs in this process: a storage it registers must not outlive it.
        for scheme in set(storage_schemes()) - registered:
            unregister_storage(scheme)


def test_the_intelligence_docs_wire_beta_geo_and_linkbay_ai_in_one_line_each() -> None:
    (program,) = [
        example.source
        for example in EXAMPLES
        if example.path.name == "intelligence.md"
        and "BetaGeoIntelligence.from_storage" in example.source
    ]
    assert 'bootstrap("memory://", intelligence=BetaGeoIntelligence.from_storage)' in program
    assert "intelligence=LinkBayAIIntelligence(" in program


def test_the_architecture_docs_show_the_entry_points_pyproject_declares() -> None:
    (shown,) = re.findall(
        r"```toml\n(.*?)```", (ROOT / "docs" / "architecture.md").read_text(), flags=re.DOTALL
    )
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert tomllib.loads(shown)["project"]["entry-points"] == {
        ENTRY_POINT_GROUP: pyproject["project"]["entry-points"][ENTRY_POINT_GROUP]
    }
