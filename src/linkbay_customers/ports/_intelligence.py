"""The customer-intelligence port: segments, churn risk, lifetime value, embeddings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from linkbay_customers.domain import Customer

__all__ = ("CustomerIntelligence", "CustomerProfile", "CustomerScores")


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """A customer and what they bought: the input of embeddings and batch scoring.

    ``products`` maps product id to the quantity bought over all orders. ``embed``
    False says the caller holds the customer's current embedding (their history has
    not changed since it was computed): ``products``, which serve the embedding, are
    then not read (empty), and ``score_many`` need not compute one (the caller
    ignores what it returns).
    """

    customer: Customer
    products: Mapping[str, int] = field(default_factory=dict)
    embed: bool = True


@dataclass(frozen=True, slots=True)
class CustomerScores:
    """Everything an intelligence computes for one customer, and who computed it."""

    customer_id: int
    segment: str
    churn_risk: float
    lifetime_value: Decimal
    embedding: Sequence[float] | None
    source: str


@runtime_checkable
class CustomerIntelligence(Protocol):
    """Scores customers. ``name`` identifies the source recorded beside each score."""

    name: str

    async def segment(self, customer: Customer, *, now: datetime) -> str:
        """The customer's behavioural segment."""
        ...

    async def churn_risk(self, customer: Customer, *, now: datetime) -> float:
        """Probability in [0, 1] that the customer does not buy again soon."""
        ...

    async def predict_clv(self, customer: Customer, *, months: int, now: datetime) -> Decimal:
        """Expected revenue from the customer over the next ``months``."""
        ...

    async def embed(self, profile: CustomerProfile, *, now: datetime) -> Sequence[float] | None:
        """A fixed-length, normalized embedding of the customer's history, the same on any
        day for the same history; None when there is nothing to embed."""
        ...

    async def score_many(
        self, profiles: Sequence[CustomerProfile], *, now: datetime, months: int
    ) -> Sequence[CustomerScores]:
        """Score a batch of customers at once, in the order given."""
        ...
