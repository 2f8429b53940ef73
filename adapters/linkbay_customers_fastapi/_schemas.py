"""Request and response models of the GDPR and intelligence routes that the core's
schemas do not have.

The core's services take plain arguments (``consented``, ``metadata``) and return
JSON-ready dicts or dataclasses (``ChurnPrediction``, ``ScoringSummary``, ...); these
models give those shapes to HTTP bodies and to OpenAPI.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from linkbay_customers.schemas import (
    ConsentEventResponse,
    ConsentMetadata,
    ConsentStateResponse,
    MoneyOut,
)
from linkbay_customers.services import (
    ChurnPrediction,
    ClvPrediction,
    ProductRecommendation,
    ScoringSummary,
    SimilarCustomer,
)

__all__ = (
    "ChurnRiskResponse",
    "ClvResponse",
    "ConsentHistoryResponse",
    "ConsentRequest",
    "ExportFormat",
    "RecommendationResponse",
    "ScoringSummaryResponse",
    "SegmentResponse",
    "SimilarCustomerResponse",
)


class ExportFormat(StrEnum):
    """The formats ``GET /customers/{customer_id}/export`` serves."""

    JSON = "json"
    CSV = "csv"


class ConsentRequest(BaseModel):
    """The body of ``POST /customers/{customer_id}/consent/{consent_type}``."""

    model_config = ConfigDict(extra="forbid")

    consented: StrictBool = Field(
        description="The decision: `true` to give the consent, `false` to withdraw it."
    )
    metadata: ConsentMetadata | None = Field(
        default=None,
        description="Where the decision was taken. Recorded as sent: the API never fills "
        "`ip_address` or `user_agent` from the request itself.",
    )


class ConsentHistoryResponse(BaseModel):
    """The current decision per consent type, keyed by type (the seed's shape), and
    under ``events`` every decision ever recorded, oldest first."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "marketing": {
                        "consented": True,
                        "date": "2025-01-15T10:30:00Z",
                        "source": "signup_form",
                        "ip_address": "192.168.1.1",
                        "user_agent": "Mozilla/5.0",
                    },
                    "events": [
                        {
                            "id": 1,
                            "consent_type": "marketing",
                            "consented": True,
                            "previous": None,
                            "occurred_at": "2025-01-15T10:30:00Z",
                            "source": "signup_form",
                            "ip_address": "192.168.1.1",
                            "user_agent": "Mozilla/5.0",
                        }
                    ],
                }
            ]
        },
    )
    # Every key but ``events`` is a consent type holding its current state.
    __pydantic_extra__: dict[str, ConsentStateResponse] = Field(init=False)

    events: list[ConsentEventResponse]

    @classmethod
    def of(cls, history: dict[str, Any]) -> ConsentHistoryResponse:
        """Build the response from ``GDPRService.get_consent_history``."""
        return cls.model_validate(history)


# --------------------------------------------------------------------------- intelligence

_SOURCE = Field(
    description="What computed the answer: the intelligence adapter's name, such as `heuristic`."
)


class SegmentResponse(BaseModel):
    """The answer of ``POST /customers/{customer_id}/segment``."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"customer_id": 42, "segment": "high_value"}]}
    )

    customer_id: int = Field(description="The customer's id (a merged id's target).")
    segment: str | None = Field(
        description="The segment now stored: `new`, `active`, `high_value`, `at_risk`, "
        "`dormant`, `churned`, or one of the intelligence adapter's own."
    )


class ChurnRiskResponse(BaseModel):
    """A customer's churn risk and how to read it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": 42,
                    "churn_risk_score": 0.23,
                    "risk_level": "low",
                    "source": "heuristic",
                }
            ]
        }
    )

    customer_id: int = Field(description="The customer's id (a merged id's target).")
    churn_risk_score: float = Field(
        ge=0, le=1, description="The probability-like risk that the customer has churned."
    )
    risk_level: Literal["low", "medium", "high"] = Field(
        description="`low` below 0.3, `medium` below 0.6, `high` from 0.6."
    )
    source: str = _SOURCE

    @classmethod
    def of(cls, prediction: ChurnPrediction) -> Self:
        """Build the response from ``AIService.calculate_churn_risk``."""
        return cls.model_validate(prediction, from_attributes=True)


class ClvResponse(BaseModel):
    """A customer's predicted lifetime value over the coming months."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": 42,
                    "predicted_clv": 1249.99,
                    "prediction_months": 12,
                    "source": "heuristic",
                }
            ]
        }
    )

    customer_id: int = Field(description="The customer's id (a merged id's target).")
    predicted_clv: MoneyOut = Field(
        description="Expected revenue over the period, in the customer's currency "
        "(0 for a customer without orders)."
    )
    prediction_months: int = Field(description="The period predicted, in months.")
    source: str = _SOURCE

    @classmethod
    def of(cls, prediction: ClvPrediction) -> Self:
        """Build the response from ``AIService.predict_clv``."""
        return cls.model_validate(prediction, from_attributes=True)


class SimilarCustomerResponse(BaseModel):
    """A customer behaving like the one asked about (the seed's shape, with the names)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 87,
                    "email": "similar@example.com",
                    "first_name": "Giulia",
                    "last_name": "Bianchi",
                    "segment": "high_value",
                    "similarity_score": 0.92,
                }
            ]
        }
    )

    id: int
    email: str | None
    first_name: str | None
    last_name: str | None
    segment: str | None
    similarity_score: float = Field(
        description="Cosine similarity of the two customers' behaviour, from -1 to 1."
    )

    @classmethod
    def of(cls, similar: SimilarCustomer) -> Self:
        """Build the response from one result of ``AIService.find_similar_customers``."""
        customer = similar.customer
        return cls(
            id=customer.id,
            email=customer.email,
            first_name=customer.first_name,
            last_name=customer.last_name,
            segment=customer.segment,
            similarity_score=similar.similarity_score,
        )


class RecommendationResponse(BaseModel):
    """A product to suggest to a customer, with why (the seed's shape)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "product_id": "123",
                    "product_name": "Premium Subscription",
                    "score": 0.87,
                    "reason": "bought by 4 of the 20 customers most similar to this one",
                }
            ]
        }
    )

    product_id: str = Field(description="The product's id, as recorded on orders (a string).")
    product_name: str
    score: float = Field(ge=0, le=1, description="How strongly the product is suggested.")
    reason: str = Field(description="Why it is suggested, for people to read.")

    @classmethod
    def of(cls, recommendation: ProductRecommendation) -> Self:
        """Build the response from one result of ``AIService.generate_recommendations``."""
        return cls.model_validate(recommendation, from_attributes=True)


class ScoringSummaryResponse(BaseModel):
    """What scoring a whole tenant did."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customers": 1200,
                    "skipped_without_consent": 14,
                    "per_segment": {"active": 410, "new": 296, "at_risk": 180, "churned": 300},
                    "churn_risk_distribution": {
                        "0.0-0.2": 610,
                        "0.2-0.4": 120,
                        "0.4-0.6": 96,
                        "0.6-0.8": 60,
                        "0.8-1.0": 300,
                    },
                    "total_predicted_clv": 84210.5,
                    "sources": {"heuristic": 1186},
                }
            ]
        }
    )

    customers: int = Field(description="Customers walked (every non-deleted customer).")
    skipped_without_consent: int = Field(
        description="Customers the profiling policy excludes: not scored, derived data cleared."
    )
    per_segment: dict[str, int] = Field(description="Scored customers per segment.")
    churn_risk_distribution: dict[str, int] = Field(
        description="Scored customers per churn-risk bucket (`0.0-0.2` to `0.8-1.0`)."
    )
    total_predicted_clv: MoneyOut = Field(
        description="Sum of the scored customers' predicted lifetime values over the period."
    )
    sources: dict[str, int] = Field(description="Scored customers per intelligence source.")

    @classmethod
    def of(cls, summary: ScoringSummary) -> Self:
        """Build the response from ``AIService.score_tenant``."""
        return cls(
            customers=summary.customers,
            skipped_without_consent=summary.skipped_without_consent,
            per_segment=dict(summary.per_segment),
            churn_risk_distribution=dict(summary.churn_risk_distribution),
            total_predicted_clv=summary.total_predicted_clv,
            sources=dict(summary.sources),
        )
