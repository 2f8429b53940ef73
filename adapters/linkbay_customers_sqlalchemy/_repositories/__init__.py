"""Repositories over SQLAlchemy Core statements on the model set's tables, by aggregate.

Each depends on ``SqlSession``, the little of the unit of work it needs; what only
PostgreSQL does lives in ``_postgresql``.
"""

from __future__ import annotations

from linkbay_customers_sqlalchemy._repositories._addresses import (
    SqlAddressRepository,
    SqlNoteRepository,
)
from linkbay_customers_sqlalchemy._repositories._customers import SqlCustomerRepository
from linkbay_customers_sqlalchemy._repositories._ledgers import (
    SqlAuditRepository,
    SqlConsentRepository,
    SqlMergeAliasRepository,
)
from linkbay_customers_sqlalchemy._repositories._orders import SqlOrderRepository
from linkbay_customers_sqlalchemy._repositories._postgresql import PostgresFeatures
from linkbay_customers_sqlalchemy._repositories._session import SqlSession

__all__ = (
    "PostgresFeatures",
    "SqlAddressRepository",
    "SqlAuditRepository",
    "SqlConsentRepository",
    "SqlCustomerRepository",
    "SqlMergeAliasRepository",
    "SqlNoteRepository",
    "SqlOrderRepository",
    "SqlSession",
)
