"""The audit table's triggers: the database's clock, and each chain's tip.

- On PostgreSQL, every new event's ``occurred_at`` is set to the transaction's
  time (``now()``), whatever the statement says, so no application, however it
  writes, can date an event in the past or the future. The library reads that
  time before it seals the event (``lock_chains``), so the stamped time is the
  hashed one.
- On both databases, inserting events moves their chains' tips (the chain
  table's rows) to the last of each, in the same statement (on PostgreSQL one
  set-based update per statement, from its transition table): appending costs
  no statement of its own for the tip, and a tip can only fall behind its chain
  through SQL that removes events, which ``audit verify`` reports.

The functions run as their callers and belong to the role that created the
schema; the application role can neither drop nor replace them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

__all__ = (
    "AUDIT_CHAINS_INFO",
    "AUDIT_TABLE_LISTENERS",
    "create_triggers_of_table",
    "drop_triggers_of_table",
    "trigger_function_name",
)

AUDIT_CHAINS_INFO = "linkbay_audit_chains"
"""The audit table's ``info`` key naming the table of its chains' tips."""


def trigger_function_name(table_name: str, kind: str) -> str:
    """A PostgreSQL trigger function of an audit table: ``stamp`` (the time) or
    ``advance`` (the chains' tips)."""
    return f"linkbay_{kind}_{table_name}"


def _quoted(connection: Connection, name: str, schema: str | None) -> str:
    quote = connection.dialect.identifier_preparer.quote
    return quote(name) if schema is None else f"{quote(schema)}.{quote(name)}"


def create_triggers_of_table(table: Table, connection: Connection, **_: Any) -> None:
    """Create (or replace) the triggers of an audit table (see ``create_audit_triggers``)."""
    postgresql = connection.dialect.name == "postgresql"
    schema = table.schema
    if postgresql and schema is None:
        # The function names the tables with their schema: its search_path excludes it.
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    events = _quoted(connection, table.name, table.schema)
    tips = _quoted(connection, table.info[AUDIT_CHAINS_INFO], schema)
    trigger = connection.dialect.identifier_preparer.quote(f"{table.name}_append")
    advance_trigger = connection.dialect.identifier_preparer.quote(f"{table.name}_advance")
    advance = (
        f"UPDATE {tips} SET sequence = NEW.sequence, hash = NEW.hash"
        " WHERE tenant_id = NEW.tenant_id AND chain_id = NEW.chain_id"
    )
    if not postgresql:
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
        connection.exec_driver_sql(
            f"CREATE TRIGGER {trigger} AFTER INSERT ON {events} FOR EACH ROW BEGIN {advance}; END"
        )
        return
    stamp = _quoted(connection, trigger_function_name(table.name, "stamp"), table.schema)
    advance_all = _quoted(connection, trigger_function_name(table.name, "advance"), table.schema)
    connection.exec_driver_sql(
        f"CREATE OR REPLACE FUNCTION {stamp}() RETURNS trigger LANGUAGE plpgsql"
        " SET search_path = pg_catalog, pg_temp"
        " AS $$ BEGIN NEW.occurred_at := now(); RETURN NEW; END $$"
    )
    # One set-based UPDATE per statement (a COPY or a multi-row INSERT of a bulk
    # import included), from the statement's new rows: the last of each chain.
    connection.exec_driver_sql(
        f"CREATE OR REPLACE FUNCTION {advance_all}() RETURNS trigger LANGUAGE plpgsql"
        " SET search_path = pg_catalog, pg_temp"
        f" AS $$ BEGIN UPDATE {tips} AS tip SET sequence = last.sequence, hash = last.hash"
        " FROM (SELECT DISTINCT ON (tenant_id, chain_id) tenant_id, chain_id, sequence, hash"
        " FROM appended ORDER BY tenant_id, chain_id, sequence DESC) AS last"
        " WHERE tip.tenant_id = last.tenant_id AND tip.chain_id = last.chain_id;"
        " RETURN NULL; END $$"
    )
    for function in (stamp, advance_all):
        connection.exec_driver_sql(f"REVOKE ALL ON FUNCTION {function}() FROM PUBLIC")
    connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger} ON {events}")
    connection.exec_driver_sql(
        f"CREATE TRIGGER {trigger} BEFORE INSERT ON {events}"
        f" FOR EACH ROW EXECUTE FUNCTION {stamp}()"
    )
    connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {advance_trigger} ON {events}")
    connection.exec_driver_sql(
        f"CREATE TRIGGER {advance_trigger} AFTER INSERT ON {events}"
        f" REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION {advance_all}()"
    )


def drop_triggers_of_table(table: Table, connection: Connection, **_: Any) -> None:
    """Drop the triggers of an audit table, and their functions, if they exist."""
    quote = connection.dialect.identifier_preparer.quote
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {quote(table.name + '_append')}")
        return
    events = _quoted(connection, table.name, table.schema)
    for trigger, kind in (("append", "stamp"), ("advance", "advance")):
        function = _quoted(connection, trigger_function_name(table.name, kind), table.schema)
        connection.exec_driver_sql(
            f"DROP TRIGGER IF EXISTS {quote(f'{table.name}_{trigger}')} ON {events}"
        )
        connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function}()")


AUDIT_TABLE_LISTENERS = (
    ("after_create", create_triggers_of_table),
    ("before_drop", drop_triggers_of_table),
)
"""What ``metadata.create_all`` and ``drop_all`` do besides the audit table itself."""
