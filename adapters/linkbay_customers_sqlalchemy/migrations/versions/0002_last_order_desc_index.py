"""An index for listing customers by latest order first, those without orders last.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

``ORDER BY last_order_at DESC NULLS LAST`` cannot walk ``ix_customers_tenant_last_order``
backwards (that order puts missing values first), so without this index the
listing sorted every live customer of the tenant.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite indexes cannot say NULLS LAST
    op.create_index(
        "ix_customers_tenant_last_order_desc",
        "customers",
        ["tenant_id", sa.text("last_order_at DESC NULLS LAST"), sa.text("id DESC")],
        postgresql_where=_LIVE,
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_customers_tenant_last_order_desc", table_name="customers")
