"""Reads of read-only units of work on PostgreSQL: the adapter's SELECTs run outside a
transaction, the tenant set for the connection's session; row-level security binds
them, the tenant never reaches anything but a unit of work, and a failed or dropped
connection leaves the next read working."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import literal_column, select, text

from linkbay_customers import CustomerService, HeuristicIntelligence
from linkbay_customers.domain import StorageError
from linkbay_customers.testing import FixedClock, add_customer
from linkbay_customers_fastapi import add_problem_handlers, create_customer_router, header_tenancy
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, create_engine, default_models
from linkbay_customers_sqlalchemy._connection import TenantConnection

CUSTOMERS = default_models().customer.__table__  # type: ignore[attr-defined]
# No tenant filter: only row-level security keeps the other tenants' rows out.
EVERY_CUSTOMER = select(CUSTOMERS.c.tenant_id, CUSTOMERS.c.email).order_by(CUSTOMERS.c.email)
FAILING = select(literal_column("1 / 0").label("never"))


@pytest.fixture
async def tenants(postgres_url: str) -> tuple[str, str]:
    """Tenants A and B with two customers each."""
    storage = SqlAlchemyStorage.from_url(postgres_url)
    tenants = (f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}")
    for tenant in tenants:
        async with storage.unit_of_work(tenant) as uow:
            for n in (1, 2):
                await add_customer(uow, email=f"{n}.{tenant}@example.com")
            await uow.commit()
    await storage.close()
    return tenants


@pytest.fixture
def transactions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The BEGINs and ROLLBACKs the connections send (SQLAlchemy's asyncpg adaptation
    sends them with ``execute``)."""
    sent: list[str] = []
    execute = TenantConnection.execute

    async def spy(self: TenantConnection, query: str, *args: Any, **kwargs: Any) -> str:
        if query.startswith(("BEGIN", "ROLLBACK", "COMMIT")):
            sent.append(query.split(";")[0])
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(TenantConnection, "execute", spy)
    return sent


async def _read(storage: SqlAlchemyStorage, tenant: str, statement: Any) -> list[tuple[Any, ...]]:
    async with storage.unit_of_work(tenant, read_only=True) as uow:
        rows = await uow.fetch(statement, {}, action="reading")
    return [tuple(row.values()) for row in rows]


async def test_reads_run_outside_a_transaction_and_row_level_security_binds_them(
    app_storage: SqlAlchemyStorage, tenants: tuple[str, str], transactions: list[str]
) -> None:
    a, b = tenants
    await app_storage.ping()  # the connection opened (SQLAlchemy asks the server first)
    transactions.clear()
    # One connection (the pool holds one), its session's tenant switched each time.
    for tenant in (a, b, b, a):
        assert await _read(app_storage, tenant, EVERY_CUSTOMER) == [
            (tenant, f"1.{tenant}@example.com"),
            (tenant, f"2.{tenant}@example.com"),
        ]
    assert transactions == []
    # A unit of work that writes still runs its own transaction of its tenant.
    async with app_storage.unit_of_work(b) as uow:
        rows = await uow.fetch(EVERY_CUSTOMER, {}, action="reading")
        assert {row["tenant_id"] for row in rows} == {b}
    assert transactions[0].startswith("BEGIN")
    assert await _read(app_storage, a, EVERY_CUSTOMER) == [
        (a, f"1.{a}@example.com"),
        (a, f"2.{a}@example.com"),
    ]


async def test_a_read_only_unit_of_work_still_refuses_writes(
    app_storage: SqlAlchemyStorage, tenants: tuple[str, str]
) -> None:
    a, _ = tenants
    async with app_storage.unit_of_work(a, read_only=True) as uow:
        assert len(await uow.fetch(EVERY_CUSTOMER, {}, action="reading")) == 2
        with pytest.raises(StorageError, match="read-only"):
            await uow.execute(
                CUSTOMERS.update().values(first_name="X").where(CUSTOMERS.c.tenant_id == a),
                action="writing",
            )


async def test_a_connection_used_outside_a_unit_of_work_carries_no_tenant(
    app_storage: SqlAlchemyStorage, tenants: tuple[str, str]
) -> None:
    a, _ = tenants
    assert len(await _read(app_storage, a, EVERY_CUSTOMER)) == 2
    # The same connection (the pool holds one), checked out by the host's own code.
    async with app_storage.engine.connect() as connection:
        setting = await connection.scalar(text("SELECT current_setting('linkbay.tenant_id', true)"))
        seen = await connection.scalar(text("SELECT count(*) FROM customers"))
    assert (setting or None, seen) == (None, 0)
    assert len(await _read(app_storage, a, EVERY_CUSTOMER)) == 2


async def test_a_failed_read_leaves_the_connection_usable(
    app_storage: SqlAlchemyStorage, tenants: tuple[str, str]
) -> None:
    a, b = tenants
    with pytest.raises(StorageError, match="reading failed: division by zero"):
        await _read(app_storage, a, FAILING)
    assert [row[0] for row in await _read(app_storage, b, EVERY_CUSTOMER)] == [b, b]
    async with app_storage.unit_of_work(b, read_only=True) as uow:
        assert len(await uow.fetch(EVERY_CUSTOMER, {}, action="reading")) == 2
        with pytest.raises(StorageError, match="division by zero"):
            await uow.fetch(FAILING, {}, action="reading")
        assert len(await uow.fetch(EVERY_CUSTOMER, {}, action="reading")) == 2
    assert [row[0] for row in await _read(app_storage, a, EVERY_CUSTOMER)] == [a, a]


async def test_a_read_on_a_connection_the_server_dropped_is_sent_again_on_a_new_one(
    app_storage: SqlAlchemyStorage, tenants: tuple[str, str], postgres_url: str
) -> None:
    a, b = tenants
    async with app_storage.unit_of_work(a, read_only=True) as uow:
        await uow.fetch(EVERY_CUSTOMER, {}, action="reading")
        pid = await uow.fetch(
            select(literal_column("pg_backend_pid()").label("pid")), {}, action=""
        )
    admin = create_engine(postgres_url)
    async with admin.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid[0]["pid"]})
    await admin.dispose()
    assert [row[0] for row in await _read(app_storage, b, EVERY_CUSTOMER)] == [b, b]
    assert [row[0] for row in await _read(app_storage, a, EVERY_CUSTOMER)] == [a, a]


@pytest.fixture
async def client(app_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API over one pooled connection of the application role."""
    storage = SqlAlchemyStorage.from_url(app_url, pool_size=1, pool_timeout=2)
    app = FastAPI()
    add_problem_handlers(app)
    tenancy = header_tenancy()
    service = CustomerService(storage.unit_of_work, FixedClock(), HeuristicIntelligence())
    app.include_router(
        create_customer_router(service, get_tenant_id=tenancy.tenant_id, get_actor=tenancy.actor)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await storage.close()


async def test_over_http_another_tenants_customer_is_not_found_on_the_same_connection(
    client: httpx.AsyncClient,
) -> None:
    a = {"X-Tenant-ID": f"a-{uuid.uuid4().hex[:8]}"}
    b = {"X-Tenant-ID": f"b-{uuid.uuid4().hex[:8]}"}
    created = await client.post("/customers", json={"email": "mario@example.com"}, headers=a)
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    for _ in range(2):
        mine = await client.get(f"/customers/{customer_id}", headers=a)
        assert (mine.status_code, mine.json()["email"]) == (200, "mario@example.com")
        theirs = await client.get(f"/customers/{customer_id}", headers=b)
        assert theirs.status_code == 404
        assert theirs.headers["content-type"] == "application/problem+json"
        assert theirs.json()["code"] == "customer_not_found"
    invalid = await client.get("/customers/not-a-number", headers=a)
    assert invalid.status_code == 422
    assert "customer_id" in invalid.text
    # B's first customer has the same id (ids are counted per tenant); each tenant
    # reads its own on the one connection.
    other = await client.post("/customers", json={"email": "anna@example.com"}, headers=b)
    assert other.json()["id"] == customer_id
    for headers, email in ((b, "anna@example.com"), (a, "mario@example.com")):
        found = await client.get(f"/customers/{customer_id}", headers=headers)
        assert found.json()["email"] == email


async def test_a_tenant_setting_cut_short_is_still_reset_for_the_host(
    app_storage: SqlAlchemyStorage, tenants: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server carried out the setting, but the read was cancelled as its answer
    # came: the connection does not know its session's tenant, and resets it.
    a, _ = tenants
    execute = asyncpg.Connection.execute

    async def applied_then_cancelled(self: Any, query: str, *args: Any, **kwargs: Any) -> str:
        status: str = await execute(self, query, *args, **kwargs)
        if query.startswith("SELECT set_config('linkbay.tenant_id'") and args:
            raise asyncio.CancelledError
        return status

    monkeypatch.setattr(asyncpg.Connection, "execute", applied_then_cancelled)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(_read(app_storage, a, EVERY_CUSTOMER))
    monkeypatch.setattr(asyncpg.Connection, "execute", execute)
    async with app_storage.engine.connect() as connection:
        setting = await connection.scalar(text("SELECT current_setting('linkbay.tenant_id', true)"))
        seen = await connection.scalar(text("SELECT count(*) FROM customers"))
    assert (setting or None, seen) == (None, 0)


async def test_on_an_autocommit_engine_no_read_leaves_its_tenant_to_the_next(
    app_url: str, tenants: tuple[str, str]
) -> None:
    # Autocommit sends no BEGIN to carry a transaction's tenant: a session's tenant
    # left by a read would be what row-level security sees for the next tenant.
    a, b = tenants
    storage = SqlAlchemyStorage.from_url(
        app_url, pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT"
    )
    try:
        await _read(storage, a, EVERY_CUSTOMER)
        async with storage.unit_of_work(b) as uow:
            rows = (await uow.execute(EVERY_CUSTOMER, action="reading")).all()
        assert all(tenant == b for tenant, _ in rows)
    finally:
        await storage.close()
