"""Pairs of customers marked as distinct people: ``customer_duplicate_decisions``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Duplicate detection suggested a pair again at every call, however often a user had
judged the two customers to be two people. Each such decision is now a row: the
pair in canonical order (``customer_id < other_id``, under a check), who decided
and when, keyed by ``tenant_id`` first, with a foreign key from each side to its
customer. On PostgreSQL the table gets the tenant policy of every other table
(row-level security, forced), and every role that may write customers may read,
insert, update and delete it. Downgrading drops the table and its decisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from linkbay_customers_sqlalchemy._types import UTCDateTime
from linkbay_customers_sqlalchemy.migrations._tenancy import protect_tenant_table

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TABLE = "customer_duplicate_decisions"


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("other_id", sa.BigInteger(), nullable=False),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", "other_id", name=op.f(f"pk_{_TABLE}")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f(f"fk_{_TABLE}_tenant_id_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "other_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f(f"fk_{_TABLE}_tenant_id_other_id_customers"),
        ),
        sa.CheckConstraint("customer_id < other_id", name=op.f(f"ck_{_TABLE}_canonical_order")),
    )
    op.create_index(op.f(f"ix_{_TABLE}_tenant_other"), _TABLE, ["tenant_id", "other_id"])
    if op.get_bind().dialect.name == "postgresql":
        protect_tenant_table(_TABLE)


def downgrade() -> None:
    op.drop_table(_TABLE)
