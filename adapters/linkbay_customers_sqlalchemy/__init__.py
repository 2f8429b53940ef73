"""Async SQLAlchemy storage: SQLite (aiosqlite) by default, PostgreSQL (asyncpg, pgvector)."""

from __future__ import annotations

try:
    import sqlalchemy  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "linkbay_customers_sqlalchemy needs SQLAlchemy: pip install 'linkbay-customers[sqlalchemy]'"
        " (and 'linkbay-customers[postgres]' for PostgreSQL)"
    ) from exc

from linkbay_customers_sqlalchemy._citus import CITUS_DISTRIBUTION_COLUMN, citus_layout_statements
from linkbay_customers_sqlalchemy._engine import async_database_url, create_engine
from linkbay_customers_sqlalchemy._migrate import (
    PHONE_REGION_VARIABLE,
    VERSION_TABLE,
    head_revision,
    schema_filter,
    upgrade,
)
from linkbay_customers_sqlalchemy._models import (
    AddressMixin,
    AuditChainMixin,
    AuditEventMixin,
    ConsentEventMixin,
    CustomerEmbeddingMixin,
    CustomerMixin,
    CustomerNoteMixin,
    DuplicateDecisionMixin,
    IdCounterMixin,
    LinkbayBase,
    MergeAliasMixin,
    ModelFitMixin,
    ModelSet,
    OrderLineMixin,
    OrderMixin,
    build_models,
    create_audit_triggers,
    default_models,
    drop_audit_triggers,
    not_personal,
    personal,
)
from linkbay_customers_sqlalchemy._roles import application_role_grants, grant_application_role
from linkbay_customers_sqlalchemy._storage import (
    TENANT_SETTING,
    SqlAlchemyStorage,
    SqlAlchemyUnitOfWork,
)

__all__ = (
    "CITUS_DISTRIBUTION_COLUMN",
    "PHONE_REGION_VARIABLE",
    "TENANT_SETTING",
    "VERSION_TABLE",
    "application_role_grants",
    "grant_application_role",
    "head_revision",
    "AddressMixin",
    "AuditChainMixin",
    "AuditEventMixin",
    "ConsentEventMixin",
    "CustomerMixin",
    "CustomerEmbeddingMixin",
    "CustomerNoteMixin",
    "DuplicateDecisionMixin",
    "IdCounterMixin",
    "LinkbayBase",
    "MergeAliasMixin",
    "ModelFitMixin",
    "ModelSet",
    "OrderLineMixin",
    "OrderMixin",
    "SqlAlchemyStorage",
    "SqlAlchemyUnitOfWork",
    "build_models",
    "citus_layout_statements",
    "create_audit_triggers",
    "async_database_url",
    "create_engine",
    "default_models",
    "drop_audit_triggers",
    "not_personal",
    "personal",
    "schema_filter",
    "upgrade",
)
