"""A database that cannot serve a call yields StorageError (HTTP 503), never a crash."""

from __future__ import annotations

import socket

import httpx
import pytest

from linkbay_customers import CustomerService, HeuristicIntelligence, StorageError
from linkbay_customers.testing import FixedClock
from linkbay_customers_fastapi import add_problem_handlers, create_customer_router, header_tenancy
from linkbay_customers_sqlalchemy import SqlAlchemyStorage


def _service(storage: SqlAlchemyStorage) -> CustomerService:
    return CustomerService(storage.unit_of_work, FixedClock(), HeuristicIntelligence())


async def test_a_pool_with_no_free_connection_in_time_is_a_storage_error(
    postgres_url: str,
) -> None:
    storage = SqlAlchemyStorage.from_url(postgres_url, pool_size=1, pool_timeout=0.2)
    service = _service(storage)
    created = await service.create_customer("acme", {"email": "pool@example.com"})
    try:
        async with storage.unit_of_work("acme") as holder:
            await holder.customers.get(created.id)  # the only connection is taken
            with pytest.raises(StorageError, match="no free database connection"):
                await service.get_customer("acme", created.id)
        assert (await service.get_customer("acme", created.id)).email == "pool@example.com"
    finally:
        await storage.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_server_is_a_storage_error_and_a_503_problem() -> None:
    url = f"postgresql+asyncpg://app@127.0.0.1:{_closed_port()}/customers"
    storage = SqlAlchemyStorage.from_url(url)
    try:
        with pytest.raises(StorageError, match="connecting failed"):
            await _service(storage).get_customer("acme", 1)

        from fastapi import FastAPI

        app = FastAPI()
        add_problem_handlers(app)
        tenancy = header_tenancy()
        app.include_router(
            create_customer_router(
                _service(storage), get_tenant_id=tenancy.tenant_id, get_actor=tenancy.actor
            )
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/customers/1", headers={"X-Tenant-ID": "acme"})
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["status"] == 503
        assert problem["code"] == StorageError.code
        assert int(response.headers["Retry-After"]) > 0
        assert "127.0.0.1" not in response.text  # the driver's message stays in the log
    finally:
        await storage.close()
