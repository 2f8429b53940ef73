"""The contract suite in a project of its own, under pytest-asyncio's default (strict) mode.

One pytest process runs a throwaway project: the two test modules of docs/storage.md
as written, a class that forgets its storage fixture, and a class that takes its
storage from a class of fixtures and declares a single optional capability.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

import linkbay_customers
import linkbay_customers_memory
from linkbay_customers.testing import (
    IntelligenceDataContract,
    PurchaseHistoryContract,
    StorageContract,
    UnitOfWorkContract,
)

STORAGE_DOCS = Path(__file__).resolve().parents[2] / "docs" / "storage.md"

# No asyncio_mode: pytest-asyncio's default, strict, is what a fresh project gets.
PYPROJECT = """\
[project]
name = "my-storage"
version = "0"

[tool.pytest.ini_options]
addopts = "--strict-markers"
"""

NO_STORAGE = """\
from linkbay_customers.testing import UnitOfWorkContract


class TestForgotTheStorage(UnitOfWorkContract):
    pass
"""

FIXTURES_CLASS = """\
import pytest

from linkbay_customers.testing import IntelligenceDataContract
from linkbay_customers_memory import InMemoryStorage


class MemoryFixtures:
    @pytest.fixture
    async def storage(self):
        storage = InMemoryStorage()
        yield storage
        await storage.close()


class TestOnlyPurchases(IntelligenceDataContract, MemoryFixtures):
    capabilities = frozenset({"purchases"})
"""


@dataclass(frozen=True)
class Outcome:
    result: str  # passed, skipped, error or failure
    message: str


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str
    outcomes: dict[str, dict[str, Outcome]]  # class name -> test name -> outcome


def _docs_contract_modules() -> list[str]:
    blocks = re.findall(r"```python[^\n]*\n(.*?)```", STORAGE_DOCS.read_text(), flags=re.DOTALL)
    return [block for block in blocks if "StorageContract" in block]


def _test_names(contract: type) -> set[str]:
    return {name for name in dir(contract) if name.startswith("test")}


def _outcomes(report: Path) -> dict[str, dict[str, Outcome]]:
    found: dict[str, dict[str, Outcome]] = {}
    for case in ET.parse(report).iter("testcase"):
        verdict = next((c for c in case if c.tag in {"skipped", "error", "failure"}), None)
        outcome = (
            Outcome("passed", "")
            if verdict is None
            else Outcome(verdict.tag, verdict.get("message", ""))
        )
        test_class = case.get("classname", "").rsplit(".", 1)[-1]
        found.setdefault(test_class, {})[case.get("name", "")] = outcome
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("fresh")
    project = root / "my-storage"
    project.mkdir()
    (project / "pyproject.toml").write_text(PYPROJECT)
    documented, without_vectors = _docs_contract_modules()
    (project / "test_documented.py").write_text(documented)
    (project / "test_without_vectors.py").write_text(without_vectors)
    (project / "test_no_storage.py").write_text(NO_STORAGE)
    (project / "test_fixtures_class.py").write_text(FIXTURES_CLASS)
    # This checkout's code, not whatever else is installed.
    code = [str(Path(m.__file__).parents[1]) for m in (linkbay_customers, linkbay_customers_memory)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([*code, env.get("PYTHONPATH", "")])
    report = root / "report.xml"
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Run(completed.returncode, completed.stdout + completed.stderr, _outcomes(report))


def test_the_docs_show_the_two_contract_modules_run_here() -> None:
    documented, without_vectors = _docs_contract_modules()
    assert "class TestMyStorage(StorageContract):" in documented
    assert "capabilities" not in documented
    assert 'capabilities = OPTIONAL_CAPABILITIES - {"similarity"}' in without_vectors


def test_the_project_runs_in_strict_mode_and_fails_only_where_it_should(run: Run) -> None:
    assert re.search(r"asyncio: mode=(Mode\.)?strict", run.output, flags=re.IGNORECASE)
    assert run.returncode == 1, run.output
    assert set(run.outcomes) == {
        "TestMyStorage",
        "TestMyStorageWithoutVectors",
        "TestForgotTheStorage",
        "TestOnlyPurchases",
    }


def test_the_documented_subclass_passes_every_test_of_the_contract(run: Run) -> None:
    outcomes = run.outcomes["TestMyStorage"]
    assert set(outcomes) == _test_names(StorageContract)
    assert {name: o for name, o in outcomes.items() if o.result != "passed"} == {}


def test_the_documented_capabilities_skip_exactly_the_similarity_test(run: Run) -> None:
    outcomes = run.outcomes["TestMyStorageWithoutVectors"]
    skipped = {name: o.message for name, o in outcomes.items() if o.result == "skipped"}
    assert skipped == {
        "test_nearest_ranks_by_cosine_similarity_and_skips_what_it_should": (
            "TestMyStorageWithoutVectors does not declare the 'similarity' capability "
            "in its `capabilities`"
        )
    }
    passed = {name for name, o in outcomes.items() if o.result == "passed"}
    assert passed == _test_names(StorageContract) - set(skipped)


def test_a_class_without_a_storage_fixture_fails_each_test_naming_the_fixture(run: Run) -> None:
    outcomes = run.outcomes["TestForgotTheStorage"]
    assert set(outcomes) == _test_names(UnitOfWorkContract)
    for outcome in outcomes.values():
        assert outcome.result == "error"
        assert (
            "TestForgotTheStorage needs a `storage` fixture that yields the Storage under test"
            in outcome.message
        )


def test_a_class_of_fixtures_provides_the_storage_and_undeclared_roles_are_skipped(
    run: Run,
) -> None:
    outcomes = run.outcomes["TestOnlyPurchases"]
    assert set(outcomes) == _test_names(IntelligenceDataContract)
    passed = {name for name, o in outcomes.items() if o.result == "passed"}
    assert passed == _test_names(PurchaseHistoryContract)
    reasons = {o.message for o in outcomes.values() if o.result == "skipped"}
    assert reasons == {
        f"TestOnlyPurchases does not declare the {capability!r} capability in its `capabilities`"
        for capability in ("derived_data", "similarity")
    }
