from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from linkbay_customers import CustomersContainer, bootstrap
from linkbay_customers.testing import FixedClock
from linkbay_customers_fastapi import create_app
from tests.api._support import tenant_headers


@pytest.fixture
async def container(database_url: str, clock: FixedClock) -> AsyncIterator[CustomersContainer]:
    """A container over each real database in turn."""
    container = bootstrap(database_url, clock=clock)
    yield container
    await container.storage().close()


@pytest.fixture
async def memory_container(clock: FixedClock) -> AsyncIterator[CustomersContainer]:
    container = bootstrap("memory://", clock=clock)
    yield container
    await container.storage().close()


@pytest.fixture
def app(container: CustomersContainer) -> FastAPI:
    return create_app(container)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def memory_client(memory_container: CustomersContainer) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(memory_container))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def headers(tenant: str) -> dict[str, str]:
    return tenant_headers(tenant)


@pytest.fixture
def other_headers(other_tenant: str) -> dict[str, str]:
    return tenant_headers(other_tenant, actor="user_789")
