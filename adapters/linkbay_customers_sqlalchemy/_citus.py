"""The Citus layout: every tenant table distributed by ``tenant_id``, all co-located.

Every key and reference of the schema leads with ``tenant_id``, so each table can be
hash-distributed on it and all of them placed in one co-location group: a tenant's
rows of every table live on the same node, its foreign keys stay inside a shard,
and a statement pinned to one tenant runs on one shard. No table fits Citus'
reference tables (copied whole to every node): every one holds tenants' rows.
The version table of the migrations stays a plain table on the coordinator.
"""

from __future__ import annotations

from sqlalchemy import MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = (
    "CITUS_DISTRIBUTION_COLUMN",
    "citus_layout_statements",
    "distribute_on_citus",
    "has_citus",
)

CITUS_DISTRIBUTION_COLUMN = "tenant_id"
"""The column every tenant table is distributed by."""

# Citus distributes a table with triggers only when this is on; the audit trail's
# triggers stamp each event's time and advance its chain's tip (docs/storage.md).
_TRIGGERS_SETTING = "SET LOCAL citus.enable_unsafe_triggers = on"


def _tenant_tables(metadata: MetaData) -> list[Table]:
    """The tables carrying ``tenant_id``, each after the tables it references;
    ``customers`` (which references none) first, as the co-location group's anchor."""
    tables = [table for table in metadata.sorted_tables if CITUS_DISTRIBUTION_COLUMN in table.c]
    tables.sort(key=lambda table: table.name != "customers" or bool(table.foreign_keys))
    return tables


def _literal(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def citus_layout_statements(metadata: MetaData) -> list[str]:
    """The statements distributing ``metadata``'s tenant tables on Citus, in order.

    The first table (``customers``) starts the co-location group
    (``colocate_with => 'default'``);
    each other joins it, and comes after every table it references, as Citus
    requires of foreign keys between distributed tables. A table already
    distributed is left as it is, so the statements can run again after a
    migration adds a table.
    """
    tables = _tenant_tables(metadata)
    if not tables:
        return []
    first = tables[0].name
    statements = [_TRIGGERS_SETTING]
    for table in tables:
        name = _literal(f'"{table.name}"')
        colocate = "default" if table.name == first else first
        statements.append(
            f"SELECT create_distributed_table({name}, {_literal(CITUS_DISTRIBUTION_COLUMN)},"
            f" colocate_with => {_literal(colocate)})"
            f" WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition"
            f" WHERE logicalrelid = {name}::regclass)"
        )
    return statements


async def has_citus(connection: AsyncConnection) -> None:
    """Check that the database has Citus (its ``create_distributed_table``).

    Raises:
        RuntimeError: it has not, with what to do.
    """
    found = await connection.scalar(
        text("SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'create_distributed_table')")
    )
    if not found:
        raise RuntimeError(
            "the Citus layout needs the citus extension in this database:"
            " have a superuser run CREATE EXTENSION citus (with citus in"
            " shared_preload_libraries) first"
        )


async def distribute_on_citus(connection: AsyncConnection, metadata: MetaData) -> None:
    """Run ``citus_layout_statements`` in the connection's open transaction.

    Raises:
        RuntimeError: the database has no Citus (``create_distributed_table``).
    """
    await has_citus(connection)
    for statement in citus_layout_statements(metadata):
        await connection.execute(text(statement))
