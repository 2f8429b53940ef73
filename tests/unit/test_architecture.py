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


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_graph(package: Path) -> dict[str, set[str]]:
    """Each module of an adapter package and the package's modules it imports, at any
    depth of the file: lazily, or only for the type checker, an import still binds."""
    modules = {
        _module_name(p, package.parent): p
        for p in package.rglob("*.py")
        if "migrations" not in p.parts
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                assert node.level == 0, f"{name} imports relatively"
                imported |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = (imported & modules.keys()) - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_adapter_has_an_import_cycle() -> None:
    packages = [p for p in ADAPTERS.iterdir() if (p / "__init__.py").is_file()]
    graphs = {p.name: _module_graph(p) for p in packages}
    sql = graphs["linkbay_customers_sqlalchemy"]
    # The walk sees the imports the cycles were made of, type-checking ones included.
    assert (
        "linkbay_customers_sqlalchemy._repositories._session"
        in sql["linkbay_customers_sqlalchemy._repositories._base"]
    )
    assert {name: _cycles(graph) for name, graph in graphs.items() if _cycles(graph)} == {}


def test_the_cycle_check_sees_a_cycle_through_a_type_checking_import(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    package = tmp_path / "linkbay_customers_sample"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_one.py").write_text("from linkbay_customers_sample._two import X\n")
    (package / "_two.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from linkbay_customers_sample._one import Y\n"
    )
    assert _cycles(_module_graph(package)) == [
        ["linkbay_customers_sample._one", "linkbay_customers_sample._two"]
    ]
