"""The hot statements on the asyncpg connection itself: the same customers in and out
as through SQLAlchemy, the tenant setting and row-level security, the same errors,
the transaction SQLAlchemy commits and rolls back."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select, text

from linkbay_customers import CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.domain import (
    EMBEDDING_DIMENSIONS,
    ConsentState,
    CustomerFilters,
    DuplicateEmail,
    SchemaNotMigrated,
    StorageError,
    StorageRejected,
)
from linkbay_customers.testing import T0, FixedClock, add_customer, new_tenant_id
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, default_models

CUSTOMERS = default_models().customer.__table__  # type: ignore[attr-defined]


@pytest.fixture
async def storage(database_url: str) -> SqlAlchemyStorage:
    return SqlAlchemyStorage.from_url(database_url)


async def test_a_customer_read_by_id_is_the_one_sqlalchemy_reads(
    storage: SqlAlchemyStorage,
) -> None:
    tenant = new_tenant_id()
    async with storage.unit_of_work(tenant) as uow:
        stored = await add_customer(
            uow,
            email="élodie@example.com",
            first_name="Élodie",
            phone="+393331234567",
            birthday=date(1990, 5, 17),
            preferences={"language": "fr", "big": 2**70, "nested": {"a": [1, None]}},
            tags=["vip", "b2b"],
            total_orders=3,
            total_spent=Decimal("1234.5"),
            average_order_value=Decimal("411.5"),
            consent_data={
                "analytics": ConsentState(consented=True, date=T0, source="web"),
            },
            embedding=[0.25] * EMBEDDING_DIMENSIONS,
            embedding_version="v1",
            last_order_at=T0,
        )
        await uow.commit()
    async with storage.unit_of_work(tenant) as uow:
        by_id = await uow.customers.get(stored.id)  # the driver's statement on PostgreSQL
        (by_sqlalchemy,) = await uow.customers.get_many([stored.id])  # SQLAlchemy's
    await storage.close()
    assert by_id == by_sqlalchemy
    assert by_id is not None
    assert by_id.total_spent == Decimal("1234.5000")
    assert by_id.preferences["big"] == 2**70
    assert by_id.created_at == T0
    assert by_id.created_at.tzinfo is not None
    assert by_id.consent_data["analytics"].consented is True


async def test_a_customer_created_through_the_service_reads_back_whole(
    storage: SqlAlchemyStorage,
) -> None:
    tenant = new_tenant_id()
    service = CustomerService(storage.unit_of_work, FixedClock(), HeuristicIntelligence())
    created = await service.create_customer(
        tenant, {"email": "Ann@Example.com", "first_name": "Ann", "tags": ["x"]}, actor="u1"
    )
    read = await service.get_customer(tenant, created.id)
    async with storage.unit_of_work(tenant) as uow:
        (by_sqlalchemy,) = await uow.customers.get_many([created.id])
        events = (await uow.audit.list(customer_id=created.id)).items
    await storage.close()
    assert read == by_sqlalchemy == created
    assert [(e.action.value, e.actor, e.sequence) for e in events] == [
        ("customer.created", "u1", 1)
    ]


async def test_a_taken_email_is_still_a_duplicate_and_leaves_nothing_behind(
    storage: SqlAlchemyStorage,
) -> None:
    tenant = new_tenant_id()
    service = CustomerService(storage.unit_of_work, FixedClock(), HeuristicIntelligence())
    first = await service.create_customer(tenant, {"email": "a@example.com"})
    with pytest.raises(DuplicateEmail):
        await service.create_customer(tenant, {"email": "a@example.com"})
    second = await service.create_customer(tenant, {"email": "b@example.com"})
    async with storage.unit_of_work(tenant) as uow:
        events = (await uow.audit.list()).items
    await storage.close()
    # The refused create's id reservation was rolled back with it.
    assert second.id == first.id + 1
    assert [e.customer_id for e in events] == [first.id, second.id]


async def test_what_the_driver_wrote_is_rolled_back_unless_committed(
    storage: SqlAlchemyStorage,
) -> None:
    tenant = new_tenant_id()
    async with storage.unit_of_work(tenant) as uow:
        await add_customer(uow, email="dropped@example.com")
    async with storage.unit_of_work(tenant) as uow:
        kept = await add_customer(uow, email="kept@example.com")
        await uow.commit()
    async with storage.unit_of_work(tenant) as uow:
        assert await uow.customers.get_by_email("dropped@example.com") is None
        assert await uow.customers.get(kept.id) == kept
        assert kept.id == 1  # the dropped one's id went back with it
    await storage.close()


async def test_driver_errors_are_the_storage_errors_of_sqlalchemy(
    storage: SqlAlchemyStorage,
) -> None:
    async with storage.unit_of_work(new_tenant_id()) as uow:
        with pytest.raises(StorageRejected, match="misspelling failed"):
            await uow.fetch(text("SELEC 1 AS x"), {}, action="misspelling")
    async with storage.unit_of_work(new_tenant_id()) as uow:
        with pytest.raises(SchemaNotMigrated):
            await uow.fetch(text("SELECT * FROM no_such_table"), {}, action="reading")
    await storage.close()


async def test_a_read_only_unit_of_work_refuses_writes_on_the_driver_too(
    storage: SqlAlchemyStorage,
) -> None:
    async with storage.unit_of_work(new_tenant_id(), read_only=True) as uow:
        with pytest.raises(StorageError):
            await add_customer(uow)
    await storage.close()


async def test_row_level_security_binds_the_driver_statements(
    app_storage: SqlAlchemyStorage,
) -> None:
    tenant_a, tenant_b = new_tenant_id("a"), new_tenant_id("b")
    for tenant in (tenant_a, tenant_b):
        async with app_storage.unit_of_work(tenant) as uow:
            await add_customer(uow, email=f"{tenant}@example.com")
            await uow.commit()
    # Statements that ask for tenant B's rows, run in tenant A's transaction (each
    # the first statement, so the one that begins it): row-level security alone
    # keeps them out.
    tenant_rows = select(CUSTOMERS.c.tenant_id).where(CUSTOMERS.c.tenant_id == bindparam("t"))
    every_row = select(CUSTOMERS.c.tenant_id)
    for statement, parameters in ((tenant_rows, {"t": tenant_b}), (every_row, {})):
        async with app_storage.unit_of_work(tenant_a) as uow:
            rows = await uow.fetch(statement, parameters, action="reading customers")
        assert tenant_b not in {row["tenant_id"] for row in rows}
    async with app_storage.unit_of_work(tenant_a) as uow:
        assert await uow.fetch(tenant_rows, {"t": tenant_a}, action="reading") == [
            {"tenant_id": tenant_a}
        ]


async def test_statements_go_through_sqlalchemy_while_something_listens(
    storage: SqlAlchemyStorage,
) -> None:
    tenant = new_tenant_id()
    async with storage.unit_of_work(tenant) as uow:
        stored = await add_customer(uow)
        await uow.commit()
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(storage.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with storage.unit_of_work(tenant) as uow:
            assert await uow.customers.get(stored.id) == stored
    finally:
        event.remove(storage.engine.sync_engine, "before_cursor_execute", record)
    await storage.close()
    assert any("FROM customers" in statement for statement in seen)


async def test_ids_of_two_tables_reserved_at_once_follow_each_tables_own(
    storage: SqlAlchemyStorage,
) -> None:
    tenant = new_tenant_id()
    async with storage.unit_of_work(tenant) as uow:
        assert await uow.customers.next_ids(2) == [1, 2]
        assert await uow.next_ids_of([("customers", 1), ("audit", 3)]) == [[3], [1, 2, 3]]
        assert await uow.next_ids_of([("audit", 1), ("customers", 2)]) == [[4], [4, 5]]
        assert await uow.audit.next_ids(1) == [5]
        with pytest.raises(ValueError, match="at most once"):
            await uow.next_ids_of([("customers", 1), ("customers", 1)])
    await storage.close()


async def test_concurrent_creates_beside_an_import_leave_unique_ids_and_an_intact_trail(
    postgres_url: str,
) -> None:
    storage = SqlAlchemyStorage.from_url(postgres_url)
    clock = FixedClock()
    service = CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())
    tenant = new_tenant_id()
    rows = ({"email": f"imported{n}@example.com"} for n in range(300))
    created, imported = await asyncio.gather(
        asyncio.gather(
            *(service.create_customer(tenant, {"email": f"c{n}@example.com"}) for n in range(40))
        ),
        service.import_customers(tenant, rows, chunk_size=50),
    )
    verification = await GDPRService(storage.unit_of_work, clock).verify_audit_trail(tenant)
    async with storage.unit_of_work(tenant) as uow:
        listed = await uow.customers.list(CustomerFilters(), page=1, page_size=100)
    await storage.close()
    assert imported.created == 300
    assert listed.total == 340
    assert len({c.id for c in created}) == 40
    assert verification.intact
    assert verification.events == 340


async def test_the_statements_compiled_for_the_driver_are_bounded(postgres_url: str) -> None:
    # Statements built per large tenant and limit come and go: the storage keeps the
    # most recently used ones compiled, not every one it ever ran.
    storage = SqlAlchemyStorage.from_url(postgres_url)
    try:
        statements = [select(CUSTOMERS.c.id).limit(n) for n in range(1, 1100)]
        compiled = [storage._driver_statement(s, None) for s in statements]
        assert len(storage._driver_statements) == 1024
        assert storage._driver_statement(statements[-1], None) is compiled[-1]
        assert storage._driver_statement(statements[0], None) is not compiled[0]
    finally:
        await storage.close()
