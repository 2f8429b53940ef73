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
TEST_SUPPORT = CORE / "testing"
ADAPTERS = Path(__file__).resolve().parents[2] / "adapters"


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


def _offenders(paths: list[Path]) -> list[str]:
    offenders = []
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, module in _imports(tree):
            top = module.split(".")[0]
            if top not in sys.stdlib_module_names and top not in ALLOWED:
                offenders.append(f"{path.name}:{node.lineno} imports {module}")
    return offenders


def test_the_core_imports_only_the_standard_library_and_its_dependencies() -> None:
    # Eagerly or lazily: the core names no adapter (storages come from the registry).
    assert _offenders(_core_modules()) == []


def test_the_core_imports_nothing_from_the_adapters() -> None:
    adapters = {p.name for p in ADAPTERS.iterdir() if (p / "__init__.py").is_file()}
    assert "linkbay_customers_memory" in adapters  # the walk sees the adapters
    everything = list(CORE.rglob("*.py"))  # the contract suite in testing/ included
    imported = {m.split(".")[0] for p in everything for _, m in _imports(ast.parse(p.read_text()))}
    assert imported & adapters == set()


def test_the_check_sees_an_adapter_imported_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from linkbay_customers_memory import InMemoryStorage\n")
    assert _offenders([module]) == ["lazy.py:2 imports linkbay_customers_memory"]


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


def test_the_adapters_import_only_the_public_modules_of_the_core() -> None:
    private = [
        f"{path.relative_to(ADAPTERS)}:{node.lineno} imports {module}"
        for path in ADAPTERS.rglob("*.py")
        for node, module in _imports(ast.parse(path.read_text()))
        if module.split(".")[0] == "linkbay_customers"
        and any(part.startswith("_") for part in module.split(".")[1:])
    ]
    assert private == []


def test_the_root_package_exports_what_the_services_return() -> None:
    for name in ("ImportResult", "Page", "ChurnPrediction", "ClvPrediction", "ScoringSummary"):
        assert name in linkbay_customers.__all__


def test_the_services_package_exports_no_adapter_plumbing() -> None:
    import linkbay_customers.services as services

    assert {"check_tenant", "check_actor", "risk_level"} & set(services.__all__) == set()
