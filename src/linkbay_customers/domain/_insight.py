"""What the intelligence features read and write: derived data, purchases, sales."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

__all__ = ("DerivedData", "ModelFit", "ProductPurchases", "ProductSales", "cosine_similarity")


@dataclass(frozen=True, slots=True)
class DerivedData:
    """The derived fields of one customer, written together by batch scoring.

    All None clears them (a customer the profiling policy excludes).
    ``keep_embedding`` says the stored embedding is still current: it is left
    as it is, and ``embedding``/``embedding_version`` are not written.
    """

    customer_id: int
    segment: str | None
    churn_risk_score: float | None
    customer_lifetime_value: Decimal | None
    embedding: Sequence[float] | None
    embedding_version: str | None
    scored_at: datetime | None
    score_source: str | None
    keep_embedding: bool = False


@dataclass(frozen=True, slots=True)
class ModelFit:
    """A statistical model fitted to one tenant's customers.

    Attributes:
        model: Which model (``"bg_nbd+gamma_gamma"``, ...).
        parameters: The fitted parameters by name.
        fitted_at: When it was fitted.
        sample_size: How many customers it was fitted on.
    """

    tenant_id: str
    model: str
    parameters: dict[str, float]
    fitted_at: datetime
    sample_size: int


@dataclass(frozen=True, slots=True)
class ProductPurchases:
    """How many units of a product one customer bought, over all orders."""

    customer_id: int
    product_id: str
    product_name: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ProductSales:
    """A product's sales in a tenant: units sold and distinct buyers."""

    product_id: str
    product_name: str
    quantity: int
    buyers: int


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine of the angle between two vectors; 0 when either is all zeros."""
    if len(a) != len(b):
        raise ValueError(f"vectors of different lengths: {len(a)} and {len(b)}")
    norm = math.hypot(*a) * math.hypot(*b)
    return sum(map(operator.mul, a, b)) / norm if norm else 0.0
