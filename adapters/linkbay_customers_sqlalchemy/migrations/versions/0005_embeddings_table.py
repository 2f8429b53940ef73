"""Embeddings in a table of their own: ``customer_embeddings``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Every new version of a customer row cost an entry in the HNSW index on its
embedding, whatever the change: recording an order or refreshing a segment
rewrote the vector index too. The embeddings move to their own table (one row
per embedded customer, removed with the customer), which is written only when
an embedding changes; the HNSW index goes with them. Existing embeddings are
moved, then the customers' embedding columns and index dropped. On PostgreSQL
the table gets the tenant policy of every other table, and the roles that may
write customers may read and write it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from linkbay_customers_sqlalchemy._types import Embedding
from linkbay_customers_sqlalchemy.migrations._tenancy import (
    every_tenant_visible,
    protect_tenant_table,
)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLE = "customer_embeddings"
_HNSW: dict[str, Any] = {
    "postgresql_using": "hnsw",
    "postgresql_with": {"m": 16, "ef_construction": 64},
    "postgresql_ops": {"embedding": "vector_cosine_ops"},
}


def _move_embeddings() -> None:
    op.execute(
        f"INSERT INTO {_TABLE} (tenant_id, customer_id, embedding, version)"
        " SELECT tenant_id, id, embedding, embedding_version FROM customers"
        " WHERE embedding IS NOT NULL"
    )


def _move_embeddings_back() -> None:
    op.execute(
        "UPDATE customers SET embedding = e.embedding, embedding_version = e.version"
        f" FROM {_TABLE} AS e"
        " WHERE e.tenant_id = customers.tenant_id AND e.customer_id = customers.id"
    )


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        _TABLE,
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("embedding", Embedding(), nullable=False),
        sa.Column("version", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", name=op.f(f"pk_{_TABLE}")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f(f"fk_{_TABLE}_tenant_id_customer_id_customers"),
            ondelete="CASCADE",
        ),
    )
    if postgresql:
        op.drop_index("ix_customers_embedding_hnsw", table_name="customers")
    with every_tenant_visible("customers"):
        _move_embeddings()
    op.drop_column("customers", "embedding")
    op.drop_column("customers", "embedding_version")
    if postgresql:
        # Built over the moved rows at once: faster than growing it row by row.
        op.create_index(op.f(f"ix_{_TABLE}_embedding_hnsw"), _TABLE, ["embedding"], **_HNSW)
        protect_tenant_table(_TABLE)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.add_column("customers", sa.Column("embedding", Embedding()))
    op.add_column("customers", sa.Column("embedding_version", sa.String(32)))
    with every_tenant_visible("customers", _TABLE):
        _move_embeddings_back()
    op.drop_table(_TABLE)
    if postgresql:
        op.create_index("ix_customers_embedding_hnsw", "customers", ["embedding"], **_HNSW)
