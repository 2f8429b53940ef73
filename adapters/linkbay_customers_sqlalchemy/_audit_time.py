"""The audit trail's clock on PostgreSQL: the database stamps every event.

A trigger sets each new event's ``occurred_at`` to the transaction's time
(``now()``), whatever the statement says, so no application, however it writes,
can date an event in the past or the future. The library reads that time before
it seals the event (``lock_chains``), so the stamped time is the hashed one.
The trigger's function runs as its owner and is owned by the role that created
the schema; the application role can neither drop nor replace it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from linkbay_customers_sqlalchemy._models import ModelSet

__all__ = (
    "AUDIT_TABLE_LISTENERS",
    "create_audit_clock",
    "drop_audit_clock",
    "stamp_function_name",
)


def stamp_function_name(table_name: str) -> str:
    """The trigger function that stamps an audit table's events with the time."""
    return f"linkbay_stamp_{table_name}"


def _names(connection: Connection, table: Table) -> tuple[str, str, str]:
    quote = connection.dialect.identifier_preparer.quote
    function = quote(stamp_function_name(table.name))
    if table.schema is not None:
        function = f"{quote(table.schema)}.{function}"
    target = (
        quote(table.name) if table.schema is None else f"{quote(table.schema)}.{quote(table.name)}"
    )
    return function, quote(f"{table.name}_stamp"), target


def _create_for_table(table: Table, connection: Connection, **_: Any) -> None:
    if connection.dialect.name != "postgresql":
        return
    function, trigger, target = _names(connection, table)
    connection.exec_driver_sql(
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql"
        " SET search_path = pg_catalog, pg_temp"
        " AS $$ BEGIN NEW.occurred_at := now(); RETURN NEW; END $$"
    )
    connection.exec_driver_sql(f"REVOKE ALL ON FUNCTION {function}() FROM PUBLIC")
    connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger} ON {target}")
    connection.exec_driver_sql(
        f"CREATE TRIGGER {trigger} BEFORE INSERT ON {target}"
        f" FOR EACH ROW EXECUTE FUNCTION {function}()"
    )


def _drop_for_table(table: Table, connection: Connection, **_: Any) -> None:
    if connection.dialect.name != "postgresql":
        return
    function, trigger, target = _names(connection, table)
    connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger} ON {target}")
    connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function}()")


AUDIT_TABLE_LISTENERS = (("after_create", _create_for_table), ("before_drop", _drop_for_table))
"""What ``metadata.create_all`` and ``drop_all`` do besides the audit table itself."""


def create_audit_clock(connection: Connection, models: ModelSet) -> None:
    """Create (or replace) the trigger that stamps a model set's audit events with the
    database's time.

    For a host that manages its schema itself, in one of its own migrations (as
    the role owning the tables): ``create_audit_clock(op.get_bind(), models)``.
    The shipped migrations create it for the default tables, and
    ``metadata.create_all`` creates it for any model set. Does nothing on SQLite.

    Args:
        connection: A synchronous connection (``op.get_bind()``, or inside ``run_sync``).
        models: The model set whose audit table to stamp.
    """
    _create_for_table(models.audit_event.__table__, connection)  # type: ignore[attr-defined]


def drop_audit_clock(connection: Connection, models: ModelSet) -> None:
    """Drop the trigger of a model set's audit table, if it exists."""
    _drop_for_table(models.audit_event.__table__, connection)  # type: ignore[attr-defined]
