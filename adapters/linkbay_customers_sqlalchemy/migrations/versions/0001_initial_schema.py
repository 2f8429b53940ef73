"""Initial schema: customers, addresses, notes, orders, consent, audit, merge aliases.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Every primary key, unique constraint and foreign key leads with ``tenant_id``.
On PostgreSQL this also creates the pgvector extension, one id sequence per
table, a GIN index on tags, an HNSW cosine index on embeddings, and row-level
security on every table, keyed on ``current_setting('linkbay.tenant_id')``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from linkbay_customers_sqlalchemy._types import Embedding, JSONDocument, Money, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = (
    "customers",
    "customer_addresses",
    "customer_notes",
    "customer_orders",
    "customer_order_lines",
    "customer_consent_events",
    "customer_audit_events",
    "customer_merge_aliases",
)
SEQUENCED_TABLES = (
    "customers",
    "customer_addresses",
    "customer_notes",
    "customer_orders",
    "customer_consent_events",
    "customer_audit_events",
)
_LIVE = sa.text("deleted_at IS NULL")
_TENANT_MATCHES = "tenant_id = current_setting('linkbay.tenant_id', true)"


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(64), nullable=False)


def _id(name: str = "id") -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), autoincrement=False, nullable=False)


def _customer_fk(table: str, column: str = "customer_id") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", column],
        ["customers.tenant_id", "customers.id"],
        name=f"fk_{table}_tenant_id_{column}_customers",
    )


def _live_index(name: str, table: str, columns: list[str]) -> None:
    op.create_index(name, table, columns, postgresql_where=_LIVE, sqlite_where=_LIVE)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # pgvector is not a trusted extension: a superuser must create it once
        # if the role running migrations is not one.
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")

    op.create_table(
        "customers",
        _tenant(),
        _id(),
        sa.Column("email", sa.String(254)),
        sa.Column("first_name", sa.String(100)),
        sa.Column("last_name", sa.String(100)),
        sa.Column("phone", sa.String(40)),
        sa.Column("birthday", sa.Date()),
        sa.Column("gender", sa.String(32)),
        sa.Column("preferences", JSONDocument, nullable=False),
        sa.Column("tags", JSONDocument, nullable=False),
        sa.Column("currency", sa.String(3)),
        sa.Column("total_orders", sa.Integer(), nullable=False),
        sa.Column("total_spent", Money(), nullable=False),
        sa.Column("average_order_value", Money(), nullable=False),
        sa.Column("first_order_at", UTCDateTime()),
        sa.Column("last_order_at", UTCDateTime()),
        sa.Column("customer_lifetime_value", Money()),
        sa.Column("churn_risk_score", sa.Float()),
        sa.Column("segment", sa.String(64)),
        sa.Column("embedding", Embedding()),
        sa.Column("embedding_version", sa.String(32)),
        sa.Column("scored_at", UTCDateTime()),
        sa.Column("score_source", sa.String(64)),
        sa.Column("consent_data", JSONDocument, nullable=False),
        sa.Column("is_anonymized", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_customers"),
        sa.UniqueConstraint("tenant_id", "email", name="uq_customers_tenant_id_email"),
    )
    _live_index("ix_customers_tenant_created", "customers", ["tenant_id", "created_at", "id"])
    _live_index(
        "ix_customers_tenant_segment_spent", "customers", ["tenant_id", "segment", "total_spent"]
    )
    _live_index("ix_customers_tenant_spent", "customers", ["tenant_id", "total_spent", "id"])
    _live_index("ix_customers_tenant_last_order", "customers", ["tenant_id", "last_order_at", "id"])
    op.create_index("ix_customers_tenant_deleted", "customers", ["tenant_id", "deleted_at"])

    op.create_table(
        "customer_addresses",
        _tenant(),
        _id(),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("address_line1", sa.String(200), nullable=False),
        sa.Column("address_line2", sa.String(200)),
        sa.Column("city", sa.String(100), nullable=False),
        sa.Column("state", sa.String(100)),
        sa.Column("postal_code", sa.String(20), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "type IN ('billing', 'shipping', 'other')", name="ck_customer_addresses_type"
        ),
        _customer_fk("customer_addresses"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_customer_addresses"),
    )
    op.create_index(
        "ix_customer_addresses_tenant_customer",
        "customer_addresses",
        ["tenant_id", "customer_id"],
    )
    op.create_index(
        "uq_customer_addresses_one_default_per_type",
        "customer_addresses",
        ["tenant_id", "customer_id", "type"],
        unique=True,
        postgresql_where=sa.text("is_default"),
        sqlite_where=sa.text("is_default"),
    )

    op.create_table(
        "customer_notes",
        _tenant(),
        _id(),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(255)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _customer_fk("customer_notes"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_customer_notes"),
    )
    op.create_index(
        "ix_customer_notes_tenant_customer",
        "customer_notes",
        ["tenant_id", "customer_id", "created_at"],
    )

    op.create_table(
        "customer_orders",
        _tenant(),
        _id(),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("total", Money(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("shipping", JSONDocument),
        _customer_fk("customer_orders"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_customer_orders"),
        sa.UniqueConstraint("tenant_id", "order_id", name="uq_customer_orders_tenant_id_order_id"),
    )
    op.create_index(
        "ix_customer_orders_tenant_customer",
        "customer_orders",
        ["tenant_id", "customer_id", "created_at"],
    )

    op.create_table(
        "customer_order_lines",
        _tenant(),
        sa.Column("order_pk", sa.BigInteger(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.String(128), nullable=False),
        sa.Column("product_name", sa.String(200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", Money(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "order_pk"],
            ["customer_orders.tenant_id", "customer_orders.id"],
            name="fk_customer_order_lines_tenant_id_order_pk_customer_orders",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "order_pk", "line_no", name="pk_customer_order_lines"),
    )
    op.create_index(
        "ix_customer_order_lines_tenant_product",
        "customer_order_lines",
        ["tenant_id", "product_id"],
    )

    op.create_table(
        "customer_consent_events",
        _tenant(),
        _id(),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("consent_type", sa.String(64), nullable=False),
        sa.Column("consented", sa.Boolean(), nullable=False),
        sa.Column("previous", sa.Boolean()),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(255)),
        sa.Column("ip_address", sa.String(64)),
        sa.Column("user_agent", sa.Text()),
        _customer_fk("customer_consent_events"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_customer_consent_events"),
    )
    op.create_index(
        "ix_customer_consent_events_tenant_customer",
        "customer_consent_events",
        ["tenant_id", "customer_id", "occurred_at"],
    )

    op.create_table(
        "customer_audit_events",
        _tenant(),
        _id(),
        sa.Column("customer_id", sa.BigInteger()),
        sa.Column("actor", sa.String(255)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("changed_fields", JSONDocument, nullable=False),
        sa.Column("details", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_customer_audit_events"),
    )
    op.create_index(
        "ix_customer_audit_events_tenant_time",
        "customer_audit_events",
        ["tenant_id", "occurred_at", "id"],
    )
    op.create_index(
        "ix_customer_audit_events_tenant_customer",
        "customer_audit_events",
        ["tenant_id", "customer_id", "occurred_at"],
    )

    op.create_table(
        "customer_merge_aliases",
        _tenant(),
        _id("alias_id"),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("merged_at", UTCDateTime(), nullable=False),
        _customer_fk("customer_merge_aliases", "alias_id"),
        _customer_fk("customer_merge_aliases"),
        sa.PrimaryKeyConstraint("tenant_id", "alias_id", name="pk_customer_merge_aliases"),
    )
    op.create_index(
        "ix_customer_merge_aliases_tenant_customer",
        "customer_merge_aliases",
        ["tenant_id", "customer_id"],
    )

    if postgresql:
        for table in SEQUENCED_TABLES:
            op.execute(f"CREATE SEQUENCE {table}_id_seq OWNED BY {table}.id")
        op.create_index("ix_customers_tags_gin", "customers", ["tags"], postgresql_using="gin")
        op.create_index(
            "ix_customers_embedding_hnsw",
            "customers",
            ["embedding"],
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        )
        for table in TENANT_TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY tenant_isolation ON {table} "
                f"USING ({_TENANT_MATCHES}) WITH CHECK ({_TENANT_MATCHES})"
            )


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        op.drop_table(table)
