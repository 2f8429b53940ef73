"""The audit table's triggers: the database's clock, and each chain's tip.

- On PostgreSQL, every new event's ``occurred_at`` is set to the transaction's
  time (``now()``), whatever the statement says, so no application, however it
  writes, can date an event in the past or the future. The library reads that
  time before it seals the event (``lock_chains``), so the stamped time is the
  hashed one.
- On both databases, inserting an event moves its chain's tip (the chain table's
  row) to it, in the same statement: appending costs no statement of its own for
  the tip, and a tip can only fall behind its chain through SQL that removes
  events, which ``audit verify`` reports.

The functions run as their callers and belong to the role that created the
schema; the application role can neither drop nor replace them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from linkbay_customers_sqlalchemy._models import ModelSet

__all__ = (
    "AUDIT_CHAINS_INFO",
    "AUDIT_TABLE_LISTENERS",
    "create_audit_triggers",
    "drop_audit_triggers",
    "trigger_function_name",
)

AUDIT_CHAINS_INFO = "linkbay_audit_chains"
"""The audit table's ``info`` key naming the table of its chains' tips."""


def trigger_function_name(table_name: str) -> str:
    """The PostgreSQL trigger function of an audit table."""
    return f"linkbay_append_{table_name}"


def _quoted(connection: Connection, name: str, schema: str | None) -> str:
    quote = connection.dialect.identifier_preparer.quote
    return quote(name) if schema is None else f"{quote(schema)}.{quote(name)}"


def _create_for_table(table: Table, connection: Connection, **_: Any) -> None:
    postgresql = connection.dialect.name == "postgresql"
    schema = table.schema
    if postgresql and schema is None:
        # The function names the tables with their schema: its search_path excludes it.
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    events = _quoted(connection, table.name, table.schema)
    tips = _quoted(connection, table.info[AUDIT_CHAINS_INFO], schema)
    trigger = connection.dialect.identifier_preparer.quote(f"{table.name}_append")
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
    function = _quoted(connection, trigger_function_name(table.name), table.schema)
    connection.exec_driver_sql(
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql"
        " SET search_path = pg_catalog, pg_temp"
        f" AS $$ BEGIN NEW.occurred_at := now(); {advance}; RETURN NEW; END $$"
    )
    connection.exec_driver_sql(f"REVOKE ALL ON FUNCTION {function}() FROM PUBLIC")
    connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger} ON {events}")
    connection.exec_driver_sql(
        f"CREATE TRIGGER {trigger} BEFORE INSERT ON {events}"
        f" FOR EACH ROW EXECUTE FUNCTION {function}()"
    )


def _drop_for_table(table: Table, connection: Connection, **_: Any) -> None:
    trigger = connection.dialect.identifier_preparer.quote(f"{table.name}_append")
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
        return
    events = _quoted(connection, table.name, table.schema)
    function = _quoted(connection, trigger_function_name(table.name), table.schema)
    connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger} ON {events}")
    connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function}()")


AUDIT_TABLE_LISTENERS = (("after_create", _create_for_table), ("before_drop", _drop_for_table))
"""What ``metadata.create_all`` and ``drop_all`` do besides the audit table itself."""


def create_audit_triggers(connection: Connection, models: ModelSet) -> None:
    """Create (or replace) the triggers of a model set's audit table: the database's
    time on PostgreSQL, and the chains' tips on both databases.

    For a host that manages its schema itself, in one of its own migrations (as
    the role owning the tables): ``create_audit_triggers(op.get_bind(), models)``.
    The shipped migrations create them for the default tables, and
    ``metadata.create_all`` creates them for any model set.

    Args:
        connection: A synchronous connection (``op.get_bind()``, or inside ``run_sync``).
        models: The model set whose audit table to equip.
    """
    _create_for_table(models.audit_event.__table__, connection)  # type: ignore[attr-defined]


def drop_audit_triggers(connection: Connection, models: ModelSet) -> None:
    """Drop the triggers of a model set's audit table, if they exist."""
    _drop_for_table(models.audit_event.__table__, connection)  # type: ignore[attr-defined]
