"""Search keys: each customer's email and names as search compares them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Search used to fold case in the database: PostgreSQL with its ``lower()``, which
follows the database's collation, SQLite with Python's ``str.lower`` registered in
its place. The two disagreed (``ilker`` found ``İlker`` on PostgreSQL only,
``σίσυφος`` found ``ΣΊΣΥΦΟΣ`` on SQLite only), and neither ignored accents. The
customer table now stores ``search_email``, ``search_first_name`` and
``search_last_name``: the ``search_key`` of each field (Unicode case folding,
compatibility decomposition, combining marks removed), written by the library with
every row, and searches compare those on every database.

This revision adds the columns and fills them for every existing customer, a
thousand rows at a time in key order. It changes the form of stored data, not
any customer's data: it writes no audit event, and no ``updated_at`` moves. On
PostgreSQL the migrating role sees every tenant's rows for the duration (forced
row-level security would show it none). Downgrading drops the columns.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from linkbay_customers.domain import search_key
from linkbay_customers_sqlalchemy.migrations._tenancy import every_tenant_visible

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_CUSTOMERS = "customers"
_BATCH = 1000
_FIELDS = {
    "search_email": "email",
    "search_first_name": "first_name",
    "search_last_name": "last_name",
}

_customers = sa.table(
    _CUSTOMERS,
    sa.column("tenant_id"),
    sa.column("id"),
    *(sa.column(name) for name in (*_FIELDS, *_FIELDS.values())),
)


def _keys(row: Any) -> dict[str, Any]:
    data = row._mapping
    keys = {
        column: None if data[field] is None else search_key(data[field])
        for column, field in _FIELDS.items()
    }
    return {**keys, "key_tenant": row.tenant_id, "key_id": row.id}


def _fill(bind: sa.Connection) -> None:
    c = _customers.c
    read = sa.select(c.tenant_id, c.id, *(c[field] for field in _FIELDS.values()))
    write = (
        _customers.update()
        .where(c.tenant_id == sa.bindparam("key_tenant"), c.id == sa.bindparam("key_id"))
        .values({column: sa.bindparam(column) for column in _FIELDS})
    )
    after: tuple[str, int] | None = None
    while True:
        statement = read.order_by(c.tenant_id, c.id).limit(_BATCH)
        if after is not None:
            statement = statement.where(sa.tuple_(c.tenant_id, c.id) > sa.tuple_(*after))
        rows = bind.execute(statement).fetchall()
        if not rows:
            return
        bind.execute(write, [_keys(row) for row in rows])
        after = (rows[-1].tenant_id, rows[-1].id)


def upgrade() -> None:
    for column in _FIELDS:
        op.add_column(_CUSTOMERS, sa.Column(column, sa.Text()))
    with every_tenant_visible(_CUSTOMERS):
        _fill(op.get_bind())


def downgrade() -> None:
    for column in _FIELDS:
        op.drop_column(_CUSTOMERS, column)
