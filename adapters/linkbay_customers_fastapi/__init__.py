"""FastAPI adapter: ``create_customer_router(...)``, problem+json errors, tenancy helpers."""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
    import jwt  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "linkbay_customers_fastapi needs FastAPI and PyJWT: "
        "pip install 'linkbay-customers[fastapi]'"
    ) from exc

from linkbay_customers.schemas import (
    ChurnRiskResponse,
    ClvResponse,
    ConsentHistoryResponse,
    PageResponse,
    RecommendationResponse,
    ScoringSummaryResponse,
    SegmentResponse,
    SimilarCustomerResponse,
)
from linkbay_customers_fastapi._app import HealthResponse, create_app
from linkbay_customers_fastapi._limits import DEFAULT_MAX_BODY_SIZE
from linkbay_customers_fastapi._problems import (
    PROBLEM_MEDIA_TYPE,
    BodyTooLarge,
    InvalidHeader,
    NotAuthenticated,
    Problem,
    ProblemFieldError,
    ProblemResponse,
    TenantRequired,
    add_problem_handlers,
    add_problem_schemas,
    problem_responses,
    status_for,
)
from linkbay_customers_fastapi._router import create_customer_router
from linkbay_customers_fastapi._schemas import ConsentRequest, ExportFormat
from linkbay_customers_fastapi._tenancy import Tenancy, check_jwt_key, header_tenancy, jwt_tenancy

__all__ = (
    "DEFAULT_MAX_BODY_SIZE",
    "PROBLEM_MEDIA_TYPE",
    "BodyTooLarge",
    "ChurnRiskResponse",
    "ClvResponse",
    "ConsentHistoryResponse",
    "ConsentRequest",
    "ExportFormat",
    "HealthResponse",
    "InvalidHeader",
    "NotAuthenticated",
    "PageResponse",
    "Problem",
    "ProblemFieldError",
    "ProblemResponse",
    "RecommendationResponse",
    "ScoringSummaryResponse",
    "SegmentResponse",
    "SimilarCustomerResponse",
    "Tenancy",
    "TenantRequired",
    "add_problem_handlers",
    "add_problem_schemas",
    "check_jwt_key",
    "create_app",
    "create_customer_router",
    "header_tenancy",
    "jwt_tenancy",
    "problem_responses",
    "status_for",
)
