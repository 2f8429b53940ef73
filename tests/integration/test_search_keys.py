"""Search compares one folding on every database: the stored search keys, and
revision 0009, which fills them for the customers already stored."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from linkbay_customers import CustomerService, HeuristicIntelligence
from linkbay_customers.domain import search_key
from linkbay_customers.testing import FixedClock
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, create_engine, default_models, upgrade
from linkbay_customers_sqlalchemy._migrate import alembic_config
from tests._databases import customer_row, database_of_kind

NAMES = {1: ("İlker", "Öztürk"), 2: ("Sisyphus", "ΣΊΣΥΦΟΣ"), 3: ("Hans", "Straße")}
UNNAMED = (None, None)
# More customers than the revision writes in one batch, in two tenants.
PER_TENANT = 700


@pytest.fixture(params=["sqlite", "postgres"])
async def database_at_0008(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    url = await database_of_kind(request, tmp_path_factory, revision="0008")
    customers = default_models().tables()["customer"]
    rows = [
        customer_row(
            tenant,
            i,
            email=f"c{i}.{tenant}@EXÄMPLE.com",
            first_name=NAMES.get(i % 100, UNNAMED)[0],
            last_name=NAMES.get(i % 100, UNNAMED)[1],
        )
        for tenant in ("a", "b")
        for i in range(1, PER_TENANT + 1)
    ]
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                # Rows written below the library, as the owner: past the forced policies.
                await connection.execute(text("SET row_security = off"))
            await connection.execute(customers.insert(), rows)
    finally:
        await engine.dispose()
    return url


async def _stored_keys(url: str) -> list[tuple[object, ...]]:
    customers = default_models().tables()["customer"]
    c = customers.c
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                await connection.execute(text("SET row_security = off"))
            rows = await connection.execute(
                select(
                    c.email,
                    c.first_name,
                    c.last_name,
                    c.search_email,
                    c.search_first_name,
                    c.search_last_name,
                )
            )
            return [tuple(row) for row in rows]
    finally:
        await engine.dispose()


async def test_revision_0009_fills_every_customers_search_keys(database_at_0008: str) -> None:
    await upgrade(database_at_0008)
    stored = await _stored_keys(database_at_0008)
    assert len(stored) == 2 * PER_TENANT
    for email, first, last, *keys in stored:
        assert keys == [None if v is None else search_key(v) for v in (email, first, last)]
    storage = SqlAlchemyStorage.from_url(database_at_0008)
    try:
        service = CustomerService(storage.unit_of_work, FixedClock(), HeuristicIntelligence())
        found = await service.search_customers("a", "ilker ozturk", limit=100)
        assert [c.id for c in found] == list(range(1, PER_TENANT + 1, 100))
        assert {(c.first_name, c.last_name) for c in found} == {("İlker", "Öztürk")}
        found = await service.search_customers("b", "σίσυφος", limit=100)
        assert [c.id for c in found] == list(range(2, PER_TENANT + 1, 100))
        found = await service.search_customers("b", "STRASSE", limit=100)
        assert [c.id for c in found] == list(range(3, PER_TENANT + 1, 100))
        exact = await service.search_customers("a", "C7.A@example.COM", limit=5)
        assert [c.id for c in exact] == [7]
    finally:
        await storage.close()


async def test_revision_0009_downgrades_to_the_table_without_search_keys(
    database_at_0008: str,
) -> None:
    await upgrade(database_at_0008)
    engine = create_engine(database_at_0008)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda c: command.downgrade(alembic_config(c), "0008"))
            columns = await connection.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("customers")}
            )
    finally:
        await engine.dispose()
    assert not {"search_email", "search_first_name", "search_last_name"} & columns
    assert {"email", "first_name", "last_name"} <= columns
