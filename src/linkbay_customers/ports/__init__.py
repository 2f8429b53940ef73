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
    CustomerBulkImport,
    CustomerRepository,
    DerivedDataStore,
    DuplicateCandidates,
    DuplicateDecisions,
    EmbeddingBulkLoad,
    MergeAliasRepository,
    NearestNeighbours,
    NeighboursOfCustomer,
    NoteRepository,
    OrderRepository,
    PurchaseHistory,
)
from linkbay_customers.ports._roles import (
    STORAGE_ROLES,
    StorageRole,
    bulk_import,
    derived_data,
    duplicate_candidates,
    duplicate_decisions,
    has_duplicate_decisions,
    nearest_neighbours,
    purchase_history,
    storage_roles,
)
from linkbay_customers.ports._uow import IdReservations, Storage, UnitOfWork, read_only_units

__all__ = (
    "STORAGE_ROLES",
    "AddressRepository",
    "AuditRepository",
    "Clock",
    "ConsentRepository",
    "CustomerBulkImport",
    "CustomerIntelligence",
    "CustomerProfile",
    "CustomerRepository",
    "CustomerScores",
    "DerivedDataStore",
    "EmbeddingBulkLoad",
    "IdReservations",
    "DuplicateCandidates",
    "DuplicateDecisions",
    "MergeAliasRepository",
    "NearestNeighbours",
    "NeighboursOfCustomer",
    "NoteRepository",
    "OrderRepository",
    "PurchaseHistory",
    "Storage",
    "StorageRole",
    "UnitOfWork",
    "read_only_units",
    "bulk_import",
    "derived_data",
    "duplicate_candidates",
    "duplicate_decisions",
    "has_duplicate_decisions",
    "nearest_neighbours",
    "purchase_history",
    "storage_roles",
)
