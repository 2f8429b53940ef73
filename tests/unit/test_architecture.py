"""The core imports nothing but the standard library and its dependencies."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import linkbay_customers

CORE = Path(linkbay_customers.__file__).parent
ALLOWED = {
    "pydantic",
    "email_validator",
    "dependency_injector",
    "phonenumbers",
    "pycountry",
    "linkbay_customers",
}
COMPOSITION_ROOT = CORE / "container.py"
TEST_SUPPORT = CORE / "testing"


def _core_modules() -> list[Path]:
    return [p for p in CORE.rglob("*.py") if TEST_SUPPORT not in p.parents]


def _imports(tree: ast.AST) -> list[tuple[ast.stmt, str]]:
    found: list[tuple[ast.stmt, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node, node.module))
    return found


def _runs_at_import(tree: ast.Module) -> list[ast.AST]:
    """Statements executed when the module is imported (not inside functions)."""
    nodes: list[ast.AST] = []
    for node in tree.body:
        nodes += list(ast.walk(node)) if isinstance(node, ast.If | ast.Try) else [node]
    return nodes


def test_the_core_imports_only_the_standard_library_and_its_dependencies() -> None:
    offenders = []
    for path in _core_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, module in _imports(tree):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in ALLOWED:
                continue
            if path == COMPOSITION_ROOT and top.startswith("linkbay_customers_"):
                continue  # checked below: only lazily
            offenders.append(f"{path.relative_to(CORE)}:{node.lineno} imports {module}")
    assert offenders == []


def test_the_composition_root_imports_adapters_only_lazily() -> None:
    tree = ast.parse(COMPOSITION_ROOT.read_text())
    eager = [
        module
        for node, module in _imports(tree)
        if module.startswith("linkbay_customers_") and node in _runs_at_import(tree)
    ]
    lazy = [m for _, m in _imports(tree) if m.startswith("linkbay_customers_")]
    assert eager == []
    assert lazy, "the container should know at least one adapter"


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    tree = ast.parse("import sqlalchemy\nfrom fastapi import APIRouter\n")
    tops = {m.split(".")[0] for _, m in _imports(tree)}
    assert tops == {"sqlalchemy", "fastapi"}
    assert not tops & (ALLOWED | set(sys.stdlib_module_names))


_WORKS_WITHOUT_OUTER_LIBRARIES = """
import asyncio, sys
for name in ("sqlalchemy", "fastapi", "starlette", "numpy", "scipy", "httpx", "asyncpg",
             "aiosqlite", "alembic", "pgvector", "typer", "uvicorn", "pytest"):
    sys.modules[name] = None  # makes `import name` raise ImportError, as if not installed

from linkbay_customers import bootstrap

async def main():
    service = bootstrap("memory://").customer_service()
    customer = await service.create_customer("t1", {"email": "a@example.com"})
    print((await service.get_customer("t1", customer.id)).email)

asyncio.run(main())
"""


def test_the_core_runs_with_no_outer_library_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WORKS_WITHOUT_OUTER_LIBRARIES], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "a@example.com"
