from __future__ import annotations

from collections.abc import Iterator

import pytest

from linkbay_customers import CustomerService, HeuristicIntelligence
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_memory import InMemoryStorage


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def memory_storage() -> InMemoryStorage:
    return InMemoryStorage()


@pytest.fixture
def service(memory_storage: InMemoryStorage, clock: FixedClock) -> CustomerService:
    return CustomerService(memory_storage.unit_of_work, clock, HeuristicIntelligence())


@pytest.fixture
def tenant() -> str:
    return new_tenant_id("a")


@pytest.fixture
def other_tenant() -> str:
    return new_tenant_id("b")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Admin URL of a real PostgreSQL (embedded unless LINKBAY_TEST_POSTGRES_URL is set)."""
    from tests._databases import server_url

    yield from server_url(tmp_path_factory.mktemp("postgres"))


@pytest.fixture(scope="session")
def postgres_url(postgres_server: str) -> str:
    """A migrated PostgreSQL database shared by the session (tests use fresh tenants)."""
    from tests._databases import fresh_postgres_database

    return fresh_postgres_database(postgres_server)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file shared by the session (tests use fresh tenants)."""
    from tests._databases import fresh_sqlite_database

    return fresh_sqlite_database(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each real database in turn."""
    return str(request.getfixturevalue(f"{request.param}_url"))
