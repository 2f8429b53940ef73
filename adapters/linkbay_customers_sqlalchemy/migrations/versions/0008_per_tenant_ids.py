"""Ids counted per tenant: ``customer_id_counters``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

One sequence per table (PostgreSQL), or one counter per table (SQLite's
``linkbay_id_sequences``), used to serve every tenant: a tenant could tell how
many customers, orders or notes the others had created between two of its own.
Each tenant now counts its own ids, one row per tenant and table in
``customer_id_counters`` (the last id handed out).

Every existing row keeps its id. Each tenant's counter starts after the largest id
the tenant has used, counting the ids its audit trail still names after their rows
were erased (a customer's ``customer_id``, a removed address's ``address_id``,
a note's ``note_id``, an order's ``order``): an id that has been seen is never handed
out again in its tenant. The sequences (PostgreSQL) and ``linkbay_id_sequences``
(SQLite) are dropped: nothing reads them any more, and a role could still draw
ids from a sequence shared by every tenant.

On PostgreSQL the table gets the tenant policy of every other table (row-level
security, forced), and every role that may write customers may read, insert and
update it; no role but the owner may delete a counter. Downgrading recreates the
sequences (or SQLite's counters) past the largest id of any tenant, with the
grants every role that may write customers had on them.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column, PrimaryKeyConstraint, String, text

from linkbay_customers_sqlalchemy.migrations._tenancy import (
    every_tenant_visible,
    grant_to_writers,
    protect_tenant_table,
)

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COUNTERS = "customer_id_counters"
_AUDIT = "customer_audit_events"
_SQLITE_COUNTERS = "linkbay_id_sequences"

# Each table whose ids are counted, and the audit trail's reference to its ids.
_KINDS = {
    "customers": "customer_id",
    "customer_addresses": "address_id",
    "customer_notes": "note_id",
    "customer_orders": "order",
    "customer_consent_events": None,
    _AUDIT: None,
}


def _audit_reference(postgresql: bool, reference: str) -> tuple[str, str]:
    """The audit events' reference to an id (a column or a key of ``details``) as a
    BIGINT expression, and the condition that it is one."""
    if reference == "customer_id":
        return "customer_id", "customer_id IS NOT NULL"
    if postgresql:
        return (
            f"(details ->> '{reference}')::bigint",
            f"jsonb_typeof(details -> '{reference}') = 'number'",
        )
    return (
        f"json_extract(details, '$.{reference}')",
        f"json_type(details, '$.{reference}') = 'integer'",
    )


def _seed_counters(postgresql: bool) -> None:
    for table, reference in _KINDS.items():
        used = f"SELECT tenant_id, id AS used FROM {table}"
        if reference is not None:
            value, condition = _audit_reference(postgresql, reference)
            used += f" UNION ALL SELECT tenant_id, {value} FROM {_AUDIT} WHERE {condition}"
        op.execute(
            f"INSERT INTO {_COUNTERS} (tenant_id, kind, last_id)"
            f" SELECT tenant_id, '{table}', max(used) FROM ({used}) AS ids GROUP BY tenant_id"
        )


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        _COUNTERS,
        Column("tenant_id", String(64), nullable=False),
        Column("kind", String(128), nullable=False),
        Column("last_id", BigInteger(), nullable=False),
        PrimaryKeyConstraint("tenant_id", "kind", name=op.f(f"pk_{_COUNTERS}")),
    )
    if postgresql:
        protect_tenant_table(_COUNTERS, "SELECT, INSERT, UPDATE")
    with every_tenant_visible(_COUNTERS, *_KINDS):
        _seed_counters(postgresql)
    if postgresql:
        for table in _KINDS:
            op.execute(f"DROP SEQUENCE IF EXISTS {table}_id_seq")
    else:
        op.execute(f"DROP TABLE IF EXISTS {_SQLITE_COUNTERS}")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    with every_tenant_visible(_COUNTERS):
        if postgresql:
            for table in _KINDS:
                sequence = f"{table}_id_seq"
                op.execute(f"CREATE SEQUENCE {sequence} OWNED BY {table}.id")
                op.execute(
                    f"SELECT setval('{sequence}', max(last_id)) FROM {_COUNTERS}"
                    f" WHERE kind = '{table}' HAVING max(last_id) IS NOT NULL"
                )
                grant_to_writers(f"USAGE, SELECT ON SEQUENCE {sequence}")
        elif op.get_bind().execute(text(f"SELECT count(*) FROM {_COUNTERS}")).scalar_one():
            # The earlier code creates this table on first use: only ids to keep need it.
            op.execute(
                f"CREATE TABLE {_SQLITE_COUNTERS}"
                " (name VARCHAR(128) PRIMARY KEY, value BIGINT NOT NULL)"
            )
            op.execute(
                f"INSERT INTO {_SQLITE_COUNTERS} (name, value)"
                f" SELECT kind, max(last_id) FROM {_COUNTERS} GROUP BY kind"
            )
    op.drop_table(_COUNTERS)
