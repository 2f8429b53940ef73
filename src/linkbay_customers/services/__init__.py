"""Async services over the ports."""

from __future__ import annotations

from linkbay_customers.services._customers import (
    CustomerService,
    RecordedOrder,
    UnitOfWorkFactory,
)
from linkbay_customers.services._import import ImportProgress, ImportRejection, ImportResult

__all__ = (
    "CustomerService",
    "ImportProgress",
    "ImportRejection",
    "ImportResult",
    "RecordedOrder",
    "UnitOfWorkFactory",
)
