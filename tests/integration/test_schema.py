"""The migrated schema: what Alembic builds is what the models describe, tenant first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from linkbay_customers_sqlalchemy import create_engine, default_models, schema_filter, upgrade
from linkbay_customers_sqlalchemy._migrate import VERSION_TABLE, alembic_config


@pytest.fixture
async def fresh_engine(empty_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a new, unmigrated database of each kind."""
    engine = create_engine(empty_database_url)
    yield engine
    await engine.dispose()


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_object": schema_filter(connection.dialect.name),
            "compare_type": True,
            "version_table": VERSION_TABLE,
        },
    )
    return list(compare_metadata(context, default_models().metadata))


async def test_after_migrating_autogenerate_finds_no_difference(fresh_engine: AsyncEngine) -> None:
    async with fresh_engine.connect() as connection:
        before = await connection.run_sync(_differences)
    assert before, "an empty database should differ from the models"
    await upgrade(fresh_engine)
    async with fresh_engine.connect() as connection:
        assert await connection.run_sync(_differences) == []


async def test_migrations_downgrade_to_nothing_and_upgrade_again(fresh_engine: AsyncEngine) -> None:
    await upgrade(fresh_engine)
    async with fresh_engine.connect() as connection:
        await connection.run_sync(lambda c: command.downgrade(alembic_config(c), "base"))
        await connection.commit()
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
    assert set(tables) <= {VERSION_TABLE}
    await upgrade(fresh_engine)
    async with fresh_engine.connect() as connection:
        assert await connection.run_sync(_differences) == []


async def test_every_key_and_reference_leads_with_the_tenant(fresh_engine: AsyncEngine) -> None:
    await upgrade(fresh_engine)

    def keys(connection: Connection) -> dict[str, list[list[str]]]:
        inspector = inspect(connection)
        found: dict[str, list[list[str]]] = {}
        for table in default_models().tables().values():
            name = table.name
            found[name] = [inspector.get_pk_constraint(name)["constrained_columns"]]
            found[name] += [u["column_names"] for u in inspector.get_unique_constraints(name)]
            found[name] += [i["column_names"] for i in inspector.get_indexes(name) if i["unique"]]
            for fk in inspector.get_foreign_keys(name):
                found[name] += [fk["constrained_columns"], fk["referred_columns"]]
        return found

    async with fresh_engine.connect() as connection:
        found = await connection.run_sync(keys)
    assert set(found) == {t.name for t in default_models().tables().values()}
    for table, column_lists in found.items():
        for columns in column_lists:
            assert columns[0] == "tenant_id", (table, columns)


async def test_the_database_refuses_a_row_pointing_at_another_tenants_customer(
    fresh_engine: AsyncEngine,
) -> None:
    await upgrade(fresh_engine)
    async with fresh_engine.connect() as connection:
        if fresh_engine.dialect.name == "postgresql":
            # Row-level security would hide the rows from the insert's checks;
            # what is under test here is the composite foreign key alone.
            await connection.execute(text("SET row_security = off"))
        await connection.execute(
            text(
                "INSERT INTO customers (tenant_id, id, email, preferences, tags, total_orders,"
                " total_spent, average_order_value, consent_data, is_anonymized, created_at,"
                " updated_at) VALUES ('tenant-a', 1, 'a@example.com', '{}', '[]', 0, 0, 0, '{}',"
                " false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        with pytest.raises(IntegrityError):
            await connection.execute(
                text(
                    "INSERT INTO customer_notes (tenant_id, id, customer_id, note, created_at)"
                    " VALUES ('tenant-b', 1, 1, 'sneaky', CURRENT_TIMESTAMP)"
                )
            )
