"""Embeddings live beside the customers: written only when they change.

Every new version of a row costs an entry in each index of its table, and the
HNSW index's are the dearest. On PostgreSQL the embedding row's ``xmin`` (the
transaction that wrote this version of it) shows whether a write touched it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from linkbay_customers import AIService, CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.testing import FixedClock
from linkbay_customers_sqlalchemy import SqlAlchemyStorage


@pytest.fixture
async def storage(postgres_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(postgres_url)
    yield storage
    await storage.close()


async def as_tenant(storage: SqlAlchemyStorage, tenant: str, sql: str, **values: Any) -> Any:
    """One value of ``sql`` run under the tenant's row-level security setting."""
    async with storage.engine.connect() as connection:
        await connection.execute(
            text("SELECT set_config('linkbay.tenant_id', :tenant, false)"), {"tenant": tenant}
        )
        rows = await connection.execute(text(sql), {"tenant": tenant, **values})
        return rows.scalar_one()


async def embedding_row_version(storage: SqlAlchemyStorage, tenant: str, customer: int) -> str:
    """The transaction that wrote the customer's embedding row as it is now (``xmin``)."""
    return str(
        await as_tenant(
            storage,
            tenant,
            "SELECT xmin::text FROM customer_embeddings"
            " WHERE tenant_id = :tenant AND customer_id = :customer",
            customer=customer,
        )
    )


ORDER = {
    "order_id": "o-1",
    "total": "120",
    "currency": "EUR",
    "items": [{"product_id": "bike", "product_name": "Bike", "quantity": 1, "unit_price": "120"}],
}


async def test_customer_writes_and_drift_within_the_tolerance_leave_the_embedding_row_alone(
    storage: SqlAlchemyStorage, tenant: str, clock: FixedClock
) -> None:
    service = CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())
    ai = AIService(storage.unit_of_work, clock, HeuristicIntelligence())
    customer = await service.create_customer(tenant, {"email": "ada@example.com"})
    await service.record_order(tenant, customer.id, ORDER)
    await ai.score_tenant(tenant)
    written = await embedding_row_version(storage, tenant, customer.id)

    await service.update_customer(tenant, customer.id, {"first_name": "Ada"})
    await ai.update_customer_segment(tenant, customer.id)
    clock.advance(days=1)
    await ai.score_tenant(tenant)
    assert await embedding_row_version(storage, tenant, customer.id) == written

    await service.record_order(
        tenant,
        customer.id,
        {
            **ORDER,
            "order_id": "o-2",
            "items": [
                {"product_id": "tea", "product_name": "Tea", "quantity": 9, "unit_price": "3"}
            ],
        },
    )
    await ai.score_tenant(tenant)
    assert await embedding_row_version(storage, tenant, customer.id) != written


async def embedding_rows(storage: SqlAlchemyStorage, tenant: str) -> int:
    return int(
        await as_tenant(
            storage, tenant, "SELECT count(*) FROM customer_embeddings WHERE tenant_id = :tenant"
        )
    )


@pytest.mark.parametrize("hard", [False, True])
async def test_erasure_removes_the_embedding_row(
    storage: SqlAlchemyStorage, tenant: str, clock: FixedClock, hard: bool
) -> None:
    service = CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())
    ai = AIService(storage.unit_of_work, clock, HeuristicIntelligence())
    gdpr = GDPRService(storage.unit_of_work, clock)
    customer = await service.create_customer(tenant, {"email": "bo@example.com"})
    await service.record_order(tenant, customer.id, ORDER)
    await ai.score_tenant(tenant)
    assert await embedding_rows(storage, tenant) == 1
    await gdpr.delete_customer_data(tenant, customer.id, anonymize=not hard)
    assert await embedding_rows(storage, tenant) == 0
