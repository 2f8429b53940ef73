from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence

import pytest
from sqlalchemy import text

from linkbay_customers import CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.domain import Customer
from linkbay_customers.ports import bulk_import
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, create_engine
from linkbay_customers_sqlalchemy._models import default_models
from linkbay_customers_sqlalchemy._repositories import SqlCustomerRepository
from linkbay_customers_sqlalchemy._repositories._postgresql import (
    COPY_MIN_ROWS,
    GENERIC_PLAN,
    emails_probed_by_key,
)
from linkbay_customers_sqlalchemy._repositories._statements import customer_select
from tests._databases import new_postgres_database


@pytest.fixture
async def postgres_storage(postgres_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(postgres_url)
    yield storage
    await storage.close()


def _rows(prefix: str, count: int) -> list[dict[str, object]]:
    return [{"email": f"{prefix}{n}@example.com", "first_name": "Ada"} for n in range(count)]


async def test_an_import_chunk_whose_copy_meets_a_concurrent_email_runs_again_whole(
    postgres_storage: SqlAlchemyStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = CustomerService(postgres_storage.unit_of_work, FixedClock(), HeuristicIntelligence())
    tenant = new_tenant_id()
    # COPY has succeeded on both tables: it now runs without a savepoint.
    assert (await service.import_customers(tenant, _rows("a", COPY_MIN_ROWS))).created == (
        COPY_MIN_ROWS
    )
    late = await service.create_customer(tenant, {"email": "late@example.com"})
    # The email is committed after the chunk looked it up, as by a concurrent writer:
    # the first lookup misses it, so the chunk's COPY meets it.
    lookup = SqlCustomerRepository.get_many_by_email
    lookups: list[int] = []

    async def racing_lookup(
        self: SqlCustomerRepository, emails: Sequence[str]
    ) -> Mapping[str, Customer]:
        found = await lookup(self, emails)
        lookups.append(len(found))
        return found if len(lookups) > 1 else {}

    monkeypatch.setattr(SqlCustomerRepository, "get_many_by_email", racing_lookup)
    rows = [*_rows("b", COPY_MIN_ROWS), {"email": "late@example.com", "first_name": "Late"}]

    result = await service.import_customers(tenant, rows)

    assert (result.created, result.updated, result.rejected) == (COPY_MIN_ROWS, 1, 0)
    assert lookups == [1, 1]  # the chunk ran twice; the second run saw the customer
    assert (await service.get_customer(tenant, late.id)).first_name == "Late"
    assert (await service.list_customers(tenant)).total == 2 * COPY_MIN_ROWS + 1
    gdpr = GDPRService(postgres_storage.unit_of_work, FixedClock())
    assert (await gdpr.list_audit_events(tenant)).total == 2 * COPY_MIN_ROWS + 2
    assert (await gdpr.verify_audit_trail(tenant)).intact
    # The next chunks copy again, without a savepoint.
    monkeypatch.setattr(SqlCustomerRepository, "get_many_by_email", lookup)
    assert (await service.import_customers(tenant, _rows("c", COPY_MIN_ROWS))).created == (
        COPY_MIN_ROWS
    )
    assert (await gdpr.verify_audit_trail(tenant)).intact


_PROBE = "%AS wanted(email)%"


def _literal(value: object) -> str:
    if isinstance(value, list):
        return f"ARRAY[{', '.join(map(_literal, value))}]"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(int(str(value)))


async def _analyzed_beside_a_neighbour(postgres_server: str) -> str:
    """A fresh database whose statistics know one tenant of 100,000 customers, and a
    new tenant of 2,000 they do not know (as while a new tenant's import runs)."""
    url = await new_postgres_database(postgres_server)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(
            text(
                "INSERT INTO customers (tenant_id, id, email, preferences, tags, total_orders,"
                " total_spent, average_order_value, consent_data, is_anonymized, created_at,"
                " updated_at) SELECT 'neighbour', n, 'someone.' || n || '@example.com', '{}',"
                " '[]', 0, 0, 0, '{}', false, now(), now() FROM generate_series(1, 100000) AS n"
            )
        )
        await connection.execute(text("ANALYZE customers"))
    await engine.dispose()
    storage = SqlAlchemyStorage.from_url(url)
    service = CustomerService(storage.unit_of_work, FixedClock(), HeuristicIntelligence())
    assert (await service.import_customers("newcomer", _rows("a", 2000))).created == 2000
    await storage.close()
    return url


async def test_the_email_probe_of_a_tenant_the_statistics_miss_takes_the_unique_key(
    postgres_server: str,
) -> None:
    url = await _analyzed_beside_a_neighbour(postgres_server)
    wanted = [f"a{n}@example.com" for n in range(0, 2000, 2)]
    probe = emails_probed_by_key(
        customer_select(default_models().customer.__table__, default_models().embedding.__table__),
        default_models().customer.__table__,
        default_models().customer.__table__.c.tenant_id == "newcomer",
        wanted,
    )
    engine = create_engine(url)
    async with engine.connect() as connection:
        compiled = probe.compile(dialect=connection.dialect)
        values = [compiled.params[name] for name in compiled.positiontup or ()]
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.execute(f"PREPARE probe AS {compiled.string}")
        execute = f"EXPLAIN EXECUTE probe({', '.join(map(_literal, values))})"
        plans = {}
        async with driver.transaction():
            await driver.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            plans["custom"] = "\n".join(row[0] for row in await driver.fetch(execute))
        async with driver.transaction():
            await driver.fetchval(str(GENERIC_PLAN))
            plans["generic"] = "\n".join(row[0] for row in await driver.fetch(execute))
    await engine.dispose()
    # Taken for one row, the tenant looks as cheap to scan whole as to probe.
    assert "ix_customers_tenant_deleted" in plans["custom"]
    assert "uq_customers_tenant_id_email" in plans["generic"]
    assert "ix_customers_tenant_deleted" not in plans["generic"]


async def test_an_import_into_a_new_database_probes_each_chunk_by_the_unique_key(
    postgres_server: str,
) -> None:
    # The first chunk's probe is planned on an empty, never analyzed table, where
    # every index looks alike; a plan kept from then read every customer of the
    # tenant for each email of every later chunk (an import grew quadratic). Planned
    # again for each chunk, it takes the unique key once the table has grown (here
    # from 6,000 rows, the third chunk's).
    url = await new_postgres_database(postgres_server)
    storage = SqlAlchemyStorage.from_url(url, pool_size=1)  # one session holds every plan
    try:
        service = CustomerService(storage.unit_of_work, FixedClock(), HeuristicIntelligence())
        result = await service.import_customers("newcomer", _rows("a", 9000), chunk_size=3000)
        assert result.created == 9000
        async with storage.engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            name = await driver.fetchval(
                "SELECT name FROM pg_prepared_statements WHERE statement LIKE $1", _PROBE
            )
            async with driver.transaction():
                # The plan the last chunk's probe ran on, as kept for the session.
                await driver.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                plan = "\n".join(
                    row[0]
                    for row in await driver.fetch(
                        f"EXPLAIN EXECUTE {name}(ARRAY['a1@example.com'], 'newcomer', 1)"
                    )
                )
    finally:
        await storage.close()
    assert "uq_customers_tenant_id_email" in plan
    assert "pk_customers" not in plan


async def test_the_import_lookup_runs_on_a_generic_plan_and_restores_the_plan_mode(
    postgres_server: str,
) -> None:
    url = await _analyzed_beside_a_neighbour(postgres_server)
    storage = SqlAlchemyStorage.from_url(url)
    try:
        async with storage.unit_of_work("newcomer") as uow:
            connection = await uow.connection()
            await connection.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            found = await bulk_import(uow).get_many_by_email(["a1@example.com", "n1@example.com"])
            plans = (
                await connection.execute(
                    text(
                        "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                        " WHERE statement LIKE :probe"
                    ),
                    {"probe": _PROBE},
                )
            ).one()
            mode = await connection.scalar(text("SELECT current_setting('plan_cache_mode')"))
    finally:
        await storage.close()
    assert set(found) == {"a1@example.com"}  # the neighbour's customer is not the tenant's
    assert tuple(plans) == (1, 0)
    assert mode == "force_custom_plan"  # as the caller had it
