"""The Citus layout (``upgrade(..., citus=True)``, ``migrate --citus``).

Citus is not installable here (no Debian or PyPI package), so the layout runs on
PostgreSQL against a stand-in for Citus' ``create_distributed_table`` that checks
what Citus checks before it distributes a table: the distribution column exists;
every primary key, unique constraint and unique index includes it; every foreign
key pairs it with the referenced table's, and that table is distributed already;
the co-location group's tables share the column's type; a table with triggers
needs ``citus.enable_unsafe_triggers``; a policy holds no subquery. What the
stand-in does not show is Citus itself creating the shards (docs/storage.md).
"""

from __future__ import annotations

import pytest
from pglast import ast, parse_sql
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from linkbay_customers_cli._app import app
from linkbay_customers_sqlalchemy import (
    VERSION_TABLE,
    citus_layout_statements,
    create_engine,
    default_models,
    upgrade,
)
from tests._databases import new_postgres_database, new_sqlite_database

METADATA = default_models().metadata
TENANT_TABLES = {table.name for table in METADATA.tables.values() if "tenant_id" in table.c}

STAND_IN = r"""
CREATE TABLE pg_dist_partition (
    logicalrelid regclass PRIMARY KEY,
    partkey text NOT NULL,
    colocated_with text NOT NULL,
    distributed serial
)
;;
CREATE FUNCTION create_distributed_table(
    table_name regclass, distribution_column text, colocate_with text DEFAULT 'default'
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    column_number smallint;
    column_type oid;
    item record;
BEGIN
    SELECT attnum, atttypid INTO column_number, column_type FROM pg_attribute
     WHERE attrelid = table_name AND attname = distribution_column AND NOT attisdropped;
    IF column_number IS NULL THEN
        RAISE EXCEPTION '% has no column %', table_name, distribution_column;
    END IF;
    FOR item IN SELECT indexrelid::regclass AS name, indkey FROM pg_index
                 WHERE indrelid = table_name AND indisunique LOOP
        IF NOT column_number = ANY (item.indkey::smallint[]) THEN
            RAISE EXCEPTION 'unique index % of % lacks %', item.name, table_name,
                distribution_column;
        END IF;
    END LOOP;
    FOR item IN SELECT conname, conkey, confkey, confrelid FROM pg_constraint
                 WHERE conrelid = table_name AND contype = 'f' LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = item.confrelid) THEN
            RAISE EXCEPTION '% references %, not distributed yet', table_name, item.confrelid;
        END IF;
        IF NOT EXISTS (
            SELECT 1 FROM generate_subscripts(item.conkey, 1) AS i
             WHERE item.conkey[i] = column_number
               AND item.confkey[i] = (SELECT attnum FROM pg_attribute
                                       WHERE attrelid = item.confrelid
                                         AND attname = distribution_column)
        ) THEN
            RAISE EXCEPTION 'foreign key % does not pair the distribution columns', item.conname;
        END IF;
    END LOOP;
    IF colocate_with <> 'default' THEN
        IF NOT EXISTS (SELECT 1 FROM pg_dist_partition
                        WHERE logicalrelid = colocate_with::regclass) THEN
            RAISE EXCEPTION 'cannot co-locate % with %, not distributed', table_name,
                colocate_with;
        END IF;
        IF column_type <> (SELECT atttypid FROM pg_attribute
                            WHERE attrelid = colocate_with::regclass
                              AND attname = distribution_column) THEN
            RAISE EXCEPTION '% and % distribute by different types', table_name, colocate_with;
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = table_name AND NOT tgisinternal)
       AND coalesce(current_setting('citus.enable_unsafe_triggers', true), 'off') <> 'on' THEN
        RAISE EXCEPTION '% has triggers', table_name;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = table_name
                AND (pg_get_expr(polqual, polrelid) ILIKE '%select%'
                     OR pg_get_expr(polwithcheck, polrelid) ILIKE '%select%')) THEN
        RAISE EXCEPTION 'a policy of % holds a subquery', table_name;
    END IF;
    INSERT INTO pg_dist_partition (logicalrelid, partkey, colocated_with)
    VALUES (table_name, distribution_column, colocate_with);
END $$;
"""


async def _with_stand_in(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in STAND_IN.split(";;"):
                await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


async def _distributed(url: str) -> list[tuple[str, str, str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT logicalrelid::text, partkey, colocated_with"
                    " FROM pg_dist_partition ORDER BY distributed"
                )
            )
            return [(str(a), str(b), str(c)) for a, b, c in rows]
    finally:
        await engine.dispose()


async def _has_version_table(url: str) -> bool:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(text(f"SELECT to_regclass('{VERSION_TABLE}')"))
            return found is not None
    finally:
        await engine.dispose()


def test_the_layout_distributes_every_tenant_table_by_tenant_id_colocated() -> None:
    statements = citus_layout_statements(METADATA)
    parsed = [parse_sql(statement)[0].stmt for statement in statements]
    assert isinstance(parsed[0], ast.VariableSetStmt)
    assert parsed[0].is_local
    assert parsed[0].name == "citus.enable_unsafe_triggers"
    calls = []
    for statement in parsed[1:]:
        call = statement.targetList[0].val
        assert [name.sval for name in call.funcname] == ["create_distributed_table"]
        table, column, colocate = (_uncast(argument) for argument in call.args)
        assert call.args[2].name == "colocate_with"
        calls.append((table.strip('"'), column, colocate))
    assert calls[0][0] == "customers"
    assert sorted(table for table, _, _ in calls) == sorted(TENANT_TABLES)
    assert {column for _, column, _ in calls} == {"tenant_id"}
    assert [colocate for _, _, colocate in calls] == ["default"] + ["customers"] * (len(calls) - 1)
    order = [table for table, _, _ in calls]
    for table in METADATA.tables.values():
        for key in table.foreign_keys:
            assert order.index(key.column.table.name) < order.index(table.name)


def _uncast(node: object) -> str:
    if isinstance(node, ast.NamedArgExpr):
        node = node.arg
    assert isinstance(node, ast.A_Const)
    return str(node.val.sval)


async def test_upgrade_with_citus_distributes_each_table_once(postgres_server: str) -> None:
    url = await new_postgres_database(postgres_server, migrate=False)
    await _with_stand_in(url)
    await upgrade(url, citus=True)
    distributed = await _distributed(url)
    assert distributed[0][0] == "customers"
    assert {table for table, _, _ in distributed} == TENANT_TABLES
    assert len(distributed) == len(TENANT_TABLES)
    await upgrade(url, citus=True)  # again, as after a later migration: nothing twice
    assert await _distributed(url) == distributed


async def test_upgrade_with_citus_refuses_a_database_without_citus_and_migrates_nothing(
    postgres_server: str,
) -> None:
    url = await new_postgres_database(postgres_server, migrate=False)
    with pytest.raises(RuntimeError, match="CREATE EXTENSION citus"):
        await upgrade(url, citus=True)
    assert not await _has_version_table(url)


async def test_the_citus_layout_is_refused_on_sqlite(tmp_path: object) -> None:
    from pathlib import Path

    url = await new_sqlite_database(Path(str(tmp_path)), migrate=False)
    with pytest.raises(ValueError, match="Citus layout is for PostgreSQL"):
        await upgrade(url, citus=True)


def test_migrate_citus_says_what_it_did_and_what_is_missing(postgres_server: str) -> None:
    import asyncio

    runner = CliRunner(env={"LINKBAY_DATABASE_URL": None})
    with_citus = asyncio.run(new_postgres_database(postgres_server, migrate=False))
    asyncio.run(_with_stand_in(with_citus))
    result = runner.invoke(app, ["migrate", "--citus", "--database-url", with_citus])
    assert result.exit_code == 0, result.output
    assert "distributed by tenant_id on Citus" in result.output
    assert len(asyncio.run(_distributed(with_citus))) == len(TENANT_TABLES)

    without = asyncio.run(new_postgres_database(postgres_server, migrate=False))
    result = runner.invoke(app, ["migrate", "--citus", "--database-url", without])
    assert result.exit_code == 1
    assert "CREATE EXTENSION citus" in result.output


@pytest.mark.parametrize(
    ("statements", "refusal"),
    [
        (["SELECT create_distributed_table('customer_audit_events', 'tenant_id')"], "has triggers"),
        (
            ["SELECT create_distributed_table('customer_orders', 'tenant_id')"],
            "not distributed yet",
        ),
        (
            [
                "CREATE TABLE shared_emails (tenant_id varchar(64), email text UNIQUE)",
                "SELECT create_distributed_table('shared_emails', 'tenant_id')",
            ],
            "lacks tenant_id",
        ),
        (
            [
                "CREATE TABLE by_number (tenant_id integer PRIMARY KEY)",
                "SELECT create_distributed_table('customers', 'tenant_id')",
                "SELECT create_distributed_table('by_number', 'tenant_id',"
                " colocate_with => 'customers')",
            ],
            "different types",
        ),
    ],
)
async def test_the_stand_in_refuses_what_citus_refuses(
    postgres_url: str, statements: list[str], refusal: str
) -> None:
    url = postgres_url
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.begin()
            for statement in STAND_IN.split(";;"):
                await connection.exec_driver_sql(statement)
            *before, refused = statements
            for statement in before:
                await connection.execute(text(statement))
            with pytest.raises(DBAPIError, match=refusal):
                await connection.execute(text(refused))
            await connection.rollback()
    finally:
        await engine.dispose()
