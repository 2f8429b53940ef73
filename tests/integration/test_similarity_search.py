"""Similarity search on PostgreSQL: the HNSW index of the default partition, shared by
every tenant without a partition of its own.

A tenant below ``EXACT_SEARCH_MAX_ROWS`` live customers is ranked exactly; the
tests that are about the index lower that threshold to 0. For a tenant of 30
customers the planner would still rather sort them than walk the index, so the
tests about the iterative scan also price sorting out (``enable_sort = off``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, text

from linkbay_customers.domain import (
    EMBEDDING_DIMENSIONS,
    Customer,
    cosine_similarity,
    embedding_values,
)
from linkbay_customers.heuristics import behaviour_embedding
from linkbay_customers.testing import T0, new_tenant_id
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, default_models
from linkbay_customers_sqlalchemy._repositories import _postgresql as postgresql
from tests._databases import new_postgres_database

OTHER_TENANTS = 3
OTHERS_PER_TENANT = 1000
OURS = 30
RECALL_CUSTOMERS = 3000
SHOPPERS = 4000  # customers of the behavioural tenant, in GROUPS groups buying alike
GROUPS = 2
QUERIES = 20
HNSW_INDEX = "ix_customer_embeddings_embedding_hnsw"
VERSION = "random-v1"  # the version every embedding here is stored under
# The default partition's part of it, as ``populate`` builds it again.
SHARED_HNSW_INDEX = "customer_embeddings__part_shared_embedding_idx"


@dataclass(frozen=True)
class Population:
    url: str
    small_tenant: str  # OURS customers among OTHER_TENANTS * OTHERS_PER_TENANT others
    small: dict[int, list[float]]
    large_tenant: str
    large: dict[int, list[float]]
    shop_tenant: str
    shoppers: dict[int, list[float]]


def unit_vector(rng: random.Random) -> list[float]:
    vector = [rng.gauss(0.0, 1.0) for _ in range(EMBEDDING_DIMENSIONS)]
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector]


def shopper_embedding(rng: random.Random, n: int) -> list[float]:
    """The embedding of a generated history, as benchmarks/intelligence.py generates
    them: one to three orders of random totals at random times over two years, each of
    one or two of the five products of the customer's group."""
    orders = 1 + n % 3
    totals = [Decimal(f"{5 + rng.random() * 200:.2f}") for _ in range(orders)]
    dates = [T0 - timedelta(days=rng.random() * 700) for _ in range(orders)]
    products: dict[str, int] = {}
    for order in range(3 * n, 3 * n + orders):
        for line in range(1, 2 + order % 2):
            product = f"p-{(n % GROUPS) * 5 + (order + line * 7) % 5}"
            products[product] = products.get(product, 0) + 1 + order % 3
    customer = Customer(
        id=n,
        tenant_id="generated",
        email=None,
        created_at=T0,
        updated_at=T0,
        total_orders=orders,
        total_spent=sum(totals, Decimal(0)),
        average_order_value=sum(totals, Decimal(0)) / orders,
        first_order_at=min(dates),
        last_order_at=max(dates),
    )
    vector = behaviour_embedding(customer, products)
    assert vector is not None
    return embedding_values(vector)


def exact_nearest(
    vectors: dict[int, list[float]], query: Sequence[float], limit: int
) -> list[tuple[int, float]]:
    ranked = sorted(
        ((customer_id, cosine_similarity(query, v)) for customer_id, v in vectors.items()),
        key=lambda item: (-item[1], item[0]),
    )
    return ranked[:limit]


async def add_customers(
    storage: SqlAlchemyStorage,
    tenant: str,
    rng: random.Random,
    count: int,
    embedding: Callable[[random.Random, int], list[float]] = lambda rng, _: unit_vector(rng),
) -> dict[int, list[float]]:
    async with storage.unit_of_work(tenant) as uow:
        ids = await uow.customers.next_ids(count)
        vectors = {customer_id: embedding(rng, customer_id) for customer_id in ids}
        customers = [
            Customer(
                id=customer_id,
                tenant_id=tenant,
                email=None,
                created_at=T0,
                updated_at=T0,
                embedding=vector,
                embedding_version=VERSION,
            )
            for customer_id, vector in vectors.items()
        ]
        assert list(await uow.customers.add_many(customers)) == []
        await uow.commit()
    return vectors


async def populate(url: str) -> Population:
    rng = random.Random(20240601)
    storage = SqlAlchemyStorage.from_url(url)
    (hnsw,) = [i for i in default_models().tables()["embedding"].indexes if i.name == HNSW_INDEX]
    try:
        # Building the index once over every row takes a fraction of the time
        # that inserting each row into it does.
        async with storage.engine.begin() as connection:
            await connection.run_sync(hnsw.drop)
        for _ in range(OTHER_TENANTS):
            await add_customers(storage, new_tenant_id("other"), rng, OTHERS_PER_TENANT)
        small_tenant, large_tenant = new_tenant_id("small"), new_tenant_id("large")
        small = await add_customers(storage, small_tenant, rng, OURS)
        large = await add_customers(storage, large_tenant, rng, RECALL_CUSTOMERS)
        shop_tenant = new_tenant_id("shop")
        shoppers = await add_customers(storage, shop_tenant, rng, SHOPPERS, shopper_embedding)
        async with storage.engine.begin() as connection:
            await connection.run_sync(hnsw.create)
            await connection.execute(text("ANALYZE customers, customer_embeddings"))
    finally:
        await storage.close()
    return Population(url, small_tenant, small, large_tenant, large, shop_tenant, shoppers)


@pytest.fixture(scope="module")
def population(postgres_server: str) -> Population:
    """A database of its own: these tests need the index and statistics to be theirs."""
    url = asyncio.run(new_postgres_database(postgres_server))
    return asyncio.run(populate(url))


@pytest.fixture
async def storage(population: Population) -> AsyncIterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(population.url)
    yield storage
    await storage.close()


@pytest.fixture
def through_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgresql, "EXACT_SEARCH_MAX_ROWS", 0)


@pytest.fixture
def statements(storage: SqlAlchemyStorage) -> Iterator[list[tuple[str, Any]]]:
    """The similarity search statements the storage runs, with their parameters."""
    captured: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if "<=>" in statement:
            captured.append((statement, parameters))

    event.listen(storage.engine.sync_engine, "before_cursor_execute", capture)
    yield captured
    event.remove(storage.engine.sync_engine, "before_cursor_execute", capture)


async def nearest(
    storage: SqlAlchemyStorage, tenant: str, query: Sequence[float], limit: int, *, sort: bool
) -> Sequence[tuple[Customer, float]]:
    async with storage.unit_of_work(tenant) as uow:
        if not sort:
            await uow.execute(text("SET LOCAL enable_sort = off"), action="pricing sorts out")
        return await uow.customers.nearest(query, limit=limit)


async def plan(
    storage: SqlAlchemyStorage,
    tenant: str,
    statement: tuple[str, Any],
    *,
    analyze: bool,
    sort: bool = True,
) -> str:
    """EXPLAIN of a captured statement, with the settings ``nearest`` makes."""
    sql, parameters = statement
    options = "ANALYZE, COSTS OFF, TIMING OFF" if analyze else "COSTS OFF"
    async with storage.unit_of_work(tenant) as uow:
        if not sort:
            await uow.execute(text("SET LOCAL enable_sort = off"), action="pricing sorts out")
        await uow.execute(
            postgresql.SIMILARITY_SEARCH_SETTINGS,
            {"ef_search": str(postgresql.MIN_EF_SEARCH)},
            action="configuring",
        )
        connection = await uow.connection()
        result = await connection.exec_driver_sql(f"EXPLAIN ({options}) {sql}", parameters)
        return "\n".join(str(line) for line in result.scalars())


def first_line(explained: str, containing: str) -> str:
    return next(line for line in explained.splitlines() if containing in line)


@pytest.mark.parametrize("way", ["index", "exact"])
async def test_a_small_tenant_among_many_still_gets_its_nearest_customers(
    storage: SqlAlchemyStorage,
    population: Population,
    monkeypatch: pytest.MonkeyPatch,
    way: str,
) -> None:
    if way == "index":
        monkeypatch.setattr(postgresql, "EXACT_SEARCH_MAX_ROWS", 0)
    rng = random.Random(1)
    for _ in range(5):
        query = unit_vector(rng)
        found = await nearest(storage, population.small_tenant, query, 10, sort=way == "exact")
        assert len(found) == 10
        assert all(c.tenant_id == population.small_tenant for c, _ in found)
        scores = [score for _, score in found]
        assert scores == sorted(scores, reverse=True)
        expected = exact_nearest(population.small, query, 10)
        assert [c.id for c, _ in found] == [customer_id for customer_id, _ in expected]
        assert scores == pytest.approx([score for _, score in expected], abs=1e-5)


@pytest.mark.usefixtures("through_the_index")
async def test_the_iterative_index_scan_reads_past_other_tenants_rows(
    storage: SqlAlchemyStorage, population: Population, statements: list[tuple[str, Any]]
) -> None:
    await nearest(storage, population.small_tenant, unit_vector(random.Random(2)), 10, sort=False)
    assert len(statements) == 1  # the index found enough: no exact ranking after it
    explained = await plan(
        storage, population.small_tenant, statements[-1], analyze=True, sort=False
    )
    scan = explained.split(f"Index Scan using {SHARED_HNSW_INDEX}")[1]
    assert "actual rows=10" in scan.splitlines()[0], explained
    # About 100 of the others' rows for each of ours: far more than one pass of
    # ef_search candidates would have seen.
    removed = first_line(scan, "Rows Removed by Filter")
    assert int(removed.split(":")[1]) > postgresql.MIN_EF_SEARCH, explained


@pytest.mark.usefixtures("through_the_index")
async def test_when_the_index_finds_too_few_every_embedded_customer_is_ranked(
    storage: SqlAlchemyStorage, population: Population
) -> None:
    query = unit_vector(random.Random(3))
    found = await nearest(storage, population.small_tenant, query, OURS + 10, sort=False)
    assert [c.id for c, _ in found] == [i for i, _ in exact_nearest(population.small, query, 99)]


@pytest.mark.usefixtures("through_the_index")
async def test_the_index_finds_at_least_95_percent_of_the_exact_nearest_ten(
    storage: SqlAlchemyStorage, population: Population
) -> None:
    rng = random.Random(4)
    hits = 0
    for _ in range(QUERIES):
        query = unit_vector(rng)
        async with storage.unit_of_work(population.large_tenant) as uow:
            found = await uow.customers.nearest(query, limit=10)
        assert len(found) == 10
        expected = {customer_id for customer_id, _ in exact_nearest(population.large, query, 10)}
        hits += len(expected & {c.id for c, _ in found})
    recall = hits / (QUERIES * 10)
    assert recall >= 0.95


@pytest.mark.usefixtures("through_the_index")
async def test_a_large_tenant_is_searched_through_the_hnsw_index(
    storage: SqlAlchemyStorage, population: Population, statements: list[tuple[str, Any]]
) -> None:
    async with storage.unit_of_work(population.large_tenant) as uow:
        await uow.customers.nearest(unit_vector(random.Random(5)), limit=10)
    explained = await plan(storage, population.large_tenant, statements[-1], analyze=False)
    assert f"Index Scan using {SHARED_HNSW_INDEX}" in explained, explained
    assert "Order By: (embedding <=> " in explained, explained


async def test_a_small_tenant_is_ranked_exactly_without_touching_the_index(
    storage: SqlAlchemyStorage, population: Population, statements: list[tuple[str, Any]]
) -> None:
    async with storage.unit_of_work(population.small_tenant) as uow:
        await uow.customers.nearest(unit_vector(random.Random(6)), limit=10)
    explained = await plan(storage, population.small_tenant, statements[-1], analyze=True)
    relaxed = explained.split("CTE relaxed")[1].split("CTE tenant_size")[0]
    assert "never executed" in relaxed.splitlines()[1], explained


@pytest.mark.usefixtures("through_the_index")
async def test_a_customer_and_their_nearest_are_read_in_one_statement_through_the_index(
    storage: SqlAlchemyStorage, population: Population, statements: list[tuple[str, Any]]
) -> None:
    for customer_id in random.Random(6).sample(sorted(population.large), 5):
        statements.clear()
        async with storage.unit_of_work(population.large_tenant) as uow:
            customer, found = await uow.customers.neighbours_of(
                customer_id, embedding_version=VERSION, limit=10
            )
            assert len(statements) == 1
            alone = await uow.customers.nearest(
                population.large[customer_id], limit=10, exclude=[customer_id]
            )
        assert customer is not None
        assert customer.id == customer_id
        assert found is not None
        assert [c.id for c, _ in found] == [c.id for c, _ in alone]
        assert [s for _, s in found] == pytest.approx([s for _, s in alone], abs=1e-6)
        assert customer_id not in {c.id for c, _ in found}
    explained = await plan(storage, population.large_tenant, statements[0], analyze=True)
    assert f"Index Scan using {SHARED_HNSW_INDEX}" in explained, explained
    assert "Order By: (embedding <=> (InitPlan" in explained, explained


@pytest.mark.usefixtures("through_the_index")
async def test_a_customer_and_their_nearest_are_the_only_statement_their_read_sends(
    storage: SqlAlchemyStorage, population: Population
) -> None:
    # The tenant setting goes with the transaction's BEGIN, not as a statement of its own.
    first, second = random.Random(8).sample(sorted(population.large), 2)
    async with storage.unit_of_work(population.large_tenant, read_only=True) as uow:
        await uow.customers.neighbours_of(first, embedding_version=VERSION, limit=10)
    sent: list[str] = []

    def capture(*args: Any) -> None:
        sent.append(args[2])

    event.listen(storage.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with storage.unit_of_work(population.large_tenant, read_only=True) as uow:
            customer, found = await uow.customers.neighbours_of(
                second, embedding_version=VERSION, limit=10
            )
    finally:
        event.remove(storage.engine.sync_engine, "before_cursor_execute", capture)
    assert customer is not None
    assert found is not None
    assert len(found) == 10
    assert len(sent) == 1, sent
    assert "<=>" in sent[0]


@pytest.mark.usefixtures("through_the_index")
async def test_a_connection_without_the_similarity_settings_still_finds_the_nearest(
    population: Population,
) -> None:
    # An engine whose connections start without the iterative scan: the statement
    # sees it and leaves the search to ``nearest``, which sets what it needs.
    storage = SqlAlchemyStorage.from_url(
        population.url, connect_args={"server_settings": {"hnsw.iterative_scan": "off"}}
    )
    try:
        customer_id = min(population.large)
        async with storage.unit_of_work(population.large_tenant) as uow:
            customer, found = await uow.customers.neighbours_of(
                customer_id, embedding_version=VERSION, limit=10
            )
            alone = await uow.customers.nearest(
                population.large[customer_id], limit=10, exclude=[customer_id]
            )
    finally:
        await storage.close()
    assert customer is not None
    assert customer.id == customer_id
    assert found is not None
    assert [c.id for c, _ in found] == [c.id for c, _ in alone]
    assert len(found) == 10


@pytest.mark.usefixtures("through_the_index")
async def test_without_a_stored_embedding_of_the_version_no_search_runs(
    storage: SqlAlchemyStorage, population: Population, statements: list[tuple[str, Any]]
) -> None:
    customer_id = min(population.large)
    async with storage.unit_of_work(population.large_tenant) as uow:
        customer, found = await uow.customers.neighbours_of(
            customer_id, embedding_version="another-v9", limit=10
        )
        assert customer is not None
        assert (customer.id, found) == (customer_id, None)
        # No such customer: nothing.
        for unknown in (max(population.large) + 1, 10**15):
            assert await uow.customers.neighbours_of(
                unknown, embedding_version=VERSION, limit=10
            ) == (None, None)
    explained = await plan(storage, population.large_tenant, statements[0], analyze=True)
    scan = explained.split(f"Index Scan using {SHARED_HNSW_INDEX}")[1]
    assert "never executed" in scan.splitlines()[0], explained


@pytest.mark.usefixtures("through_the_index")
async def test_the_index_finds_95_percent_of_the_nearest_ten_among_customers_who_buy_alike(
    storage: SqlAlchemyStorage, population: Population
) -> None:
    # Customers of one group differ only in their totals and dates, and the index
    # must still tell their nearest ten apart. Counted tie-aware: a customer exactly
    # as close as the tenth counts.
    shoppers = population.shoppers
    close = 0
    references = random.Random(7).sample(sorted(shoppers), 40)
    for customer_id in references:
        async with storage.unit_of_work(population.shop_tenant) as uow:
            customer, found = await uow.customers.neighbours_of(
                customer_id, embedding_version=VERSION, limit=10
            )
        assert customer is not None
        assert found is not None
        assert len(found) == 10
        query = shoppers[customer_id]
        others = {i: v for i, v in shoppers.items() if i != customer_id}
        tenth = exact_nearest(others, query, 10)[-1][1]
        close += sum(cosine_similarity(query, shoppers[c.id]) >= tenth - 1e-12 for c, _ in found)
    assert close / (10 * len(references)) >= 0.95
