"""Async services over the ports."""

from __future__ import annotations

from linkbay_customers.services._ai import (
    DEFAULT_EMBEDDING_TOLERANCE,
    MAX_PREDICTION_MONTHS,
    AIService,
    ChurnPrediction,
    ClvPrediction,
    ProductRecommendation,
    ScoringSummary,
    SimilarCustomer,
)
from linkbay_customers.services._customers import (
    CustomerService,
    RecordedOrder,
    UnitOfWorkFactory,
)
from linkbay_customers.services._duplicates import DuplicateSuggestion
from linkbay_customers.services._gdpr import GDPRService, export_as_csv_zip
from linkbay_customers.services._gdpr_results import (
    ConsentHistory,
    DataExport,
    Erasure,
    ErasureMethod,
    PurgeResult,
)
from linkbay_customers.services._import import (
    DEFAULT_CHUNK_SIZE,
    ImportProgress,
    ImportRejection,
    ImportResult,
)
from linkbay_customers.services._progress import ProgressCallback

__all__ = (
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_EMBEDDING_TOLERANCE",
    "MAX_PREDICTION_MONTHS",
    "AIService",
    "ChurnPrediction",
    "ClvPrediction",
    "ConsentHistory",
    "DataExport",
    "Erasure",
    "ErasureMethod",
    "ProductRecommendation",
    "ScoringSummary",
    "SimilarCustomer",
    "CustomerService",
    "DuplicateSuggestion",
    "GDPRService",
    "ImportProgress",
    "ImportRejection",
    "ImportResult",
    "ProgressCallback",
    "PurgeResult",
    "RecordedOrder",
    "UnitOfWorkFactory",
    "export_as_csv_zip",
)
