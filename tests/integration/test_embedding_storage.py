"""Embeddings live beside the customers: written only when they change.

Every new version of a row costs an entry in each index of its table, and the
HNSW index's are the dearest. On PostgreSQL the embedding row's ``xmin`` (the
transaction that wrote this version of it) shows whether a write touched it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from linkbay_customers import AIService, CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.domain import embedding_values, quantize_money
from linkbay_customers.ports import CustomerProfile
from linkbay_customers.testing import FixedClock
from linkbay_customers_sqlalchemy import SqlAlchemyStorage
from tests._databases import new_sqlite_database


@pytest.fixture
async def storage(postgres_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(postgres_url)
    yield storage
    await storage.close()


async def as_tenant(storage: SqlAlchemyStorage, tenant: str, sql: str, **values: Any) -> Any:
    """One value of ``sql`` run under the tenant's row-level security setting."""
    async with storage.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
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


async def test_an_order_rewrites_the_embedding_row_at_once_and_nothing_else_does(
    storage: SqlAlchemyStorage, tenant: str, clock: FixedClock
) -> None:
    service = CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())
    ai = AIService(storage.unit_of_work, clock, HeuristicIntelligence())
    customer = await service.create_customer(tenant, {"email": "ada@example.com"})
    await service.record_order(tenant, customer.id, ORDER)
    written = await embedding_row_version(storage, tenant, customer.id)  # before any scoring

    await service.update_customer(tenant, customer.id, {"first_name": "Ada"})
    await ai.update_customer_segment(tenant, customer.id)
    await ai.score_tenant(tenant)
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


SQLITE_WRITE_COUNTER = (
    "CREATE TABLE embedding_writes (n INTEGER NOT NULL)",
    "INSERT INTO embedding_writes VALUES (0)",
    *(
        f"CREATE TRIGGER embedding_{event.lower()} AFTER {event} ON customer_embeddings"
        " BEGIN UPDATE embedding_writes SET n = n + 1; END"
        for event in ("INSERT", "UPDATE", "DELETE")
    ),
)


class EmbeddingWrites:
    """Counts the rows of ``customer_embeddings`` written: on SQLite by triggers, on
    PostgreSQL by the rows whose version (``xmin``) is new or gone."""

    def __init__(self, storage: SqlAlchemyStorage, tenant: str) -> None:
        self.storage, self.tenant = storage, tenant
        self.versions: dict[int, str] = {}

    async def start(self) -> None:
        if self.storage.engine.dialect.name == "sqlite":
            async with self.storage.engine.begin() as connection:
                for statement in SQLITE_WRITE_COUNTER:
                    await connection.execute(text(statement))
        else:
            self.versions = await self._versions()

    async def _versions(self) -> dict[int, str]:
        async with self.storage.engine.connect() as connection:
            await connection.execute(
                text("SELECT set_config('linkbay.tenant_id', :tenant, false)"),
                {"tenant": self.tenant},
            )
            rows = await connection.execute(
                text(
                    "SELECT customer_id, xmin::text FROM customer_embeddings"
                    " WHERE tenant_id = :tenant"
                ),
                {"tenant": self.tenant},
            )
            return {row.customer_id: row.xmin for row in rows}

    async def since_start(self) -> int:
        """Rows written since ``start`` or the last call (on PostgreSQL, rows written
        twice count once)."""
        if self.storage.engine.dialect.name == "sqlite":
            async with self.storage.engine.begin() as connection:
                count = (await connection.execute(text("SELECT n FROM embedding_writes"))).scalar()
                await connection.execute(text("UPDATE embedding_writes SET n = 0"))
            return int(count or 0)
        before, self.versions = self.versions, await self._versions()
        return sum(before.get(c) != self.versions.get(c) for c in before.keys() | self.versions)


async def shop_of_twenty(
    service: CustomerService,
    tenant: str,
    clock: FixedClock,
    orders: Callable[[int], int],
    *,
    days: int,
) -> list[int]:
    """Twenty customers, the n-th with ``orders(n)`` orders ``days`` apart; their ids."""
    ids = []
    for n in range(20):
        customer = await service.create_customer(tenant, {"email": f"c{n}@example.com"})
        ids.append(customer.id)
        for k in range(orders(n)):
            item = {"product_id": f"p{n % 5}", "product_name": "P", "quantity": 1 + k}
            clock.advance(days=days)
            await service.record_order(
                tenant,
                customer.id,
                {**ORDER, "order_id": f"o{n}-{k}", "items": [{**item, "unit_price": "3"}]},
            )
    return ids


@pytest.fixture(params=["sqlite", "postgres"])
async def any_storage(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SqlAlchemyStorage]:
    # SQLite: a file of its own, for the triggers that count the writes.
    if request.param == "sqlite":
        url = await new_sqlite_database(tmp_path)
    else:
        url = request.getfixturevalue("postgres_url")
    storage = SqlAlchemyStorage.from_url(url)
    yield storage
    await storage.close()


async def test_scoring_on_days_without_changes_rewrites_no_embedding(
    any_storage: SqlAlchemyStorage, tenant: str, clock: FixedClock
) -> None:
    service = CustomerService(any_storage.unit_of_work, clock, HeuristicIntelligence())
    ai = AIService(any_storage.unit_of_work, clock, HeuristicIntelligence(), chunk_size=7)
    writes = EmbeddingWrites(any_storage, tenant)
    await writes.start()
    await shop_of_twenty(service, tenant, clock, lambda n: n % 3, days=3)
    buyers = sum(1 for n in range(20) if n % 3)
    assert await embedding_rows(any_storage, tenant) == buyers
    assert await writes.since_start() >= buyers  # each order wrote its customer's

    runs = []
    for _ in range(3):
        clock.advance(days=1)
        summary = await ai.score_tenant(tenant)
        runs.append((summary.customers, summary.embeddings_written, await writes.since_start()))
    assert runs == [(20, 0, 0)] * 3


async def full_recompute(
    storage: SqlAlchemyStorage, tenant: str, clock: FixedClock
) -> dict[int, tuple[Any, ...]]:
    """Every customer's scores and embedding as the heuristics give them from scratch,
    beside what is stored."""
    async with storage.unit_of_work(tenant) as uow:
        customers = await uow.customers.list_after(0, limit=1000)  # type: ignore[attr-defined]
        purchases = await uow.orders.purchases([c.id for c in customers])  # type: ignore[attr-defined]
    products: dict[int, dict[str, int]] = {}
    for p in purchases:
        products.setdefault(p.customer_id, {})[p.product_id] = p.quantity
    scores = await HeuristicIntelligence().score_many(
        [CustomerProfile(c, products.get(c.id, {})) for c in customers], now=clock.now(), months=12
    )
    by_id = {c.id: c for c in customers}
    return {
        s.customer_id: (
            (by_id[s.customer_id].segment, s.segment),
            (by_id[s.customer_id].churn_risk_score, s.churn_risk),
            (by_id[s.customer_id].customer_lifetime_value, quantize_money(s.lifetime_value)),
            (by_id[s.customer_id].embedding, s.embedding and embedding_values(s.embedding)),
            (by_id[s.customer_id].scored_at, clock.now()),
        )
        for s in scores
    }


async def test_the_next_day_rewrites_only_the_changed_customers_embeddings_as_a_full_recompute(
    any_storage: SqlAlchemyStorage, tenant: str, clock: FixedClock
) -> None:
    service = CustomerService(any_storage.unit_of_work, clock, HeuristicIntelligence())
    ai = AIService(any_storage.unit_of_work, clock, HeuristicIntelligence(), chunk_size=7)
    ids = await shop_of_twenty(service, tenant, clock, lambda n: 1 + n % 3, days=2)
    await ai.score_tenant(tenant)
    writes = EmbeddingWrites(any_storage, tenant)
    await writes.start()

    clock.advance(days=1)
    # An order through the service stores its customer's embedding at once...
    await service.record_order(
        tenant,
        ids[4],
        {
            **ORDER,
            "order_id": "o-new",
            "items": [{"product_id": "p9", "product_name": "P", "quantity": 5, "unit_price": "3"}],
        },
    )
    assert await writes.since_start() == 1
    # ...and a path outside the services changes another customer's order lines,
    # stamping the customer changed.
    async with any_storage.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT set_config('linkbay.tenant_id', :tenant, true)"), {"tenant": tenant}
            )
        await connection.execute(
            text(
                "UPDATE customer_order_lines SET product_id = 'p-elsewhere'"
                " WHERE tenant_id = :tenant AND order_pk IN (SELECT id FROM customer_orders"
                " WHERE tenant_id = :tenant AND customer_id = :customer)"
            ),
            {"tenant": tenant, "customer": ids[9]},
        )
        await connection.execute(
            text("UPDATE customers SET updated_at = :now WHERE tenant_id = :tenant AND id = :id"),
            {"tenant": tenant, "id": ids[9], "now": clock.now()},
        )

    clock.advance(days=1)
    summary = await ai.score_tenant(tenant)

    assert summary.customers == 20
    assert summary.embeddings_written == 1  # the customer changed outside the services
    assert await writes.since_start() == 1
    recomputed = await full_recompute(any_storage, tenant, clock)
    assert set(recomputed) == set(ids)
    for pairs in recomputed.values():
        for stored, fresh in pairs:
            assert stored == fresh


async def test_a_customer_reads_back_the_stored_32_bit_floats_of_their_embedding(
    any_storage: SqlAlchemyStorage, tenant: str, clock: FixedClock
) -> None:
    # PostgreSQL sends the vector in binary (vector_send, 32-bit floats): the values
    # are pgvector's own, as its text form prints them, on every read path; SQLite
    # keeps the same.
    service = CustomerService(any_storage.unit_of_work, clock, HeuristicIntelligence())
    customer = await service.create_customer(tenant, {"email": "reader@example.com"})
    await service.record_order(tenant, customer.id, ORDER)
    as_text = "embedding" if any_storage.dialect == "sqlite" else "embedding::text"
    stored = await as_tenant(
        any_storage,
        tenant,
        f"SELECT {as_text} FROM customer_embeddings"
        " WHERE tenant_id = :tenant AND customer_id = :customer",
        customer=customer.id,
    )
    values = embedding_values(float(v) for v in str(stored).strip("[]").split(","))
    assert len(values) == 32
    assert any(v not in (0.0, 1.0) for v in values)

    one = await service.get_customer(tenant, customer.id)  # the hot read
    page = await service.list_customers(tenant)  # through SQLAlchemy's result
    assert one.embedding == values
    assert [c.embedding for c in page.items] == [values]
    assert all(type(v) is float for v in one.embedding)
