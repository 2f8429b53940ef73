"""The audit trail's erasure path on PostgreSQL: two SECURITY DEFINER functions.

The application role may only read and append audit events: the database refuses
its UPDATE and DELETE on the trail. Erasure must still empty (anonymization) or
remove (hard deletion) a data subject's events, so it calls these functions
instead. They run as their owner, the role that created the schema, and touch
only the given customers' events of the tenant set for the transaction
(``linkbay.tenant_id``), which must also be the tenant passed in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Table
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from linkbay_customers_sqlalchemy._models import ModelSet

__all__ = (
    "AUDIT_TABLE_LISTENERS",
    "ERASURE_ARGUMENTS",
    "ERASURE_KINDS",
    "ErasureKind",
    "create_audit_erasure_functions",
    "drop_audit_erasure_functions",
    "erasure_function_name",
)

ErasureKind = Literal["scrub", "delete"]
ERASURE_KINDS: tuple[ErasureKind, ...] = ("scrub", "delete")
"""Both functions: ``scrub`` empties events' details, ``delete`` removes events."""

ERASURE_ARGUMENTS = "(text, bigint[])"
"""The argument types of both functions: the tenant and the customer ids."""

_THEIR_ROWS = (
    "tenant_id = current_setting('linkbay.tenant_id', true)"
    " AND tenant_id = $1 AND customer_id = ANY ($2)"
)
_BODIES: dict[ErasureKind, str] = {
    "scrub": (
        "WITH scrubbed AS (UPDATE {table} SET details = '{{}}'::jsonb"
        " WHERE {where} AND details <> '{{}}'::jsonb RETURNING 1)"
        " SELECT count(*) FROM scrubbed"
    ),
    "delete": (
        "WITH deleted AS (DELETE FROM {table} WHERE {where} RETURNING 1)"
        " SELECT count(*) FROM deleted"
    ),
}


def erasure_function_name(table_name: str, kind: ErasureKind) -> str:
    """The function that scrubs or deletes the events of an audit table."""
    return f"linkbay_{kind}_{table_name}"


def _function(connection: Connection, table: Table, kind: ErasureKind) -> str:
    """The function's name as DDL says it: in the table's schema when it names one."""
    quote = connection.dialect.identifier_preparer.quote
    name = quote(erasure_function_name(table.name, kind))
    return name if table.schema is None else f"{quote(table.schema)}.{name}"


def _create_for_table(table: Table, connection: Connection, **_: Any) -> None:
    if connection.dialect.name != "postgresql":
        return
    quote = connection.dialect.identifier_preparer.quote
    schema = table.schema or connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    target = f"{quote(schema)}.{quote(table.name)}"
    for kind in ERASURE_KINDS:
        function = _function(connection, table, kind)
        # The search_path is pinned to the catalog (temporary objects last) and
        # the body names its table with the schema: no caller's objects stand in.
        connection.exec_driver_sql(
            f"CREATE OR REPLACE FUNCTION {function}(tenant text, customer_ids bigint[])"
            " RETURNS bigint LANGUAGE sql VOLATILE SECURITY DEFINER"
            " SET search_path = pg_catalog, pg_temp"
            f" AS $$ {_BODIES[kind].format(table=target, where=_THEIR_ROWS)} $$"
        )
        connection.exec_driver_sql(
            f"REVOKE ALL ON FUNCTION {function}{ERASURE_ARGUMENTS} FROM PUBLIC"
        )


def _drop_for_table(table: Table, connection: Connection, **_: Any) -> None:
    if connection.dialect.name != "postgresql":
        return
    for kind in ERASURE_KINDS:
        function = _function(connection, table, kind)
        connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function}{ERASURE_ARGUMENTS}")


AUDIT_TABLE_LISTENERS = (("after_create", _create_for_table), ("before_drop", _drop_for_table))
"""What ``metadata.create_all`` and ``drop_all`` do besides the audit table itself."""


def create_audit_erasure_functions(connection: Connection, models: ModelSet) -> None:
    """Create (or replace) the erasure functions of a model set's audit table.

    For a host that manages its schema itself, in one of its own migrations (as
    the role owning the tables): ``create_audit_erasure_functions(op.get_bind(),
    models)``. The shipped migrations create them for the default tables, and
    ``metadata.create_all`` creates them for any model set. The audit table must
    exist already: PostgreSQL checks the functions' bodies against it. Does
    nothing on SQLite.

    Args:
        connection: A synchronous connection (``op.get_bind()``, or inside ``run_sync``).
        models: The model set whose audit table the functions erase from.
    """
    _create_for_table(models.audit_event.__table__, connection)  # type: ignore[attr-defined]


def drop_audit_erasure_functions(connection: Connection, models: ModelSet) -> None:
    """Drop the erasure functions of a model set's audit table, if they exist."""
    _drop_for_table(models.audit_event.__table__, connection)  # type: ignore[attr-defined]
