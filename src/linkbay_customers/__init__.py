"""linkbay-customers: async, multi-tenant customer management for FastAPI applications.

The core (this package) holds the domain, the ports and the services; storage,
web, statistics and AI adapters live in their own ``linkbay_customers_*`` packages.
"""

from __future__ import annotations

from linkbay_customers.clock import SystemClock
from linkbay_customers.container import CustomersContainer, bootstrap
from linkbay_customers.domain import (
    AddressNotFound,
    ConsentTypeUnknown,
    CustomerNotFound,
    DuplicateDecisionNotFound,
    DuplicateEmail,
    InvalidDuplicateDecision,
    InvalidInput,
    InvalidMerge,
    LinkbayError,
    OrderConflict,
    Page,
    ProfilingNotAllowed,
    ProfilingPolicy,
    SchemaNotMigrated,
    StorageError,
    StorageRejected,
    StorageRoleMissing,
    TooManyAddresses,
    TransactionConflict,
)
from linkbay_customers.heuristics import HeuristicIntelligence
from linkbay_customers.registry import open_storage, register_storage, storage_schemes
from linkbay_customers.services import (
    AIService,
    ChurnPrediction,
    ClvPrediction,
    ConsentHistory,
    CustomerService,
    DataExport,
    Erasure,
    GDPRService,
    ImportProgress,
    ImportRejection,
    ImportResult,
    ProductRecommendation,
    ProgressCallback,
    PurgeResult,
    RecordedOrder,
    ScoringSummary,
    SimilarCustomer,
)

__all__ = (
    "AIService",
    "AddressNotFound",
    "ChurnPrediction",
    "ClvPrediction",
    "ConsentHistory",
    "ConsentTypeUnknown",
    "CustomerNotFound",
    "CustomerService",
    "CustomersContainer",
    "DataExport",
    "DuplicateDecisionNotFound",
    "DuplicateEmail",
    "Erasure",
    "GDPRService",
    "HeuristicIntelligence",
    "ImportProgress",
    "ImportRejection",
    "ImportResult",
    "InvalidDuplicateDecision",
    "InvalidInput",
    "InvalidMerge",
    "LinkbayError",
    "OrderConflict",
    "Page",
    "ProfilingNotAllowed",
    "ProductRecommendation",
    "ProfilingPolicy",
    "ProgressCallback",
    "PurgeResult",
    "RecordedOrder",
    "ScoringSummary",
    "SimilarCustomer",
    "SchemaNotMigrated",
    "StorageError",
    "StorageRejected",
    "TransactionConflict",
    "StorageRoleMissing",
    "SystemClock",
    "TooManyAddresses",
    "bootstrap",
    "open_storage",
    "register_storage",
    "storage_schemes",
    "__version__",
)

__version__ = "0.1.0"
