from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from linkbay_customers import AIService, CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.domain import Customer
from linkbay_customers.ports import Storage
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_memory import InMemoryStorage
from tests._databases import (
    database_of_kind,
    new_postgres_database,
    new_sqlite_database,
    server_url,
)

if TYPE_CHECKING:
    from tests._chat_server import ChatServer

# Every storage of the suite, and every CLI process it starts, seals the audit trail
# with this key (PostgreSQL refuses to start without one); the tests of the key's
# own sources unset it.
TEST_AUDIT_KEY = "linkbay-customers test suite audit key, 256 bits or more"
os.environ.setdefault("LINKBAY_AUDIT_KEY", TEST_AUDIT_KEY)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def storage() -> InMemoryStorage:
    return InMemoryStorage()


@pytest.fixture
def service(storage: Storage, clock: FixedClock) -> CustomerService:
    return CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())


@pytest.fixture
def ai(storage: Storage, clock: FixedClock) -> AIService:
    """Small chunks, so batch work crosses chunk boundaries in tests."""
    return AIService(storage.unit_of_work, clock, HeuristicIntelligence(), chunk_size=3)


@pytest.fixture
def gdpr(storage: Storage, clock: FixedClock) -> GDPRService:
    return GDPRService(storage.unit_of_work, clock)


@pytest.fixture
async def customer(service: CustomerService, tenant: str) -> Customer:
    """A customer of ``tenant``, created through the service."""
    return await service.create_customer(tenant, {"email": "buyer@example.com"})


@pytest.fixture
def customer_id(customer: Customer) -> int:
    return customer.id


@pytest.fixture
def tenant() -> str:
    return new_tenant_id("a")


@pytest.fixture
def other_tenant() -> str:
    return new_tenant_id("b")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Admin URL of a real PostgreSQL (embedded unless LINKBAY_TEST_POSTGRES_URL is set)."""
    yield from server_url(tmp_path_factory.mktemp("postgres"))


def _run_apart(coroutine: Coroutine[object, object, str]) -> str:
    """Run ``coroutine`` on an event loop of its own, in a thread: a session fixture
    first asked for by an async fixture (``request.getfixturevalue``) runs inside the
    test's loop, where ``asyncio.run`` is refused."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: str) -> str:
    """A migrated PostgreSQL database shared by the session (tests use fresh tenants)."""
    return _run_apart(new_postgres_database(postgres_server))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file shared by the session (tests use fresh tenants)."""
    return _run_apart(new_sqlite_database(tmp_path_factory.mktemp("sqlite")))


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A new database of each kind with no schema at all."""
    return await database_of_kind(request, tmp_path_factory, revision=None)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each real database in turn."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture(scope="session")
def shared_chat_server() -> Iterator[ChatServer]:
    """A local OpenAI-compatible chat server (``tests._chat_server``) for the session."""
    from tests._chat_server import running_chat_server

    with running_chat_server() as server:
        yield server


@pytest.fixture
def chat_server(shared_chat_server: ChatServer) -> ChatServer:
    """The local chat server, its past forgotten, answering every request well."""
    from tests._chat_server import Reply, good_answer

    shared_chat_server.play(Reply(good_answer))
    return shared_chat_server
