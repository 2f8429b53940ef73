"""Ports: the Protocols the core needs and the adapters provide."""

from __future__ import annotations

from linkbay_customers.ports._clock import Clock
from linkbay_customers.ports._intelligence import (
    CustomerIntelligence,
    CustomerProfile,
    CustomerScores,
)
from linkbay_customers.ports._repositories import (
    AddressRepository,
    AuditRepository,
    ConsentRepository,
    CustomerRepository,
    MergeAliasRepository,
    ModelFitRepository,
    NoteRepository,
    OrderRepository,
)
from linkbay_customers.ports._uow import Storage, UnitOfWork

__all__ = (
    "AddressRepository",
    "AuditRepository",
    "Clock",
    "ConsentRepository",
    "CustomerIntelligence",
    "CustomerProfile",
    "CustomerRepository",
    "CustomerScores",
    "MergeAliasRepository",
    "ModelFitRepository",
    "NoteRepository",
    "OrderRepository",
    "Storage",
    "UnitOfWork",
)
