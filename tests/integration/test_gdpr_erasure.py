"""Erasure, checked on the database itself: every column of every table, as text."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Text, cast, select

from linkbay_customers import CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_sqlalchemy import SqlAlchemyStorage
from tests.unit.test_gdpr import live_a_life, personal_values


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(database_url)
    yield storage
    await storage.close()


async def every_cell(storage: SqlAlchemyStorage, tenant: str) -> list[tuple[str, str, str]]:
    """(table, column, value as text) for every non-null cell of every table, in the
    tenant's rows (other tests share the database)."""
    cells = []
    async with storage.engine.connect() as connection:
        for table in storage.models.tables().values():
            columns = [cast(column, Text).label(column.name) for column in table.columns]
            rows = await connection.execute(select(*columns).where(table.c.tenant_id == tenant))
            for row in rows:
                cells += [
                    (table.name, name, value)
                    for name, value in row._mapping.items()
                    if value is not None
                ]
    return cells


def services(
    storage: SqlAlchemyStorage, clock: FixedClock | None = None
) -> tuple[CustomerService, GDPRService]:
    clock = clock or FixedClock()
    return (
        CustomerService(storage.unit_of_work, clock, HeuristicIntelligence()),
        GDPRService(storage.unit_of_work, clock),
    )


async def test_after_anonymization_no_column_of_any_table_holds_a_personal_value(
    storage: SqlAlchemyStorage,
) -> None:
    service, gdpr = services(storage)
    tenant = new_tenant_id("erase")
    mario = await live_a_life(service, gdpr, tenant)
    await gdpr.export_customer_data(tenant, mario.id)
    values = personal_values()
    before = [
        cell for cell in await every_cell(storage, tenant) if any(v in cell[2] for v in values)
    ]
    tables = storage.models.tables()
    assert {table for table, _, _ in before} >= {
        tables[role].name for role in ("customer", "address", "note", "order", "consent_event")
    }, "the scripted life must have reached every table holding personal data"

    await gdpr.delete_customer_data(tenant, mario.id, anonymize=True)

    leaks = [
        cell for cell in await every_cell(storage, tenant) if any(v in cell[2] for v in values)
    ]
    assert leaks == []


async def test_after_hard_deletion_only_the_audit_trail_references_the_customer(
    storage: SqlAlchemyStorage,
) -> None:
    service, gdpr = services(storage)
    tenant = new_tenant_id("erase")
    mario = await live_a_life(service, gdpr, tenant)
    ids = {mario.id, *(a.alias_id for a in await service.list_aliases(tenant, mario.id))}
    bystander = await service.create_customer(
        tenant, {"email": "keep@example.com", "first_name": "Giulia"}
    )

    await gdpr.delete_customer_data(tenant, mario.id, anonymize=False, actor="dpo")

    references = []
    customers = storage.models.tables()["customer"]
    async with storage.engine.connect() as connection:
        for table in storage.models.tables().values():
            key = table.c.id if table is customers else table.c.get("customer_id")
            if key is None:
                continue
            rows = await connection.execute(
                select(table).where(table.c.tenant_id == tenant, key.in_(ids))
            )
            references += [(table.name, dict(row._mapping)) for row in rows]
    audit = storage.models.tables()["audit_event"].name
    assert {name for name, _ in references} == {audit}
    assert "data.erased" in {row["action"] for _, row in references}
    leaks = [
        cell
        for cell in await every_cell(storage, tenant)
        if any(v in cell[2] for v in personal_values())
    ]
    assert leaks == []
    assert (await service.get_customer(tenant, bystander.id)).email == "keep@example.com"
