"""Statistical models fitted per tenant: ``customer_model_fits``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

One row per tenant and model name: the fitted parameters (JSON), the fit date and
the sample size. On PostgreSQL the table gets the tenant policy of every other
table (row-level security, forced), and every role that may write customers (an
application role granted before this revision) may read and write it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from linkbay_customers_sqlalchemy._types import JSONDocument, UTCDateTime
from linkbay_customers_sqlalchemy.migrations._tenancy import protect_tenant_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TABLE = "customer_model_fits"


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("parameters", JSONDocument, nullable=False),
        sa.Column("fitted_at", UTCDateTime(), nullable=False),
        sa.Column("sample_size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "model", name=op.f(f"pk_{_TABLE}")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    protect_tenant_table(_TABLE)


def downgrade() -> None:
    op.drop_table(_TABLE)
