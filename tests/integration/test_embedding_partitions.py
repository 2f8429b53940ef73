"""A large tenant's embeddings in a partition of their own (PostgreSQL).

Its first scoring, by a role that owns the tables, loads its embeddings into a
table of its own, indexes them at once and attaches the table as the tenant's
partition of ``customer_embeddings``; everyone else stays in the default
partition. The tests lower the size from which a tenant counts as large.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from linkbay_customers import AIService, CustomerService, HeuristicIntelligence
from linkbay_customers.domain import EMBEDDING_DIMENSIONS, DerivedData
from linkbay_customers.heuristics import EMBEDDING_VERSION
from linkbay_customers.ports import (
    CustomerIntelligence,
    CustomerProfile,
    CustomerScores,
    EmbeddingBulkLoad,
)
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_sqlalchemy import SqlAlchemyStorage
from linkbay_customers_sqlalchemy._repositories import _postgresql as postgresql
from tests._databases import new_postgres_database, shown_setting

LARGE = 12
# Customers with orders: those without have no embedding (``fill`` gives i % 3 orders).
EMBEDDED = sum(1 for i in range(LARGE) if i % 3)


@pytest.fixture
async def owner(postgres_server: str) -> AsyncIterator[SqlAlchemyStorage]:
    """A storage on a database of its own, connected as the tables' owner."""
    storage = SqlAlchemyStorage.from_url(await new_postgres_database(postgres_server))
    yield storage
    await storage.close()


@pytest.fixture(autouse=True)
def large_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgresql, "OWN_PARTITION_MIN_ROWS", LARGE)


async def fill(storage: SqlAlchemyStorage, tenant: str, clock: FixedClock, count: int) -> None:
    service = CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())
    for i in range(count):
        customer = await service.create_customer(tenant, {"email": f"c{i}@example.com"})
        for n in range(i % 3):
            await service.record_order(
                tenant,
                customer.id,
                {
                    "order_id": f"o-{i}-{n}",
                    "total": str(10 + 7 * i + n),
                    "currency": "EUR",
                    "items": [
                        {
                            "product_id": f"p-{(i + n) % 5}",
                            "product_name": "Product",
                            "quantity": 1 + n,
                            "unit_price": str(10 + 7 * i + n),
                        }
                    ],
                },
            )
    # Orders store their customer's embedding as they come; a first scoring is of
    # a tenant whose histories have none yet (stored by a version that kept no
    # embedding with each order, or their embeddings removed to be rebuilt).
    async with storage.engine.begin() as connection:
        await connection.execute(
            text("SELECT set_config('linkbay.tenant_id', :tenant, true)"), {"tenant": tenant}
        )
        await connection.execute(
            text("DELETE FROM customer_embeddings WHERE tenant_id = :tenant"), {"tenant": tenant}
        )


async def partitions(storage: SqlAlchemyStorage) -> dict[str, str]:
    """Each partition of ``customer_embeddings``: its name → its bound."""
    async with storage.engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits AS i"
                " JOIN pg_class AS c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'customer_embeddings'::regclass"
            )
        )
        return {str(name): str(bound) for name, bound in rows.all()}


async def hnsw_index_of(storage: SqlAlchemyStorage, table: str) -> str:
    """The definition of the table's HNSW index."""
    async with storage.engine.connect() as connection:
        index = await connection.scalar(
            text(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index"
                " WHERE indrelid = to_regclass(:name) AND pg_get_indexdef(indexrelid) LIKE"
                " '%USING hnsw%'"
            ),
            {"name": table},
        )
    return str(index)


async def count_in(storage: SqlAlchemyStorage, table: str, tenant: str) -> int:
    async with storage.engine.connect() as connection:
        found = await connection.scalar(
            text(f"SELECT count(*) FROM {table} WHERE tenant_id = :tenant"), {"tenant": tenant}
        )
        return int(found or 0)


async def similar_everywhere(
    ai: AIService, tenant: str, ids: Sequence[int]
) -> list[list[tuple[int, float]]]:
    return [
        [(s.customer.id, s.similarity_score) for s in await ai.find_similar_customers(tenant, i)]
        for i in ids
    ]


async def customer_ids(storage: SqlAlchemyStorage, tenant: str) -> list[int]:
    async with storage.unit_of_work(tenant) as uow:
        return [c.id for c in await uow.customers.list_after(0, limit=1000)]  # type: ignore[attr-defined]


async def test_a_large_tenants_first_scoring_gives_it_a_partition_and_the_same_answers(
    owner: SqlAlchemyStorage, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    large, small = new_tenant_id(), new_tenant_id()
    for tenant in (large, small):
        await fill(owner, tenant, clock, LARGE)
    ai = AIService(owner.unit_of_work, clock, HeuristicIntelligence())
    monkeypatch.setattr(postgresql, "OWN_PARTITION_MIN_ROWS", LARGE + 1)
    await ai.score_tenant(small)  # one customer short of large: the default partition
    monkeypatch.setattr(postgresql, "OWN_PARTITION_MIN_ROWS", LARGE)
    await ai.score_tenant(large)

    parts = await partitions(owner)
    own = [name for name, bound in parts.items() if f"'{large}'" in bound]
    assert len(own) == 1
    assert "__part_" in own[0]
    assert parts["customer_embeddings__part_shared"] == "DEFAULT"
    assert await count_in(owner, own[0], large) == EMBEDDED
    assert await count_in(owner, "customer_embeddings__part_shared", large) == 0
    assert await count_in(owner, "customer_embeddings__part_shared", small) == EMBEDDED
    index = await hnsw_index_of(owner, own[0])
    async with owner.engine.connect() as connection:
        # A part of the partitioned table's HNSW index, built with more candidates.
        attached = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_index AS i JOIN pg_inherits AS h ON h.inhrelid ="
                " i.indexrelid WHERE i.indrelid = to_regclass(:name)"
                " AND h.inhparent = 'ix_customer_embeddings_embedding_hnsw'::regclass"
            ),
            {"name": own[0]},
        )
    assert "vector_cosine_ops" in index
    assert f"ef_construction='{postgresql.OWN_PARTITION_EF_CONSTRUCTION}'" in index
    assert attached == 1

    # The same customers, scored the same way, are as similar in either partition.
    large_ids, small_ids = await customer_ids(owner, large), await customer_ids(owner, small)
    in_own = await similar_everywhere(ai, large, large_ids)
    in_shared = await similar_everywhere(ai, small, small_ids)
    position = {small_id: i for i, small_id in enumerate(small_ids)}
    assert [[(large_ids[position[i]], s) for i, s in found] for found in in_shared] == in_own

    # A second scoring writes through the partitioned table, into the tenant's own.
    clock.advance(days=30)
    await ai.score_tenant(large)
    assert set(await partitions(owner)) == set(parts)
    assert await count_in(owner, own[0], large) == EMBEDDED


async def test_the_tenants_partition_is_read_only_through_its_tenant_policy(
    owner: SqlAlchemyStorage, clock: FixedClock
) -> None:
    tenant, other = new_tenant_id(), new_tenant_id()
    await fill(owner, tenant, clock, LARGE)
    await AIService(owner.unit_of_work, clock, HeuristicIntelligence()).score_tenant(tenant)
    async with owner.engine.connect() as connection:
        await connection.execute(text("SET ROLE NONE"))
        role = "partition_reader"
        await connection.execute(text(f"CREATE ROLE {role} NOSUPERUSER NOBYPASSRLS"))
        await connection.execute(text(f"GRANT SELECT ON customer_embeddings TO {role}"))
        await connection.execute(text(f"SET ROLE {role}"))
        counts = {}
        for who in (tenant, other):
            await connection.execute(
                text("SELECT set_config('linkbay.tenant_id', :t, false)"), {"t": who}
            )
            counts[who] = await connection.scalar(text("SELECT count(*) FROM customer_embeddings"))
        own = next(name for name, bound in (await partitions(owner)).items() if tenant in bound)
        with pytest.raises(Exception, match="permission denied"):
            await connection.execute(text(f"SELECT count(*) FROM {own}"))
    assert counts == {tenant: EMBEDDED, other: 0}


async def test_an_application_role_scores_a_large_tenant_into_the_shared_partition(
    app_storage: SqlAlchemyStorage, owner: SqlAlchemyStorage, clock: FixedClock
) -> None:
    tenant = new_tenant_id()
    await fill(app_storage, tenant, clock, LARGE)
    before = await partitions(owner)  # another database: the shared one is app_storage's
    ai = AIService(app_storage.unit_of_work, clock, HeuristicIntelligence())
    await ai.score_tenant(tenant)
    async with app_storage.engine.connect() as connection:
        own = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'customer_embeddings'::regclass"
            )
        )
        await connection.execute(
            text("SELECT set_config('linkbay.tenant_id', :t, false)"), {"t": tenant}
        )
        embedded = await connection.scalar(text("SELECT count(*) FROM customer_embeddings"))
    assert own == 1  # the default partition alone
    assert embedded == EMBEDDED
    assert before == await partitions(owner)


async def load_by_hand(
    storage: SqlAlchemyStorage,
    tenant: str,
    embeddings: dict[int, list[float] | None],
    *,
    version: str,
    since: datetime,
) -> None:
    """Begin a load of the tenant's embeddings and write ``embeddings`` into it, as a
    scoring's first chunk would."""
    async with storage.unit_of_work(tenant) as uow:
        store = uow.customers
        assert isinstance(store, EmbeddingBulkLoad)
        assert await store.begin_embedding_load(version=version)
        await uow.commit()
    async with storage.unit_of_work(tenant) as uow:
        await uow.customers.update_derived(  # type: ignore[attr-defined]
            [
                DerivedData(
                    customer_id=i,
                    segment="new",
                    churn_risk_score=0.5,
                    customer_lifetime_value=None,
                    embedding=embedding,
                    embedding_version=None if embedding is None else version,
                    scored_at=since,
                    score_source="test",
                )
                for i, embedding in embeddings.items()
            ]
        )
        await uow.commit()


async def end_load_by_hand(storage: SqlAlchemyStorage, tenant: str, since: datetime) -> None:
    async with storage.unit_of_work(tenant) as uow:
        store = uow.customers
        assert isinstance(store, EmbeddingBulkLoad)
        await store.end_embedding_load(since=since, complete=True)
        await uow.commit()


class FailingLater(CustomerIntelligence):
    """The heuristics, until the second chunk: then the model fails."""

    name = "failing"

    def __init__(self) -> None:
        self._inner = HeuristicIntelligence()
        self._calls = 0

    async def score_many(
        self, profiles: Sequence[CustomerProfile], *, now: datetime, months: int = 12
    ) -> list[CustomerScores]:
        self._calls += 1
        if self._calls > 1:
            raise RuntimeError("the model went away")
        return await self._inner.score_many(profiles, now=now, months=months)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_an_interrupted_first_scoring_leaves_no_loaded_table_behind(
    owner: SqlAlchemyStorage, clock: FixedClock
) -> None:
    tenant = new_tenant_id()
    await fill(owner, tenant, clock, LARGE)
    failing = AIService(owner.unit_of_work, clock, FailingLater(), chunk_size=LARGE // 2)
    with pytest.raises(RuntimeError, match="went away"):
        await failing.score_tenant(tenant)
    assert list(await partitions(owner)) == ["customer_embeddings__part_shared"]
    async with owner.engine.connect() as connection:
        loaded = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_class WHERE relkind = 'r'"
                " AND relname LIKE 'customer_embeddings\\_\\_part\\_%'"
            )
        )
    assert loaded == 1  # the default partition; the table loaded into is gone
    await AIService(owner.unit_of_work, clock, HeuristicIntelligence()).score_tenant(tenant)
    assert len(await partitions(owner)) == 2


async def test_a_customer_changed_during_the_load_keeps_none_of_the_loaded_embedding(
    owner: SqlAlchemyStorage, clock: FixedClock
) -> None:
    tenant = new_tenant_id()
    await fill(owner, tenant, clock, LARGE)
    ids = await customer_ids(owner, tenant)
    since = clock.now()
    loaded = [1.0] + [0.0] * (EMBEDDING_DIMENSIONS - 1)
    await load_by_hand(owner, tenant, dict.fromkeys(ids, loaded), version="v", since=since)
    clock.advance(minutes=5)
    service = CustomerService(owner.unit_of_work, clock, HeuristicIntelligence())
    await service.update_customer(tenant, ids[0], {"first_name": "Changed"})
    await service.delete_customer(tenant, ids[1])
    await end_load_by_hand(owner, tenant, since)
    async with owner.unit_of_work(tenant) as uow:
        after = {
            i: (await uow.customers.get(i, include_deleted=True)).embedding  # type: ignore[union-attr]
            for i in ids
        }
    assert after[ids[0]] != loaded
    assert after[ids[1]] is None
    assert all(after[i] == pytest.approx(loaded) for i in ids[2:])


async def test_a_load_its_process_left_unfinished_is_dropped_by_the_next_first_scoring(
    owner: SqlAlchemyStorage, clock: FixedClock
) -> None:
    tenant = new_tenant_id()
    await fill(owner, tenant, clock, LARGE)
    async with owner.unit_of_work(tenant) as uow:
        store = uow.customers
        assert isinstance(store, EmbeddingBulkLoad)
        assert await store.begin_embedding_load(version="v")
        await uow.commit()
    # Another process (a storage of its own) scores the tenant after this one stopped.
    later = SqlAlchemyStorage.from_url(owner.engine.url.render_as_string(hide_password=False))
    try:
        await AIService(later.unit_of_work, clock, HeuristicIntelligence()).score_tenant(tenant)
    finally:
        await later.close()
    own = [name for name, bound in (await partitions(owner)).items() if tenant in bound]
    assert len(own) == 1
    assert await count_in(owner, own[0], tenant) == EMBEDDED


async def partition_oid(storage: SqlAlchemyStorage, tenant: str) -> int:
    """The tenant's own partition as a relation (a new table has a new one)."""
    (name,) = [name for name, bound in (await partitions(storage)).items() if tenant in bound]
    async with storage.engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT CAST(to_regclass(:name) AS oid)::bigint"), {"name": name}
        )
    return int(found)


async def versions_in(storage: SqlAlchemyStorage, tenant: str) -> dict[str, int]:
    async with storage.engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT version, count(*) FROM customer_embeddings WHERE tenant_id = :tenant"
                " GROUP BY version"
            ),
            {"tenant": tenant},
        )
        return {str(version): int(count) for version, count in rows.all()}


def scoring_of_v2(storage: SqlAlchemyStorage, clock: FixedClock) -> AIService:
    """Scoring as a release of the previous embedding layout stored it."""
    return AIService(
        storage.unit_of_work, clock, HeuristicIntelligence(), embedding_version="behaviour-v2"
    )


async def test_the_first_scoring_after_an_embedding_upgrade_replaces_the_partition_at_once(
    owner: SqlAlchemyStorage, clock: FixedClock
) -> None:
    upgraded, fresh = new_tenant_id(), new_tenant_id()
    for tenant in (upgraded, fresh):
        await fill(owner, tenant, clock, LARGE)
    old = scoring_of_v2(owner, clock)
    await old.score_tenant(upgraded)
    former = await partition_oid(owner, upgraded)
    assert await versions_in(owner, upgraded) == {"behaviour-v2": EMBEDDED}

    clock.advance(days=1)
    ai = AIService(owner.unit_of_work, clock, HeuristicIntelligence())
    await ai.score_tenant(upgraded)
    await ai.score_tenant(fresh)

    # A new table took the former partition's place, indexed at once.
    replaced = await partition_oid(owner, upgraded)
    assert replaced != former
    parts = await partitions(owner)
    assert len([bound for bound in parts.values() if f"'{upgraded}'" in bound]) == 1
    assert await versions_in(owner, upgraded) == {EMBEDDING_VERSION: EMBEDDED}
    own = next(name for name, bound in parts.items() if f"'{upgraded}'" in bound)
    index = await hnsw_index_of(owner, own)
    assert f"ef_construction='{postgresql.OWN_PARTITION_EF_CONSTRUCTION}'" in index
    # The same answers as a tenant whose first scoring was of the current version.
    upgraded_ids, fresh_ids = await customer_ids(owner, upgraded), await customer_ids(owner, fresh)
    position = {i: n for n, i in enumerate(fresh_ids)}
    in_fresh = await similar_everywhere(ai, fresh, fresh_ids)
    assert await similar_everywhere(ai, upgraded, upgraded_ids) == [
        [(upgraded_ids[position[i]], s) for i, s in found] for found in in_fresh
    ]
    # And the next day finds them current: the partition stays.
    clock.advance(days=1)
    summary = await ai.score_tenant(upgraded)
    assert summary.embeddings_written == 0
    assert await partition_oid(owner, upgraded) == replaced


async def test_a_tenant_with_older_embeddings_in_the_shared_partition_gets_its_own_at_once(
    owner: SqlAlchemyStorage, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, other = new_tenant_id(), new_tenant_id()
    for t in (tenant, other):
        await fill(owner, t, clock, LARGE)
    small = scoring_of_v2(owner, clock)
    monkeypatch.setattr(postgresql, "OWN_PARTITION_MIN_ROWS", LARGE + 1)
    await small.score_tenant(other)  # beside it in the shared partition, left as it is
    monkeypatch.setattr(postgresql, "OWN_PARTITION_MIN_ROWS", LARGE)
    async with owner.engine.begin() as connection:  # older embeddings, as a past release left
        await connection.execute(
            text(
                "INSERT INTO customer_embeddings (tenant_id, customer_id, embedding, version)"
                " SELECT CAST(:tenant AS varchar), id, CAST(:vector AS vector), 'behaviour-v2'"
                " FROM customers"
                " WHERE tenant_id = :tenant AND total_orders > 0"
            ),
            {"tenant": tenant, "vector": str([1.0] + [0.0] * (EMBEDDING_DIMENSIONS - 1))},
        )
    assert await count_in(owner, "customer_embeddings__part_shared", tenant) == EMBEDDED

    await AIService(owner.unit_of_work, clock, HeuristicIntelligence()).score_tenant(tenant)

    assert await count_in(owner, "customer_embeddings__part_shared", tenant) == 0
    assert await count_in(owner, "customer_embeddings__part_shared", other) == EMBEDDED
    assert await versions_in(owner, tenant) == {EMBEDDING_VERSION: EMBEDDED}
    own = [name for name, bound in (await partitions(owner)).items() if f"'{tenant}'" in bound]
    assert len(own) == 1
    assert await count_in(owner, own[0], tenant) == EMBEDDED


async def test_a_customer_changed_during_an_upgrade_load_keeps_the_embedding_its_change_wrote(
    owner: SqlAlchemyStorage, clock: FixedClock
) -> None:
    tenant = new_tenant_id()
    await fill(owner, tenant, clock, LARGE)
    old = scoring_of_v2(owner, clock)
    await old.score_tenant(tenant)
    ids = await customer_ids(owner, tenant)
    clock.advance(days=1)
    since = clock.now()
    loaded = [1.0] + [0.0] * (EMBEDDING_DIMENSIONS - 1)
    async with owner.unit_of_work(tenant) as uow:
        chunk = await uow.customers.list_after(0, limit=LARGE)  # type: ignore[attr-defined]
    embeddings = {c.id: loaded if c.total_orders else None for c in chunk}
    await load_by_hand(owner, tenant, embeddings, version=EMBEDDING_VERSION, since=since)
    clock.advance(minutes=5)
    service = CustomerService(owner.unit_of_work, clock, HeuristicIntelligence())
    changed = next(c for c in chunk if c.total_orders)
    await service.record_order(
        tenant,
        changed.id,
        {
            "order_id": "o-during-the-load",
            "total": "99.00",
            "currency": "EUR",
            "items": [
                {
                    "product_id": "p-9",
                    "product_name": "Product",
                    "quantity": 2,
                    "unit_price": "49.50",
                }
            ],
        },
    )
    async with owner.unit_of_work(tenant) as uow:
        written = (await uow.customers.get(changed.id)).embedding  # type: ignore[union-attr]
    await end_load_by_hand(owner, tenant, since)
    async with owner.unit_of_work(tenant) as uow:
        after = {i: (await uow.customers.get(i)).embedding for i in ids}  # type: ignore[union-attr]
    assert written is not None
    assert written != pytest.approx(loaded)
    assert after[changed.id] == pytest.approx(written)
    others = [c.id for c in chunk if c.total_orders and c.id != changed.id]
    assert all(after[i] == pytest.approx(loaded) for i in others)
    assert await versions_in(owner, tenant) == {EMBEDDING_VERSION: EMBEDDED}


async def test_the_partitions_index_build_gets_the_memory_its_graph_needs(
    postgres_server: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server whose connections start with 1 MB: less than the graph of even a few
    # embeddings is counted to need (see test_index_build_memory.py).
    storage = SqlAlchemyStorage.from_url(
        await new_postgres_database(postgres_server),
        connect_args={"server_settings": {"maintenance_work_mem": "1MB"}},
    )
    seen: list[tuple[int | None, str]] = []
    build = postgresql.PostgresFeatures.build_hnsw_index

    async def watched(self: postgresql.PostgresFeatures, connection: Any, *args: Any) -> None:
        await build(self, connection, *args)
        setting = await connection.scalar(text("SHOW maintenance_work_mem"))
        seen.append((args[-1], str(setting)))

    monkeypatch.setattr(postgresql.PostgresFeatures, "build_hnsw_index", watched)
    try:
        tenant = new_tenant_id()
        await fill(storage, tenant, clock, LARGE)
        await AIService(storage.unit_of_work, clock, HeuristicIntelligence()).score_tenant(tenant)
        async with storage.engine.connect() as connection:
            after = await connection.scalar(text("SHOW maintenance_work_mem"))
    finally:
        await storage.close()

    wanted = postgresql.hnsw_build_memory(EMBEDDED, EMBEDDING_DIMENSIONS, 16)
    assert seen == [(EMBEDDING_DIMENSIONS, shown_setting(wanted))]
    assert after == "1MB"
