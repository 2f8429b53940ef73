"""Async services over the ports."""

from __future__ import annotations

from linkbay_customers.services._customers import (
    CustomerService,
    RecordedOrder,
    UnitOfWorkFactory,
)

__all__ = ("CustomerService", "RecordedOrder", "UnitOfWorkFactory")
