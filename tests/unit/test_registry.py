from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from linkbay_customers import bootstrap, open_storage, register_storage, storage_schemes
from linkbay_customers.ports import Storage
from linkbay_customers.registry import (
    ENTRY_POINT_GROUP,
    registered_storage,
    registered_storages,
    unregister_storage,
    url_scheme,
)
from linkbay_customers_memory import InMemoryStorage
from linkbay_customers_sqlalchemy import SqlAlchemyStorage
from linkbay_customers_sqlalchemy._engine import (
    ASYNC_DRIVERS,
    async_database_url,
    supported_dialects,
)

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

_PLUGIN = """
from linkbay_customers_memory import InMemoryStorage


class MySchemeStorage(InMemoryStorage):
    def __init__(self, url, **options):
        super().__init__()
        self.url = url
        self.options = options
"""


def _distribution(root: Path, name: str, entry_points: str, modules: dict[str, str]) -> None:
    """A distribution as an installer leaves it: modules and a ``.dist-info`` folder."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    _distribution(
        tmp_path,
        "my_storage_plugin",
        f"[{ENTRY_POINT_GROUP}]\nmyscheme = my_storage_plugin:MySchemeStorage\n"
        "broken = my_broken_plugin:open_storage\n",
        {
            "my_storage_plugin": _PLUGIN,
            "my_broken_plugin": "raise ImportError(\"needs 'pip install my-extra'\")\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in ("my_storage_plugin", "my_broken_plugin"):
        sys.modules.pop(module, None)


def test_the_shipped_schemes_are_declared_in_pyproject_and_installed() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"][ENTRY_POINT_GROUP]
    installed = {
        entry.name: entry.value
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if entry.dist is not None and entry.dist.name == "linkbay-customers"
    }
    assert installed == declared, "stale install: run pip install -e . to refresh entry points"
    assert set(declared) == {"memory", "sqlite", "postgresql"}


@pytest.mark.parametrize(
    ("url", "storage_type"),
    [("memory://", InMemoryStorage), ("sqlite+aiosqlite://", SqlAlchemyStorage)],
)
async def test_the_shipped_schemes_open_their_storages(
    url: str, storage_type: type[Storage]
) -> None:
    storage = open_storage(url)
    assert type(storage) is storage_type
    await storage.close()


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("memory://", "memory"),
        ("sqlite+aiosqlite:///x.db", "sqlite"),
        ("PostgreSQL+asyncpg://u@h/db", "postgresql"),
    ],
)
def test_a_urls_scheme_is_the_part_before_the_driver(url: str, scheme: str) -> None:
    assert url_scheme(url) == scheme


def test_text_without_a_scheme_is_not_a_storage_url() -> None:
    with pytest.raises(ValueError, match="not a storage URL"):
        open_storage("customers.db")


def test_an_unknown_scheme_lists_the_registered_ones() -> None:
    with pytest.raises(ValueError, match="no storage is registered for mongodb://") as caught:
        open_storage("mongodb://localhost/db")
    assert "registered: memory://, postgresql://, sqlite://" in str(caught.value)
    assert ENTRY_POINT_GROUP in str(caught.value)


async def test_a_storage_from_another_distribution_opens_through_bootstrap(
    plugin_path: Path,
) -> None:
    assert "myscheme" in storage_schemes()
    found = registered_storage("myscheme")
    assert found is not None
    assert (found.module, found.distribution) == ("my_storage_plugin", "my_storage_plugin")
    container = bootstrap("myscheme://somewhere/db", pool=3)
    storage: Any = container.storage()
    assert type(storage).__module__ == "my_storage_plugin"
    assert (storage.url, storage.options) == ("myscheme://somewhere/db", {"pool": 3})
    customer = await container.customer_service().create_customer("t1", {"email": "a@b.example"})
    assert customer.email == "a@b.example"


def test_a_scheme_whose_adapter_cannot_be_imported_says_why(plugin_path: Path) -> None:
    with pytest.raises(ImportError, match=r"broken:// storage .*pip install my-extra"):
        open_storage("broken://x")


def test_without_the_distribution_its_scheme_is_unknown() -> None:
    assert "myscheme" not in storage_schemes()
    with pytest.raises(ValueError, match="no storage is registered for myscheme://"):
        open_storage("myscheme://x")


class _OtherStorage(InMemoryStorage):
    def __init__(self, url: str, **options: Any) -> None:
        super().__init__()
        self.url = url


@pytest.fixture
def other_registered() -> Iterator[None]:
    register_storage("other", _OtherStorage)
    yield
    unregister_storage("other")


def test_a_host_registers_a_scheme_at_run_time(other_registered: None) -> None:
    assert "other" in storage_schemes()
    storage = bootstrap("other+driver://x").storage()
    assert isinstance(storage, _OtherStorage)
    assert storage.url == "other+driver://x"
    found = registered_storage("other")
    assert found is not None
    assert (found.module, found.distribution) == (__name__, None)
    assert found in registered_storages()


def test_a_run_time_registration_takes_precedence_over_an_entry_point() -> None:
    register_storage("memory", _OtherStorage)
    try:
        assert isinstance(open_storage("memory://"), _OtherStorage)
    finally:
        unregister_storage("memory")
    assert type(open_storage("memory://")) is InMemoryStorage


@pytest.mark.parametrize("scheme", ["", "My", "sqlite+aiosqlite", "9db", "a b"])
def test_a_malformed_scheme_is_refused(scheme: str) -> None:
    with pytest.raises(ValueError, match="not a storage scheme"):
        register_storage(scheme, _OtherStorage)
    assert scheme not in storage_schemes()


def test_the_sql_engine_opens_the_schemes_routed_to_it_and_drives_each() -> None:
    assert supported_dialects() == ("postgresql", "sqlite")
    assert set(supported_dialects()) == set(ASYNC_DRIVERS)


def test_the_sql_engine_refuses_a_scheme_routed_elsewhere(other_registered: None) -> None:
    assert "other" not in supported_dialects()
    with pytest.raises(ValueError, match="unsupported database 'other'"):
        async_database_url("other://u@h/db")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:p%40ss@h:5433/db", "postgresql+asyncpg://u:p%40ss@h:5433/db"),
    ],
)
def test_the_sql_engine_names_each_dialects_async_driver(given: str, expected: str) -> None:
    assert async_database_url(given) == expected


def test_the_sql_engine_refuses_a_driver_it_does_not_use() -> None:
    with pytest.raises(ValueError, match=r"driver 'postgresql\+psycopg'.*postgresql\+asyncpg://"):
        async_database_url("postgresql+psycopg://u@h/db")


def test_a_missing_driver_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # as if not installed
    with pytest.raises(ImportError, match=re.escape("pip install 'linkbay-customers[postgres]'")):
        open_storage("postgresql+asyncpg://u@h/db")
