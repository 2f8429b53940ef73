"""Embeddings partitioned by tenant: a large tenant's in a partition of its own.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

On PostgreSQL ``customer_embeddings`` becomes a table partitioned by list of
``tenant_id``: every tenant's embeddings start in its default partition,
``customer_embeddings__part_shared``, with the HNSW index every tenant shared so
far. A large tenant scored for the first time by a role that owns the table gets
a partition of its own instead: its embeddings are loaded into it and its HNSW
index is built over them at once, rather than one insertion at a time into the
shared graph, and its searches walk a graph holding only its own customers (see
``PostgresFeatures``). The existing rows are moved; the table keeps its name,
keys, reference to its customer, tenant policy and grants. SQLite is unchanged.
"""

from __future__ import annotations

from alembic import op

from linkbay_customers_sqlalchemy.migrations._tenancy import (
    every_tenant_visible,
    protect_tenant_table,
)

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TABLE = "customer_embeddings"
_OLD = "customer_embeddings_unpartitioned"
_SHARED = "customer_embeddings__part_shared"
_PK = "pk_customer_embeddings"
_FK = "fk_customer_embeddings_tenant_id_customer_id_customers"
_HNSW_INDEX = "ix_customer_embeddings_embedding_hnsw"
_SHARED_HNSW_INDEX = "ix_customer_embeddings__part_shared_embedding_hnsw"
_HNSW = "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"


def _set_aside(table: str) -> None:
    """Rename the table, its keys and its index out of the way of the new one's."""
    op.execute(f"ALTER TABLE {table} RENAME TO {_OLD}")
    op.execute(f"ALTER TABLE {_OLD} RENAME CONSTRAINT {_PK} TO {_PK}_old")
    op.execute(f"ALTER TABLE {_OLD} RENAME CONSTRAINT {_FK} TO {_FK}_old")
    op.execute(f"DROP INDEX {_HNSW_INDEX}")


def _keys() -> str:
    return (
        f"CONSTRAINT {_PK} PRIMARY KEY (tenant_id, customer_id),"
        f" CONSTRAINT {_FK} FOREIGN KEY (tenant_id, customer_id)"
        " REFERENCES customers (tenant_id, id) ON DELETE CASCADE"
    )


def _move_rows() -> None:
    with every_tenant_visible(_OLD):
        op.execute(
            f"INSERT INTO {_TABLE} (tenant_id, customer_id, embedding, version)"
            f" SELECT tenant_id, customer_id, embedding, version FROM {_OLD}"
        )
    op.execute(f"DROP TABLE {_OLD}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside(_TABLE)
    op.execute(
        f"CREATE TABLE {_TABLE} (LIKE {_OLD} INCLUDING DEFAULTS, {_keys()})"
        " PARTITION BY LIST (tenant_id)"
    )
    op.execute(f"CREATE TABLE {_SHARED} PARTITION OF {_TABLE} DEFAULT")
    _move_rows()
    # Built over the moved rows at once; every partition gets one like it.
    op.execute(f"CREATE INDEX {_HNSW_INDEX} ON ONLY {_TABLE} {_HNSW}")
    op.execute(f"CREATE INDEX {_SHARED_HNSW_INDEX} ON {_SHARED} {_HNSW}")
    op.execute(f"ALTER INDEX {_HNSW_INDEX} ATTACH PARTITION {_SHARED_HNSW_INDEX}")
    protect_tenant_table(_TABLE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside(_TABLE)
    op.execute(f"CREATE TABLE {_TABLE} (LIKE {_OLD} INCLUDING DEFAULTS, {_keys()})")
    _move_rows()  # the partitions go with the partitioned table
    op.execute(f"CREATE INDEX {_HNSW_INDEX} ON {_TABLE} {_HNSW}")
    protect_tenant_table(_TABLE)
