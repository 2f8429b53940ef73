"""The default customer intelligence: the seed's documented rules as pure functions.

Every formula here is written out in ``docs/intelligence.md``. Time is always
passed in (``now``); nothing reads the clock.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from linkbay_customers.domain import (
    EMBEDDING_DIMENSIONS,
    Customer,
    Segment,
    quantize_money,
)
from linkbay_customers.ports import CustomerIntelligence, CustomerProfile, CustomerScores

__all__ = (
    "EMBEDDING_VERSION",
    "HeuristicIntelligence",
    "behaviour_embedding",
    "heuristic_churn_risk",
    "heuristic_clv",
    "heuristic_segment",
)

EMBEDDING_VERSION = "behaviour-v3"
"""Identifies the layout of ``behaviour_embedding``; stored beside every embedding."""

NEW_WINDOW = timedelta(days=30)
ACTIVE_WINDOW = timedelta(days=90)
AT_RISK_WINDOW = timedelta(days=180)
DORMANT_WINDOW = timedelta(days=365)
HIGH_VALUE_SPEND = Decimal("1000")

PRIOR_GAP_DAYS = 90.0
"""Expected days between orders before a customer's own history says otherwise."""
PRIOR_WEIGHT = 2.0
"""How many observed gaps the prior is worth when shrinking a customer's average gap."""
MIN_GAP_DAYS = 7.0
DAYS_PER_MONTH = 365.25 / 12

_BEHAVIOUR_FEATURES = 5
_CALENDAR_FEATURES = 6
_PRODUCT_BUCKETS = EMBEDDING_DIMENSIONS - _BEHAVIOUR_FEATURES - _CALENDAR_FEATURES
# Shares of an embedding's squared length: its cosine similarity is the blocks'
# own similarities weighted so.
_SHARES = (0.35, 0.15, 0.5)  # behaviour, calendar, products
_BLOCK_WEIGHTS = tuple(math.sqrt(share) for share in _SHARES)
_BLOCK_WEIGHTS_WITHOUT_PRODUCTS = tuple(
    math.sqrt(share / (1.0 - _SHARES[2])) for share in (*_SHARES[:2], 0.0)
)
_YEAR_DAYS = 365.25
_LONG_CYCLE_DAYS = 8 * _YEAR_DAYS


def _days(delta: timedelta) -> float:
    return max(delta.total_seconds() / 86_400.0, 0.0)


def heuristic_segment(customer: Customer, now: datetime) -> Segment:
    """The seed's segmentation rules, first match wins.

    ``new``: no orders, or the first order within 30 days. ``active``: an order in
    the last 90 days, ``high_value`` if the customer has also spent over 1000.
    ``at_risk``: last order 90 to 180 days ago; ``dormant``: 180 to 365;
    ``churned``: over 365.
    """
    if customer.total_orders == 0 or customer.first_order_at is None:
        return Segment.NEW
    if now - customer.first_order_at <= NEW_WINDOW:
        return Segment.NEW
    last = customer.last_order_at or customer.first_order_at
    recency = now - last
    if recency <= ACTIVE_WINDOW:
        return Segment.HIGH_VALUE if customer.total_spent > HIGH_VALUE_SPEND else Segment.ACTIVE
    if recency <= AT_RISK_WINDOW:
        return Segment.AT_RISK
    if recency <= DORMANT_WINDOW:
        return Segment.DORMANT
    return Segment.CHURNED


def _expected_gap_days(customer: Customer) -> float:
    """The customer's average days between orders, shrunk towards the prior."""
    repeats = max(customer.total_orders - 1, 0)
    if repeats and customer.first_order_at and customer.last_order_at:
        observed = _days(customer.last_order_at - customer.first_order_at) / repeats
        gap = (observed * repeats + PRIOR_GAP_DAYS * PRIOR_WEIGHT) / (repeats + PRIOR_WEIGHT)
    else:
        gap = PRIOR_GAP_DAYS
    return max(gap, MIN_GAP_DAYS)


def _recency_days(customer: Customer, now: datetime) -> float:
    last = customer.last_order_at or customer.created_at
    return _days(now - last)


def heuristic_churn_risk(customer: Customer, now: datetime) -> float:
    """Churn risk in [0, 1]: ``1 - exp(-(recency / scale)^2)``.

    ``scale`` is the customer's expected gap between orders, stretched by loyalty
    (``1 + 0.5 ln(1 + orders)``) and value (``1 + 0.1 ln(1 + aov / 100)``). Risk
    never decreases as recency grows. A customer without orders is measured from
    sign-up against the prior gap.
    """
    loyalty = 1.0 + 0.5 * math.log1p(customer.total_orders)
    value = 1.0 + 0.1 * math.log1p(float(customer.average_order_value) / 100.0)
    scale = _expected_gap_days(customer) * loyalty * value
    ratio = _recency_days(customer, now) / scale
    return round(1.0 - math.exp(-(ratio**2)), 6)


def heuristic_clv(
    customer: Customer, months: int, now: datetime, *, churn_risk: float | None = None
) -> Decimal:
    """Expected revenue over ``months``: ``aov * monthly_frequency * months * (1 - churn)``.

    Monthly frequency is orders per month since the first order (at least one month).
    ``churn_risk`` saves recomputing it when the caller has it.
    """
    if customer.total_orders == 0 or customer.first_order_at is None:
        return quantize_money(Decimal(0))
    tenure_months = max(_days(now - customer.first_order_at) / DAYS_PER_MONTH, 1.0)
    monthly_frequency = customer.total_orders / tenure_months
    risk = heuristic_churn_risk(customer, now) if churn_risk is None else churn_risk
    value = float(customer.average_order_value) * monthly_frequency * months * (1.0 - risk)
    return quantize_money(Decimal(repr(value)))


@functools.lru_cache(maxsize=65_536)
def _bucket(product_id: str) -> int:
    digest = hashlib.blake2b(product_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _PRODUCT_BUCKETS


@functools.cache
def _log1p(scale: float) -> float:
    return math.log1p(scale)


def _squash(value: float, scale: float) -> float:
    return min(math.log1p(max(value, 0.0)) / _log1p(scale), 1.0)


def _on_circle(days: float, period_days: float) -> tuple[float, float]:
    """A moment (days since the epoch) as a point on a circle that turns once every
    ``period_days``: the dot product of two such points is the cosine of the angle
    between them, which depends on how far apart the moments lie, never on the
    present."""
    angle = math.tau * (days % period_days) / period_days
    return math.cos(angle), math.sin(angle)


def behaviour_embedding(customer: Customer, products: Mapping[str, int]) -> list[float] | None:
    """A unit-length vector of ``EMBEDDING_DIMENSIONS`` features of the customer's own
    history, or None for a customer without orders (no behaviour to compare).

    Layout (``EMBEDDING_VERSION``), three blocks, each of unit length and then
    weighted (35%, 15% and 50% of the squared length):

    - behaviour: order count, average order value, total spent, the span from
      first to last order (up to two years) and the purchase rate over that span;
    - calendar: the last order's date on a circle of one year (its season) and on
      one of eight years, and the first order's on the eight-year one, so that
      customers whose orders fell at the same time lie close;
    - products: the share of units bought per product bucket (product ids hashed
      into buckets).

    Nothing is measured from the present: the calendar block compares the dates
    of two histories with each other, so the same history gives the same vector
    on any day (how recent it is, the segment says).
    """
    if customer.total_orders == 0 or customer.first_order_at is None:
        return None
    first = customer.first_order_at.timestamp() / 86_400.0
    last = (customer.last_order_at or customer.first_order_at).timestamp() / 86_400.0
    span = max(last - first, 0.0)
    rate = customer.total_orders / max(span / DAYS_PER_MONTH, 1.0)
    behaviour = [
        _squash(customer.total_orders, 100.0),
        _squash(float(customer.average_order_value), 10_000.0),
        _squash(float(customer.total_spent), 100_000.0),
        min(span / 730.0, 1.0),
        rate / (1.0 + rate),
    ]
    calendar = [
        *_on_circle(last, _YEAR_DAYS),
        *_on_circle(last, _LONG_CYCLE_DAYS),
        *_on_circle(first, _LONG_CYCLE_DAYS),
    ]
    bought = [0.0] * _PRODUCT_BUCKETS
    units = sum(q for q in products.values() if q > 0)
    for product_id, quantity in products.items():
        if quantity > 0:
            bought[_bucket(product_id)] += quantity / units
    # Behaviour and calendar are never all zeros; without products (nothing bought,
    # as far as the lines say) the other two keep their relative weights.
    weights = _BLOCK_WEIGHTS if units > 0 else _BLOCK_WEIGHTS_WITHOUT_PRODUCTS
    vector: list[float] = []
    for block, weight in zip((behaviour, calendar, bought), weights, strict=True):
        norm = math.hypot(*block)
        scale = weight / norm if norm else 0.0
        vector += [v * scale for v in block]
    return vector


class HeuristicIntelligence(CustomerIntelligence):
    """The default intelligence: the seed's rules, deterministic and dependency-free."""

    name = "heuristic"

    async def segment(self, customer: Customer, *, now: datetime) -> str:
        """The customer's segment by the seed's rules."""
        return heuristic_segment(customer, now).value

    async def churn_risk(self, customer: Customer, *, now: datetime) -> float:
        """Churn risk in [0, 1]."""
        return heuristic_churn_risk(customer, now)

    async def predict_clv(self, customer: Customer, *, months: int, now: datetime) -> Decimal:
        """Expected revenue over the next ``months``."""
        return heuristic_clv(customer, months, now)

    async def embed(self, profile: CustomerProfile, *, now: datetime) -> list[float] | None:
        """The behavioural embedding (``now`` plays no part in it); None without orders."""
        return behaviour_embedding(profile.customer, profile.products)

    async def score_many(
        self, profiles: Sequence[CustomerProfile], *, now: datetime, months: int
    ) -> list[CustomerScores]:
        """Score every profile with the rules above (the embedding where ``embed``)."""
        scores = []
        for p in profiles:
            customer = p.customer
            segment = heuristic_segment(customer, now)
            risk = heuristic_churn_risk(customer, now)
            scores.append(
                CustomerScores(
                    customer_id=customer.id,
                    segment=segment.value,
                    churn_risk=risk,
                    lifetime_value=heuristic_clv(customer, months, now, churn_risk=risk),
                    embedding=behaviour_embedding(customer, p.products) if p.embed else None,
                    source=self.name,
                )
            )
        return scores
